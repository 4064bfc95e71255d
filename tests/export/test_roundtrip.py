"""Export in a trainer format, read it back with curate's own reader: the same conversations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.export.run import ExportOptions, export_run
from curate.rundir import RunDir


def _reader(fmt: str):
    from curate.steps.registry import RegistryError, get_step

    try:
        return get_step(f"read.{fmt}")()
    except RegistryError:
        pytest.skip(f"reader read.{fmt} is not registered yet (curate/ingest/{fmt}.py missing)")


@pytest.mark.parametrize(("fmt", "file"), [("sharegpt", "train.json"), ("alpaca", "train.json"), ("openai", "train.jsonl")])
def test_export_then_ingest_gives_the_same_conversations(run_dir: Path, tmp_path: Path, fmt: str, file: str) -> None:
    reader = _reader(fmt)
    out = tmp_path / fmt
    res = export_run(run_dir, out, ExportOptions(fmt=fmt))
    kept = {r["id"]: r["turns"] for r in RunDir(run_dir).final().collect().iter_rows(named=True)}
    skipped = set()
    if (out / "skipped.jsonl").exists():
        skipped = {json.loads(line)["id"] for line in (out / "skipped.jsonl").read_text().splitlines()}
    assert len(skipped) == sum(res.skipped.values())
    read = list(reader.records(str(out / file), "again"))
    assert all(isinstance(r, dict) for r in read), [r for r in read if not isinstance(r, dict)]
    expected = sorted((json.dumps(t, sort_keys=True) for i, t in kept.items() if i not in skipped))
    assert sorted(json.dumps(r["turns"], sort_keys=True) for r in read) == expected
    if fmt == "alpaca":
        assert res.skipped == {"tool_turn": 1, "ends_with_user": 1}
        assert any(len(r["turns"]) == 5 for r in read)  # the multi-turn one came back through `history`
    else:
        assert res.skipped == {} and not (out / "skipped.jsonl").exists()
