"""The run layout: path arithmetic and the layout version a run records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate import layout as L
from curate.layout import RunLayout
from curate.rundir import RunDir, RunDirError, layout_version


def test_paths_of_a_step_folder(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path / "runs" / "mini" / "ts")
    f = lay.step(3, "filter_length")
    assert f.path == lay.root / "03_filter_length"
    assert (f.index, f.step_id) == (3, "filter_length")
    assert f.kept.name == L.KEPT and f.done.parent == f.path
    assert f.ledger == lay.ledger_dir / "03_filter_length.parquet"
    assert f.quarantine == lay.quarantine_dir / "03_filter_length.jsonl"
    assert lay.step(0, "anything") == lay.ingest
    assert lay.folder(f.path) == f
    assert lay.recipe.labels == tmp_path / "runs" / "mini" / L.LABELS_DB
    with pytest.raises(ValueError):
        lay.folder("ledger")


def test_find_returns_the_newest_before_a_folder(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path)
    for i, sid in ((1, "embed"), (3, "embed_again")):
        lay.step(i, sid).path.mkdir()
        lay.step(i, sid).file(L.EMBEDDINGS).write_bytes(b"")
    assert lay.find(L.EMBEDDINGS) == lay.step(3, "embed_again").file(L.EMBEDDINGS)
    assert lay.find(L.EMBEDDINGS, before=lay.step(3, "embed_again")) == lay.step(1, "embed").file(L.EMBEDDINGS)
    assert lay.find(L.MAP) is None
    assert [a.name for a in L.ARTIFACTS if a.schema is not None] == [
        "embedding_ids.parquet", "index_ids.parquet", "groups.parquet", "map.parquet", "map_removed.parquet"]


def test_layout_version_of_old_and_future_runs(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path)
    lay.spec.write_text("name: x\n")
    assert layout_version(lay) == 1  # no manifest: a run of a curate before versions, same names
    lay.manifest.write_text(json.dumps({"curate": "0.1.0"}))
    assert RunDir(tmp_path).version == 1
    lay.manifest.write_text(json.dumps({"layout": L.LAYOUT_VERSION}))
    assert RunDir(tmp_path).version == L.LAYOUT_VERSION
    lay.manifest.write_text(json.dumps({"layout": L.LAYOUT_VERSION + 1, "curate": "9.9"}))
    with pytest.raises(RunDirError, match=r"curate 9\.9 with run layout"):
        RunDir(tmp_path)
