"""The uncurated baseline for ``curate eval``: ``curate export --step ingest`` exports everything the run read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from export.conftest import build_run

from curate.cli import main
from curate.train.data import load_split


def test_export_step_ingest_is_the_uncurated_input(tmp_path: Path, capsys: Any) -> None:
    run = build_run(tmp_path / "run")
    ingested = pl.read_parquet(run / "00_ingest" / "kept.parquet")
    assert main(["export", str(run), str(tmp_path / "curated")]) == 0
    assert main(["export", str(run), str(tmp_path / "uncurated"), "--step", "ingest"]) == 0
    curated = load_split(tmp_path / "curated", "train")
    uncurated = load_split(tmp_path / "uncurated", "train")
    assert len(uncurated) == ingested.height > len(curated)
    assert {c.id for c in curated} < {c.id for c in uncurated}
    card = (tmp_path / "uncurated" / "README.md").read_text()
    assert "curate export --step ingest" in card and "not from the whole curated set" in card
    capsys.readouterr()
    assert main(["export", str(run), str(tmp_path / "x"), "--step", "filter_nothing"]) == 2
    err = capsys.readouterr().err
    assert "--step filter_nothing: no finished step" in err and "ingest" in err
