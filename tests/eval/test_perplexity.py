"""Held-out perplexity of a base and its adapters: the memorising adapter is lower, the figure is the trainer's eval
loss, the curated-vs-uncurated command, and every refusal as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from curate.cli import main
from curate.errors import ConfigError
from curate.eval.data import load_eval_set
from curate.eval.perplexity import score_models
from curate.train.models import resolve


def quiet(_: str) -> None:
    pass


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def last_error(capsys: Any) -> str:
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' loading bar, if any
    assert err.startswith("error: "), err
    return err


def test_adapter_is_lower_on_the_memorised_set_and_equals_training_eval(pair_run: dict[str, Any]) -> None:
    evalset = load_eval_set(pair_run["data"])
    res = score_models(evalset, str(pair_run["model"]), [("curated", resolve(pair_run["curated"]))], log=quiet)
    base, cur = res.scores
    assert (base.name, base.kind, cur.name, cur.kind) == ("base", "base", "curated", "adapter")
    assert base.tokens == cur.tokens > 0 and base.conversations == cur.conversations == 4
    assert cur.perplexity < 0.05 * base.perplexity
    # the same masks, template and tokens as training: the trainer's last eval loss, recomputed
    assert cur.loss == pytest.approx(pair_run["metrics"]["curated"]["eval_loss"], rel=1e-4)
    assert cur.ppl_ci95[0] <= cur.perplexity <= cur.ppl_ci95[1]
    assert res.lower_loss_share == {"base < curated": 0.0}
    assert "as trained" in res.template
    # a memorised set: the validation facts are in the training split, and the report says so
    assert cur.seen_in_training == 4 and "adapter curated was trained on 4 of the 4 scored conversations" in res.notes[0]


def test_curated_vs_uncurated_in_one_command(pair_run: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "eval"
    argv = ["eval", "--base", str(pair_run["model"]), "--adapter", f"curated={pair_run['curated']}",
            "--adapter", f"uncurated={pair_run['uncurated']}", "--data", str(pair_run["data"]), "--output", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("base", "curated", "uncurated"):
        assert f"  {name} " in printed
    report = json.loads((out / "eval.json").read_text())
    ppl = {m["name"]: m["perplexity"] for m in report["perplexity"]["models"]}
    assert list(ppl) == ["base", "curated", "uncurated"]
    # trained on wrong answers to the same questions, the uncurated LoRA learns the format but not the facts
    assert ppl["curated"] < ppl["uncurated"] < ppl["base"]
    assert report["perplexity"]["lower_loss_share"]["curated < uncurated"] == 1.0
    md = (out / "eval.md").read_text()
    assert md.startswith("## Evaluation") and "| curated | adapter" in md and "| uncurated | adapter" in md
    assert report["pairwise"] is None
    seen = {m["name"]: m["seen_in_training"] for m in report["perplexity"]["models"]}
    assert seen == {"base": None, "curated": 4, "uncurated": 0}  # the uncurated LoRA saw other answers


def test_a_jsonl_eval_set_scores_like_the_export_split(pair_run: dict[str, Any], tmp_path: Path) -> None:
    convs = load_eval_set(pair_run["data"]).convs
    path = write_jsonl(tmp_path / "val.jsonl", [{"id": c.id, "messages": c.turns} for c in convs]
                       + [{"messages": [{"role": "user", "content": "no answer here"}]}])
    entries = [("curated", resolve(pair_run["curated"]))]
    a = score_models(load_eval_set(path), str(pair_run["model"]), entries, log=quiet)
    b = score_models(load_eval_set(pair_run["data"]), str(pair_run["model"]), entries, log=quiet)
    assert [s.loss for s in a.scores] == pytest.approx([s.loss for s in b.scores], rel=1e-6)
    assert a.no_assistant == 1 and "1 conversations have no assistant turn" in a.notes[0]


def test_held_out_only_leaves_out_what_an_adapter_trained_on(pair_run: dict[str, Any], tmp_path: Path) -> None:
    convs = load_eval_set(pair_run["data"]).convs
    unseen = {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Red."}]}
    path = write_jsonl(tmp_path / "val.jsonl", [{"messages": c.turns} for c in convs] + [unseen])
    entries = [("curated", resolve(pair_run["curated"])), ("uncurated", resolve(pair_run["uncurated"]))]
    res = score_models(load_eval_set(path), str(pair_run["model"]), entries, held_out_only=True, log=quiet)
    assert res.conversations == 1 and [s.seen_in_training for s in res.scores] == [None, 0, 0]
    assert "4 eval conversations some adapter trained on were left out" in res.notes[0]
    with pytest.raises(ConfigError, match="every conversation"):
        score_models(load_eval_set(pair_run["data"]), str(pair_run["model"]), entries, held_out_only=True, log=quiet)


def test_different_templates_need_a_named_one(pair_run: dict[str, Any], tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from curate.train.templates import default_template

    other = tmp_path / "alpaca-adapter"
    shutil.copytree(pair_run["uncurated"] / "adapter", other)
    tok = AutoTokenizer.from_pretrained(str(other))
    tok.chat_template = default_template("alpaca", tok)
    tok.save_pretrained(other)
    entries = [("curated", resolve(pair_run["curated"])), ("alpaca", resolve(other))]
    evalset = load_eval_set(pair_run["data"])
    with pytest.raises(ConfigError, match="different chat templates"):
        score_models(evalset, str(pair_run["model"]), entries, log=quiet)
    res = score_models(evalset, str(pair_run["model"]), entries, template="chatml", log=quiet)
    assert res.template == "chatml" and len({s.tokens for s in res.scores}) == 1


def test_bad_input_gives_one_line_errors(pair_run: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    base, data, cur = str(pair_run["model"]), str(pair_run["data"]), str(pair_run["curated"])
    narrow = tmp_path / "narrow"  # same vocabulary, another MLP width: the adapter's down_proj cannot fit
    cfg = LlamaConfig.from_pretrained(base)
    cfg.intermediate_size = 160
    LlamaForCausalLM(cfg).save_pretrained(narrow)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(pair_run["model"] / f, narrow / f)
    no_answer = write_jsonl(tmp_path / "q.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    broken = write_jsonl(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}, "{not json"])
    bad_role = write_jsonl(tmp_path / "r.jsonl", [{"messages": [{"role": "robot", "content": "hi"}]}])
    cases = [
        (["--base", base, "--adapter", f"x={tmp_path / 'missing'}", "--data", data], "not found"),
        (["--adapter", f"c={cur}", "--data", data], "--adapter needs --base"),
        (["--base", base, "--adapter", f"m={base}", "--data", data], "is a model, not an adapter"),
        (["--base", base, "--adapter", f"c={cur}", "--data", str(no_answer)], "has no assistant tokens"),
        (["--base", base, "--adapter", f"c={cur}", "--data", str(broken)], "line 2: not valid JSON"),
        (["--base", base, "--adapter", f"c={cur}", "--data", str(bad_role)], "unknown_role"),
        (["--base", base, "--adapter", f"c={cur}", "--data", str(tmp_path / "none.jsonl")], "not found"),
        (["--base", str(narrow), "--adapter", f"c={cur}", "--data", data], "does not fit base"),
        (["--base", base, "--adapter", f"c={cur}", "--data", data, "--template", "llama9"], "--template"),
        (["--base", base, "--adapter", f"base={cur}", "--data", data], "must be unique"),
        (["--base", base], "nothing to do"),
        (["--base", base, "--data", data, "--output", str(no_answer)], "is a file"),
    ]
    for argv, words in cases:
        assert main(["eval", "--output", str(tmp_path / "out"), *argv]) == 2, argv
        err = last_error(capsys)
        assert words in err, (argv, err)
