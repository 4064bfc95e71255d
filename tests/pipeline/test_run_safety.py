"""Runs that collide, resume from torn state files, or only try a recipe: no crash, no clobbered output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate import layout as L
from curate.cli import main
from curate.layout import RunLayout
from curate.pipeline import runner as runner_mod
from curate.pipeline.runner import default_run_dir, run_pipeline
from curate.pipeline.spec import build_plan
from curate.rundir import RunDir, RunDirBusyError, RunLock, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]


def _write_alpaca(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            out = "ok" if i % 5 == 0 else f"Answer number {i}, with enough words to pass."
            fh.write(json.dumps({"instruction": f"Question {i} about the catalogue", "input": "", "output": out}) + "\n")


def _recipe(src: Path, export: Path | None = None, labels: bool = False) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"use": "label.apply"}] if labels else []
    steps.append({"use": "filter.length", "params": {"min_chars": 40}})
    if export is not None:
        steps.append({"use": "write.hub_dataset", "params": {"path": str(export)}})
    return {"name": "t", "seed": 1, "sources": [{"id": "a", "format": "alpaca", "path": str(src)}],
            "steps": steps, "executor": {"workers": 1}}


@pytest.fixture
def src(tmp_path: Path) -> Path:
    p = tmp_path / "a.jsonl"
    _write_alpaca(p, 50)
    return p


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _FrozenClock:  # type: ignore[override]
        return cls(2026, 1, 2, 3, 4, 5, tzinfo=tz)


def test_runs_started_in_the_same_second_get_their_own_folders(
    tmp_path: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_mod, "datetime", _FrozenClock)
    root = tmp_path / "runs"
    a = run_pipeline(build_plan(_recipe(src)), None, runs_root=root, progress=False, log=lambda _m: None)
    b = run_pipeline(build_plan(_recipe(src)), None, runs_root=root, progress=False, log=lambda _m: None)
    assert a.run_dir == root / "t" / "20260102-030405"
    assert b.run_dir == root / "t" / "20260102-030405-2"
    assert (root / "t" / "latest").resolve() == b.run_dir.resolve()
    assert default_run_dir(build_plan(_recipe(src)), root).name == "20260102-030405-3"


def test_second_lock_on_a_run_dir_fails_at_once(tmp_path: Path, src: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir), pytest.raises(RunDirBusyError) as e:
        run_pipeline(build_plan(_recipe(src)), run_dir, progress=False)
    assert str(e.value) == (
        f"{run_dir}: run directory is in use by pid {os.getpid()} (another curate run writes it); wait for it "
        "to finish or choose another --run-dir"
    )
    res = run_pipeline(build_plan(_recipe(src)), run_dir, progress=False, log=lambda _m: None)  # released
    assert res.report["totals"]["read"] == 50


@pytest.mark.timeout(60)
def test_a_run_into_a_folder_another_process_is_writing_fails_at_once(
    tmp_path: Path, src: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from pathlib import Path; from curate.rundir import RunLock; "
         "lock = RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)"), str(run_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        recipe = tmp_path / "r.json"
        recipe.write_text(json.dumps(_recipe(src)))
        t0 = time.perf_counter()
        assert main(["run", str(recipe), "--run-dir", str(run_dir), "--quiet"]) == 2
        assert time.perf_counter() - t0 < 10
        err = capsys.readouterr().err
        assert err.endswith(
            f"error: {run_dir}: run directory is in use by pid {holder.pid} (another curate run writes it); wait "
            "for it to finish or choose another --run-dir\n"
        )
        assert "Traceback" not in err and not RunLayout(run_dir).spec.exists()
    finally:
        holder.kill()
        holder.wait()


def test_torn_done_json_is_recomputed_with_a_line(tmp_path: Path, src: Path) -> None:
    run_dir = tmp_path / "run"
    run_pipeline(build_plan(_recipe(src)), run_dir, progress=False, log=lambda _m: None)
    done = RunLayout(run_dir).step(1, "filter_length").done
    done.write_bytes(done.read_bytes()[:37])  # what a non-atomic write killed half-way leaves
    lines: list[str] = []
    res = run_pipeline(build_plan(_recipe(src)), run_dir, progress=False, log=lines.append)
    assert res.cached_steps == ["ingest"]
    assert f"{done}: unreadable (torn write?); the step counts as not finished and is recomputed" in lines
    assert json.loads(done.read_text())["report"]["n_out"] == res.report["steps"][1]["n_out"] == 40


def test_state_files_are_replaced_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "done.json"
    target.write_text('{"old": true}')

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, '{"new": true}')
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["done.json"]  # no temp file left behind


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("flag", "kw"), [("--dry-run", {"dry_run": True}), ("--limit 7", {"limit": 7})])
def test_trial_runs_leave_the_export_and_latest_alone(
    tmp_path: Path, src: Path, flag: str, kw: dict[str, Any]
) -> None:
    export = tmp_path / "curated"
    root = tmp_path / "runs"
    real = run_pipeline(build_plan(_recipe(src, export)), None, runs_root=root, progress=False, log=lambda _m: None)
    before = _snapshot(export)
    assert json.loads(before["export.json"])["n_exported"] == 40
    time.sleep(1.05)  # a new timestamp
    lines: list[str] = []
    trial = run_pipeline(build_plan(_recipe(src, export)), None, runs_root=root, progress=False, log=lines.append, **kw)
    assert _snapshot(export) == before  # the curated export is untouched
    assert (root / "t" / "latest").resolve() == real.run_dir.resolve()  # latest did not move
    inside = RunLayout(trial.run_dir).step(2, "write_hub_dataset").file(L.TRIAL_EXPORT)
    assert f"trial run ({flag}): write_hub_dataset writes to {inside.absolute()} inside the run directory; the " \
           "recipe's output folder is left alone" in lines
    manifest = json.loads((inside / "export.json").read_text())
    assert manifest["n_exported"] == (50 if "dry_run" in kw else 5)  # a dry run removes nothing; 7 read, 2 too short
    assert manifest["trial"] == flag
    assert f"This export comes from a trial run (`{flag}`), not from the whole curated set." in (
        inside / "README.md").read_text()


def test_trial_run_through_the_cli_into_its_own_run_dir(tmp_path: Path, src: Path, capsys) -> None:
    export = tmp_path / "curated"
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps(_recipe(src, export)))
    assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--dry-run", "--quiet"]) == 0
    assert not export.exists()
    assert (RunLayout(tmp_path / "run").step(2, "write_hub_dataset").file(L.TRIAL_EXPORT) / "export.json").exists()
    assert "trial run (--dry-run): write_hub_dataset writes to" in capsys.readouterr().err


def test_labels_that_match_no_record_are_reported(tmp_path: Path, src: Path) -> None:
    from curate.labels import LabelStore

    first = run_pipeline(build_plan(_recipe(src)), tmp_path / "run0", progress=False, log=lambda _m: None)
    some_id = RunDir(first.run_dir).final().select("id").collect()["id"][0]
    labels = tmp_path / "labels.sqlite"
    store = LabelStore(labels)
    store.add([some_id], "drop")
    store.add(["zz-gone-2", "zz-gone-1"], "keep")
    lines: list[str] = []
    res = run_pipeline(build_plan(_recipe(src, labels=True)), tmp_path / "run", progress=False,
                       labels_path=labels, log=lines.append)
    rep = res.report["steps"][1]
    assert rep["step_id"] == "label_apply" and rep["rejected"] == {"manual_drop": 1}
    assert rep["extra"]["labels_unmatched"] == 2
    assert rep["extra"]["labels_unmatched_examples"] == ["zz-gone-1", "zz-gone-2"]
    line = next(m for m in lines if m.startswith("label_apply"))
    assert "labels matching no record 2 (e.g. zz-gone-1, zz-gone-2)" in line
    # a cached rerun prints the same line from done.json
    lines.clear()
    again = run_pipeline(build_plan(_recipe(src, labels=True)), tmp_path / "run", progress=False,
                         labels_path=labels, log=lines.append)
    assert "label_apply" in again.cached_steps
    assert "labels matching no record 2 (e.g. zz-gone-1, zz-gone-2)" in next(m for m in lines if m.startswith("label_apply"))


def test_all_labels_matching_reports_zero(tmp_path: Path, src: Path) -> None:
    from curate.labels import LabelStore

    first = run_pipeline(build_plan(_recipe(src)), tmp_path / "run0", progress=False, log=lambda _m: None)
    ids = pl.read_parquet(RunLayout(first.run_dir).ingest.kept)["id"].to_list()
    labels = tmp_path / "labels.sqlite"
    LabelStore(labels).add(ids[:3], "keep")
    res = run_pipeline(build_plan(_recipe(src, labels=True)), tmp_path / "run", progress=False,
                       labels_path=labels, log=lambda _m: None)
    assert res.report["steps"][1]["extra"]["labels_unmatched"] == 0
    assert "labels_unmatched_examples" not in res.report["steps"][1]["extra"]
