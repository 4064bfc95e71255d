import json

import polars as pl
import pytest

from curate.analysis.dedup_eval import attach_ids, evaluate
from curate.steps.base import StepContext
from curate.steps.dedup.exact import ExactDedup

from .dedup_helpers import planted_corpus


def ctx_for(tmp_path, **kw) -> StepContext:
    return StepContext(run_dir=tmp_path, work_dir=tmp_path / "02_dedup", **kw)


def test_conversation_scope_longest_response_survives(batch_of, tmp_path):
    ds = batch_of(
        "user: What is 2+2? || assistant: 4",
        "user: what   is 2+2? || assistant: 4",  # same after normalisation
        "user: What is 2+2? || assistant: Four, because two plus two is four.",  # other response
        "user: Hello || assistant: hi",
    )
    step = ExactDedup.from_params()
    d = step.run(ds.lazy(), ctx_for(tmp_path)).decisions
    ids = ds["id"].to_list()
    assert d.rows() == [(ids[1], "exact_dup", ids[0], 1.0)]  # ties: first in input order survives
    step = ExactDedup.from_params(scope="prompt")
    d = step.run(ds.lazy(), ctx_for(tmp_path)).decisions.sort("id")
    # prompt scope: the longest response (record 2) survives its group of three
    assert sorted(d["id"].to_list()) == sorted([ids[0], ids[1]])
    assert set(d["duplicate_of"].to_list()) == {ids[2]}
    assert step.report_extra == {"groups": 1.0, "removed": 2.0}
    g = pl.read_parquet(tmp_path / "02_dedup" / "groups.parquet").sort("member")
    assert g.columns == ["group_id", "survivor", "member", "similarity", "removed", "step"]
    assert sorted(g["member"].to_list()) == sorted(ids[:3])
    assert g.filter(pl.col("member") == ids[2])["removed"].to_list() == [False]
    assert set(g["step"].to_list()) == {"dedup.exact"}


def test_keep_policies_pick_the_survivor(batch_of, tmp_path):
    ds = batch_of("user: same || assistant: a", "user: same || assistant: bbb", "user: same || assistant: cc",
                  sources=["x", "y", "z"])
    ids = ds["id"].to_list()

    def survivor(**kw) -> str:
        d = ExactDedup.from_params(scope="prompt", **kw).run(ds.lazy(), ctx_for(tmp_path)).decisions
        (s,) = set(d["duplicate_of"].to_list())
        assert len(d) == 2 and s not in d["id"].to_list()
        return s

    assert survivor() == ids[1]
    assert survivor(keep="first") == ids[0]
    assert survivor(keep="source_priority", source_priority=["z", "x"]) == ids[2]
    scored = ds.with_columns(pl.Series("quality.score", [0.2, 0.1, 0.9]))
    d = ExactDedup.from_params(scope="prompt", keep="score:quality.score").run(scored.lazy(), ctx_for(tmp_path)).decisions
    assert set(d["duplicate_of"]) == {ids[2]}
    # a protected record (labelled keep) is never removed, and it does not displace the policy's
    # survivor: both stay
    d = ExactDedup.from_params(scope="prompt").run(ds.lazy(), ctx_for(tmp_path, protected_ids=frozenset({ids[0]}))).decisions
    assert set(d["duplicate_of"]) == {ids[1]} and d["id"].to_list() == [ids[2]]
    # "not a duplicate" marks are honoured
    d = ExactDedup.from_params(scope="prompt").run(ds.lazy(), ctx_for(tmp_path, not_duplicate_ids=frozenset({ids[0]}))).decisions
    assert d["id"].to_list() == [ids[2]]


def test_keep_param_validation_and_missing_score_column(batch_of, tmp_path):
    from pydantic import ValidationError

    from curate.errors import ConfigError

    with pytest.raises(ValidationError, match="keep must be one of"):
        ExactDedup.from_params(keep="longest")
    with pytest.raises(ValidationError, match="source_priority list"):
        ExactDedup.from_params(keep="source_priority")
    with pytest.raises(ConfigError, match="quality.score"):
        ExactDedup.from_params(keep="score:quality.score").run(batch_of("user: a").lazy(), ctx_for(tmp_path))


def test_empty_prompts_are_never_grouped(batch_of, tmp_path):
    ds = batch_of("assistant: a", "assistant: b", "user:  || assistant: c")
    assert ExactDedup.from_params(scope="prompt").run(ds.lazy(), ctx_for(tmp_path)).decisions.is_empty()


def test_exact_scores_one_on_planted_truth(tmp_path):
    ds, truth = planted_corpus(n_base=200, n_dups=80, seed=1)
    gt = pl.DataFrame([{"file": t["file"], "record": t["record"], "kind": t["kind"],
                        "of_file": t["of"]["file"], "of_record": t["of"]["record"]} for t in truth])
    gt = attach_ids(gt, ds)
    d = ExactDedup.from_params(scope="prompt").run(ds.lazy(), ctx_for(tmp_path)).decisions
    score = evaluate(d, gt, kinds={"exact_dup"})
    assert (score.precision, score.recall) == (1.0, 1.0)
    assert score.planted == 20


def test_cross_source_alpaca_files(shared_data, tmp_path):
    from curate.schema import make_batch, record_id

    rows = []
    for f in sorted((shared_data / "alpaca").glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        for i, r in enumerate(data):
            prompt = (r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")).strip()
            rows.append({"id": record_id(f.stem, f.name, i), "source": f.stem.split("__")[-1], "subset": None,
                         "turns": [{"role": "user", "content": prompt}, {"role": "assistant", "content": r["output"] or ""}],
                         "meta": None, "provenance": {"file": f.name, "record": i}})
    ds = make_batch(rows)
    d = ExactDedup.from_params(scope="prompt").run(ds.lazy(), ctx_for(tmp_path)).decisions
    src = dict(zip(ds["id"], ds["source"]))
    cross = sum(src[a] != src[b] for a, b in zip(d["id"], d["duplicate_of"]))
    # alpaca_en_demo and alpaca_data_cleaned_1000 share prompts: found across files
    # measured on these fixed files: 293 repeated prompts (245 inside oaast_sft_zh, whose records share
    # first turns), 25 of them across files (alpaca_en_demo and alpaca_data_cleaned_1000 share prompts)
    assert (len(d), cross) == (293, 25)
