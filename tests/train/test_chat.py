"""``curate chat``: the loop's commands, an adapter folder through transformers, a GGUF file through gpt4all over a
real pipe."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from curate.cli import main
from curate.train.chat import chat_loop, render_template

HAS_GPT4ALL = importlib.util.find_spec("gpt4all") is not None


class Recorder:
    label = "recorder"

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []

    def reply(self, turns: list[dict[str, str]]) -> str:
        self.seen.append([dict(t) for t in turns])
        return f"reply {len(self.seen)}"


def test_loop_keeps_history_resets_skips_blanks_and_exits() -> None:
    rec = Recorder()
    out = io.StringIO()
    n = chat_loop(rec, io.StringIO("hi\n\n  \nmore\n/reset\nagain\n/exit\nnever\n"), out, system="Be brief.")
    assert n == 3 and out.getvalue() == "reply 1\nreply 2\nreply 3\n"
    assert rec.seen[1] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                           {"role": "assistant", "content": "reply 1"}, {"role": "user", "content": "more"}]
    assert rec.seen[2] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "again"}]


def test_gguf_side_renders_the_training_template_as_transformers_does(tiny32_run: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny32_run["out"] / "adapter"))
    turns = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},
             {"role": "user", "content": "Q2"}]
    want = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    assert render_template(tok.chat_template, turns, tok.bos_token, tok.eos_token) == want


def test_chat_with_an_adapter_folder_over_stdin(tiny32_run: dict[str, Any], monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("What colour is the sky?\n/reset\nWhat do cats say?\n/exit\nName a fruit.\n"))
    assert main(["chat", str(tiny32_run["out"]), "--temperature", "0", "--max-new-tokens", "12"]) == 0
    assert capsys.readouterr().out.splitlines() == ["The sky is blue.", "Cats say meow."]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_GPT4ALL, reason="the gpt4all bindings are not installed (pip install 'curate[gguf]')")
def test_chat_with_a_gguf_file_through_a_pipe(tiny32_run: dict[str, Any]) -> None:
    gguf = tiny32_run["out"] / "model-q8_0.gguf"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", "chat", str(gguf), "--temperature", "0", "--max-new-tokens", "12"],
        input="What colour is the sky?\n/reset\nName a fruit.\n/exit\n", capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["The sky is blue.", "An apple is a fruit."]


def test_chat_refuses_what_it_cannot_open(tmp_path: Path, capsys: Any, tiny32_run: dict[str, Any]) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    plain = tmp_path / "plain.gguf"  # the base model has no chat template of its own
    assert main(["export-model", str(tiny32_run["model"]), "--gguf", "f16", "-o", str(plain)]) == 0
    assert "pass --template to store one" in capsys.readouterr().out
    for argv, words in [(["chat", str(tmp_path / "missing")], "not found"),
                        (["chat", str(plain)], "has no chat template"),
                        (["chat", str(plain), "--template", "chatml"], "apply to model and adapter folders"),
                        (["chat", str(bad)], "not .gguf"),
                        (["chat", str(tmp_path)], "no config.json"),
                        (["chat", str(tmp_path), "--temperature", "-1"], "--temperature")]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: ") and words in err, err
