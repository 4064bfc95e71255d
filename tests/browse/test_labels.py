"""The labels store: append-only history, latest-wins, WAL with two writers, export, CLI."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from curate.cli import main
from curate.errors import ConfigError, MissingResourceError
from curate.labels import LabelStore, default_labels_path, resolve_labels_path


def test_latest_label_wins_and_history_is_kept(labels_path: Path):
    s = LabelStore(labels_path)
    assert s.add(["a", "b", "a"], "drop", tags=["spam", " spam ", ""], note="ads", annotator="ann") == 2
    s.add(["a"], "keep", annotator="bob")
    s.add(["b"], "clear", annotator="bob")
    s.add(["c"], "not_duplicate")
    eff = s.effective()
    assert dict(eff.select("record_id", "label").iter_rows()) == {"a": "keep", "c": "not_duplicate"}
    assert s.history(["a"])["label"].to_list() == ["drop", "keep"]
    assert s.history(["b"])["tags"].to_list()[0] == ["spam"]
    assert s.history().height == 5
    # Counting only ann's labels, a is still a drop and b is a drop she never cleared.
    assert dict(s.effective(["ann"]).select("record_id", "label").iter_rows()) == {"a": "drop", "b": "drop"}
    assert s.ids("keep") == frozenset({"a"})
    assert s.count() == 2


def test_wal_mode_and_bad_label(labels_path: Path):
    s = LabelStore(labels_path)
    with sqlite3.connect(labels_path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ConfigError, match="label must be one of"):
        s.add(["a"], "maybe")
    assert s.history().height == 0
    with pytest.raises(MissingResourceError):
        LabelStore(labels_path.with_name("absent.sqlite"), create=False)


def _writer(path: str, who: str, n: int) -> None:
    store = LabelStore(path)
    for i in range(n):
        store.add([f"{who}-{i}", f"shared-{i}"], "drop" if i % 2 else "keep", annotator=who, note=str(i))


def test_two_processes_writing_at_once_lose_nothing(labels_path: Path):
    LabelStore(labels_path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(labels_path), who, 150)) for who in ("p1", "p2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    hist = LabelStore(labels_path).history()
    assert hist.height == 2 * 150 * 2
    assert hist.filter(pl.col("annotator") == "p1").height == 300
    assert hist["seq"].is_unique().all()
    assert LabelStore(labels_path).effective().height == 150 * 3


def test_default_path_is_beside_the_runs(run_dir: Path):
    assert default_labels_path(run_dir) == run_dir.parent / "labels.sqlite"
    assert resolve_labels_path(run_dir) == run_dir.parent / "labels.sqlite"
    assert resolve_labels_path(run_dir.parent) == run_dir.parent / "labels.sqlite"
    assert resolve_labels_path(run_dir.parent / "x.sqlite") == run_dir.parent / "x.sqlite"


def test_export_and_show_cli(labels_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    s = LabelStore(labels_path)
    s.add(["a"], "drop", tags=["t1", "t2"], note="n", annotator="ann")
    s.add(["a"], "keep", annotator="ann")
    s.add(["b"], "not_duplicate", annotator="ann")
    pq = tmp_path / "out" / "labels.parquet"
    assert main(["labels", "export", str(labels_path), "--format", "parquet", "-o", str(pq)]) == 0
    df = pl.read_parquet(pq)
    assert df.select("record_id", "label").rows() == [("a", "keep"), ("b", "not_duplicate")]
    jl = tmp_path / "hist.jsonl"
    assert main(["labels", "export", str(labels_path), "--format", "jsonl", "-o", str(jl), "--history"]) == 0
    rows = [json.loads(line) for line in jl.read_text().splitlines()]
    assert [r["label"] for r in rows] == ["drop", "keep", "not_duplicate"]
    assert rows[0]["tags"] == ["t1", "t2"] and rows[0]["annotator"] == "ann"
    capsys.readouterr()
    assert main(["labels", "show", str(labels_path)]) == 0
    out = capsys.readouterr().out
    assert "2 labelled records" in out and "keep: 1" in out and "not_duplicate: 1" in out
    assert main(["labels", "show", str(labels_path), "--id", "a"]) == 0
    assert "drop" in capsys.readouterr().out
    assert main(["labels", "show", str(tmp_path / "none.sqlite")]) == 2
