"""Load a few real records from the shared sample data as a batch (tests of clean/filter steps)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from curate.schema import make_batch, record_id


def alpaca_batch(shared_data: Path, name: str, indices: list[int] | None = None) -> pl.DataFrame:
    """Alpaca records (instruction + input -> user, output -> assistant) of one shared file."""
    path = next((shared_data / "alpaca").glob(name + "*"))
    data = json.loads(path.read_text(encoding="utf-8"))
    picked = [(i, data[i]) for i in indices] if indices is not None else list(enumerate(data))
    rows = []
    for i, r in picked:
        user = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
        rows.append(
            {
                "id": record_id("alpaca", path.name, i),
                "source": "alpaca",
                "turns": [{"role": "user", "content": user}, {"role": "assistant", "content": r["output"]}],
                "provenance": {"file": path.name, "record": i},
            }
        )
    return make_batch(rows)
