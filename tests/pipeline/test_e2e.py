"""End to end: the mini recipe over the fixtures, and a real kill-and-resume of `curate run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from curate import layout as L
from curate.layout import RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import load_recipe
from curate.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "pipelines" / "mini.yaml"


def test_mini_recipe_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "export"
    plan = load_recipe(MINI, [f"steps.write_hub_dataset.params.path={out}"])
    res = run_pipeline(plan, tmp_path / "run", progress=False)
    rep = json.loads(RunLayout(tmp_path / "run").report.read_text())
    t = rep["totals"]
    assert t["read"] == 31 and t["read"] + t["added"] == t["kept"] + t["removed"] + t["quarantined"]
    for s in rep["steps"]:
        assert s["n_in"] + s["n_added"] == s["n_out"] + sum(s["rejected"].values()) + sum(s["quarantined"].values())
    assert {s["step_id"] for s in rep["steps"]} >= {"ingest", "embed_sentence_transformer", "score_map"}
    assert set(rep["sources"]) == {"alpaca", "sharegpt", "oig", "se"}
    assert sum(v["kept"] for v in rep["sources"].values()) == t["kept"]
    rd = RunDir(tmp_path / "run")
    m = pl.read_parquet(rd.layout.step_named("score_map").file(L.MAP))
    assert len(m) == t["kept"] and m["topic"].null_count() == 0
    assert rep["diversity"]["overall"]["count"] == t["kept"]
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == t["kept"]
    assert ds[0]["messages"][0]["role"] in {"system", "user"}
    assert res.cached_steps == []


def _write_alpaca(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"instruction": f"Describe item number {i} in the catalogue of things",
                                 "input": "", "output": f"Item {i} is one of many things. " * (1 + i % 5)}) + "\n")


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing(tmp_path):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 60_000)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({
        "name": "kill", "sources": [{"id": "a", "format": "alpaca", "path": str(src)}],
        "steps": [{"use": "filter.length", "params": {"min_chars": 5}}, {"use": "filter.repetition"},
                  {"use": "dedup.exact"}, {"use": "dedup.minhash"}, {"use": "filter.language"}],
        "executor": {"workers": 1},
    }))
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "curate.cli", "run", str(recipe), "--run-dir", str(run_dir), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    lay = RunLayout(run_dir)
    while time.time() < deadline and not lay.step(1, "filter_length").done.exists():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {f.step_id for f in lay.step_folders() if f.done.exists()}
    assert "filter_length" in finished
    res = run_pipeline(load_recipe(recipe), run_dir, progress=False)
    assert set(res.cached_steps) >= {"ingest", "filter_length"}
    assert res.report["totals"]["read"] == 60_000
    assert lay.report.exists()
