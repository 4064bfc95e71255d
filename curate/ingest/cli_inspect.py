"""`curate inspect OUT.parquet [-n 3]`: counts by source/subset, turn and length stats, a few conversations."""

from __future__ import annotations

import argparse
from pathlib import Path

from curate.errors import ConfigError, MissingResourceError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a Parquet file in the conversation schema (from `curate ingest` or a run)")
    p.add_argument("-n", type=int, default=3, help="how many conversations to show (default 3)")
    p.add_argument("--max-chars", type=int, default=400, help="cut each shown turn after this many characters")


def _cut(text: str, n: int) -> str:
    text = text.replace("\r", "")
    return text if len(text) <= n else text[:n] + f" ...[{len(text) - n:,} more chars]"


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from curate.schema import COLUMNS

    path = Path(args.path)
    if not path.is_file():
        raise MissingResourceError(f"{path}: no such file; write one with `curate ingest FORMAT PATH -o {path}`")
    if args.n < 0:
        raise ConfigError("-n must be >= 0")
    try:
        lf = pl.scan_parquet(path)
        names = lf.collect_schema().names()
    except (pl.exceptions.ComputeError, OSError) as e:
        raise ConfigError(f"{path}: not a readable Parquet file ({e})") from None
    missing = [c for c in ("id", "source", "subset", "turns") if c not in names]
    if missing:
        raise ConfigError(f"{path}: not in the conversation schema (missing columns {missing}; expected {list(COLUMNS)})")

    chars = pl.col("turns").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    stats = lf.select(
        pl.len().alias("records"),
        pl.col("turns").list.len().min().alias("turns_min"),
        pl.col("turns").list.len().mean().alias("turns_mean"),
        pl.col("turns").list.len().max().alias("turns_max"),
        chars.median().alias("chars_p50"),
        chars.quantile(0.9).alias("chars_p90"),
        chars.max().alias("chars_max"),
    ).collect().row(0, named=True)
    print(f"{path}: {stats['records']:,} records")
    if not stats["records"]:
        return 0
    print(
        f"turns per record: min {stats['turns_min']}, mean {stats['turns_mean']:.2f}, max {stats['turns_max']}; "
        f"chars per record: p50 {stats['chars_p50']:,.0f}, p90 {stats['chars_p90']:,.0f}, max {stats['chars_max']:,}"
    )
    roles = (
        lf.select(pl.col("turns").list.eval(pl.element().struct.field("role")).alias("role"))
        .explode("role").group_by("role").len().sort("len", descending=True).collect()
    )
    print("turns by role: " + ", ".join(f"{r} {n:,}" for r, n in roles.iter_rows()))
    counts = lf.group_by("source", "subset").len().sort("len", descending=True).collect()
    print("\nrecords by source / subset:")
    for source, subset, n in counts.head(30).iter_rows():
        print(f"  {n:>10,}  {source} / {subset if subset is not None else '-'}")
    if counts.height > 30:
        print(f"  ... and {counts.height - 30} more source/subset pairs")
    if args.n:
        print()
        for row in lf.head(args.n).collect().iter_rows(named=True):
            prov = row.get("provenance") or {}
            print(f"--- {row['id']}  {row['source']} / {row['subset'] or '-'}  {prov.get('file')}#{prov.get('record')}")
            for t in row["turns"] or []:
                print(f"[{t['role']}] {_cut(t['content'] or '', args.max_chars)}")
        print("---")
    return 0
