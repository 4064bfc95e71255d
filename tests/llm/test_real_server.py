"""The LLM steps against a real OpenAI-compatible server (`transformers serve`, tiny local Llama, CPU).

Plumbing only: the tiny model's text is noise, so these tests check requests, the cache, resuming and
the books, never the quality of an answer.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import load_recipe
from curate.steps.base import StepContext
from curate.steps.score.llm_judge import LLMJudgeScorer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def write_recipe(tmp_path: Path, server, n: int, **gen: object) -> Path:
    src = tmp_path / "prompts.jsonl"
    src.write_text("".join(json.dumps({"instruction": f"Tell me fact number {i}.", "input": "", "output": ""}) + "\n"
                           for i in range(n)))
    params = {"llm": server.llm(max_concurrency=2), "sampling": {"max_tokens": 8, "temperature": 0.0},
              "keep_truncated": True, **gen}
    recipe = {"name": "distill", "seed": 1, "sources": [{"id": "p", "format": "alpaca", "path": str(src)}],
              "steps": [{"use": "generate.responses", "params": params}]}
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def gen_report(res):
    return next(s for s in res.report["steps"] if s["step_id"] == "generate_responses")


def test_recipe_generates_and_a_rerun_asks_nothing(tmp_path, tiny_server):
    recipe = write_recipe(tmp_path, tiny_server, 4)
    before = tiny_server.chat_requests()
    res = run_pipeline(load_recipe(recipe), tmp_path / "runs" / "distill" / "a", progress=False)
    rep = gen_report(res)
    assert (rep["n_in"], rep["n_out"], rep["extra"]["generated"]) == (4, 4, 4)
    assert rep["extra"]["llm_requests"] == 4 and rep["extra"]["llm_errors"] == 0
    assert rep["extra"]["llm_completion_tokens"] > 0 and rep["extra"]["llm_prompt_tokens"] > 0
    assert tiny_server.chat_requests() - before == 4
    kept = pl.read_parquet(res.run_dir / "01_generate_responses" / "kept.parquet")
    assert kept["turns"].list.len().to_list() == [2] * 4
    assert set(kept["generate_responses.model"].to_list()) == {tiny_server.model}
    assert set(kept["generate_responses.finish_reason"].to_list()) <= {"stop", "length"}
    # a new run of the same recipe (a new run directory beside the first) is answered by the cache
    again = run_pipeline(load_recipe(recipe), tmp_path / "runs" / "distill" / "b", progress=False)
    assert tiny_server.chat_requests() - before == 4
    rep2 = gen_report(again)
    assert rep2["extra"]["llm_requests"] == 0 and rep2["extra"]["llm_cache_hits"] == 4
    kept2 = pl.read_parquet(again.run_dir / "01_generate_responses" / "kept.parquet")
    assert kept2["turns"].to_list() == kept["turns"].to_list()


def _cached(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_killed_run_resumes_without_repeating_cached_requests(tmp_path, tiny_server):
    n = 12
    recipe = write_recipe(tmp_path, tiny_server, n, llm=tiny_server.llm(max_concurrency=1),
                          sampling={"max_tokens": 24, "temperature": 0.0})
    run_dir = tmp_path / "runs" / "distill" / "killed"
    cache = run_dir.parent / "llm_cache.sqlite"
    cmd = [sys.executable, "-m", "curate.cli", "run", str(recipe), "--run-dir", str(run_dir), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and _cached(cache) < 3 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # a request in flight when the run died is answered (and logged) now, never cached
    cached = _cached(cache)
    assert 3 <= cached < n, "the run was not killed mid-generation"
    assert not (run_dir / "01_generate_responses" / "done.json").exists()
    before = tiny_server.chat_requests()
    res = run_pipeline(load_recipe(recipe), run_dir, progress=False)
    rep = gen_report(res)
    assert tiny_server.chat_requests() - before == n - cached
    assert rep["extra"]["llm_cache_hits"] == cached and rep["extra"]["llm_requests"] == n - cached
    assert rep["n_out"] == n and _cached(cache) == n


def test_judge_plumbing_with_a_model_that_cannot_judge(tmp_path, tiny_server, batch_of):
    """The tiny model writes noise: every answer is unparsed, retried once, and kept with a null score."""
    step = LLMJudgeScorer.from_params(llm=tiny_server.llm(max_concurrency=2), on_unparsed="keep",
                                      sampling={"max_tokens": 12, "temperature": 0.0})
    run = tmp_path / "runs" / "j" / "1"
    step.prepare(StepContext(run_dir=run, work_dir=run / "01_score_llm_judge", progress=False))
    out = step.judge(batch_of("user: 2+2? || assistant: 4", "user: Capital of France? || assistant: Paris",
                              "user: hi")["turns"].to_list())
    assert out == [(None, None, None)] * 3
    assert step.report_extra["judge_unparsed"] == 2 and step.report_extra["judge_retries"] == 2
    assert step.report_extra["no_answer"] == 1
    assert step.client.stats.requests == 4 and step.client.stats.errors == 0
