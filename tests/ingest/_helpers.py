"""Helpers shared by the reader tests: read every file, check the books balance, flatten turns."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from curate.ingest.base import Quarantined, Reader, ReadStats, read_batches
from curate.schema import content_hash, conversation_id


def read_all(
    reader: Reader, paths: Sequence[str | Path], source: str = "tiny"
) -> tuple[pl.DataFrame, list[Quarantined], ReadStats]:
    """Read files completely; assert read == ingested + quarantined; return (batch, quarantined, stats)."""
    stats, quarantined = ReadStats(), []
    batches = list(
        read_batches(reader, [str(p) for p in paths], source, stats=stats, on_quarantine=quarantined.append)
    )
    df = pl.concat(batches) if batches else pl.DataFrame()
    assert stats.read == stats.ingested + stats.quarantined == len(df) + len(quarantined)
    return df, quarantined, stats


def convs(df: pl.DataFrame) -> list[list[tuple[str, str]]]:
    return [[(t["role"], t["content"]) for t in turns] for turns in df["turns"].to_list()]


def metas(df: pl.DataFrame) -> list[Any]:
    return [json.loads(m) if m else None for m in df["meta"].to_list()]


def expected_ids(df: pl.DataFrame, source: str = "tiny") -> list[str]:
    """The ids the content scheme gives these conversations in this order: source, hash, occurrence."""
    seen: Counter[str] = Counter()
    out = []
    for turns in df["turns"].to_list():
        h = content_hash(turns)
        out.append(conversation_id(source, h, seen[h]))
        seen[h] += 1
    return out
