from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.export.atomic import PAUSE_ENV, TMP_MARK, atomic_output_dir
from curate.export.run import ExportOptions, export_run

ROOT = Path(__file__).resolve().parents[2]


def test_failure_inside_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output_dir(out, overwrite=False) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_killed_export_leaves_no_out_dir_and_next_run_cleans_up(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "ds"
    env = dict(os.environ, **{PAUSE_ENV: "30"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "export", str(run_dir), str(out), "--shard-rows", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 40
        shards: list[Path] = []
        while time.monotonic() < deadline and not shards:
            shards = list(out.parent.glob(f".ds{TMP_MARK}*/data/*.parquet")) if out.parent.exists() else []
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert shards, "the export never wrote its first shard"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    stale = list(out.parent.glob(f".ds{TMP_MARK}*"))
    assert len(stale) == 1  # the killed export's temp folder, nothing else

    res = export_run(run_dir, out, ExportOptions())
    assert res.n_exported == 16 and (out / "README.md").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["ds"]


def test_live_exports_temp_folder_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    live = tmp_path / f".ds{TMP_MARK}1-abcd"  # pid 1 is always alive
    live.mkdir()
    with atomic_output_dir(out, overwrite=False) as tmp:
        (tmp / "export.json").write_text("{}")
    assert live.exists() and out.exists()
