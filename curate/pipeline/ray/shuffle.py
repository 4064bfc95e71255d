"""A hash-partitioned groupby through files: map tasks scatter rows into buckets, bucket tasks gather them.

``scatter`` (in a shard's task) writes the rows of each bucket to ``root/b<bucket>/s<shard>.parquet``;
``gather`` (in a bucket's task) reads every shard's file of one bucket, so all rows with the same key
meet in one task. This is the shuffle of Ray Data's ``groupby``, but through the run directory rather
than the object store: a bucket's rows never sit in the object store or in the driver (no 512 MB
message cap, no spilling), a retried task rewrites the same file names (so a shuffle is exact whatever
the retries), and the work in a bucket is numpy/polars on one array (a sort), not Arrow rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from curate.pipeline.ray.shards import save_parquet


def bucket_dir(root: Path, bucket: int) -> Path:
    return root / f"b{bucket:04d}"


def scatter(df: pl.DataFrame, bucket: pl.Series, n_buckets: int, root: Path, shard: int, work: Path) -> None:
    """Write the rows of ``df`` with ``bucket`` value b to ``root/b<b>/s<shard>.parquet`` (no file when empty)."""
    if not df.height:
        return
    tagged = df.with_columns(bucket.alias("_bucket"))
    for (b,), part in tagged.group_by("_bucket", maintain_order=True):
        if b is None or not 0 <= int(b) < n_buckets:
            raise ValueError(f"bucket {b} out of range 0..{n_buckets - 1}")
        save_parquet(part.drop("_bucket"), bucket_dir(root, int(b)) / f"s{shard:05d}.parquet", work,
                     compression="lz4")


def gather(root: Path, bucket: int, schema: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """Every shard's rows of one bucket, in shard order, with their shard number as ``_shard``."""
    folder = bucket_dir(root, bucket)
    files = sorted(folder.glob("s*.parquet")) if folder.is_dir() else []
    if not files:
        base = pl.DataFrame(schema=schema or {})
        return base.with_columns(pl.lit(None, dtype=pl.Int64).alias("_shard"))
    return pl.concat([pl.read_parquet(f).with_columns(pl.lit(int(f.stem[1:]), dtype=pl.Int64).alias("_shard"))
                      for f in files], how="vertical_relaxed")


def hex_bucket(col: str, n_buckets: int) -> pl.Expr:
    """Bucket of a hex-digest column (its first 8 hex digits mod ``n_buckets``): the same in every process."""
    return (pl.col(col).str.slice(0, 8).str.to_integer(base=16).cast(pl.Int64) % n_buckets).alias("_bucket")
