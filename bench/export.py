"""Time ``curate export RUN OUT --format hub`` on a synthetic run of three-turn conversations.

    .venv/bin/python bench/export.py --records 200000 [--workdir bench/out/export] [--check]

Builds (once) a finished run directory with one ``kept.parquet`` of N conversations from three
sources, then runs the export in a child process and prints its wall time and peak RSS. With
``--check`` it also verifies that every exported record sits in the split that
``curate.export.splits.assign_splits`` gives it over the whole kept set.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import yaml

from curate.layout import RunLayout

SOURCES = ("alpha", "beta", "gamma")


def build_run(root: Path, n: int) -> Path:
    lay = RunLayout(root / f"runs/bench-export-{n}/20260101-000000")
    if lay.report.exists():
        return lay.root
    from curate.pipeline.books import ParquetSink
    from curate.pipeline.cache import StepCache
    from curate.pipeline.report import build_report, write_report
    from curate.schema import make_batch, record_id
    from curate.steps.base import StepReport

    shutil.rmtree(lay.root, ignore_errors=True)
    lay.ledger_dir.mkdir(parents=True)
    lay.quarantine_dir.mkdir()
    spec = {
        "name": f"bench-export-{n}",
        "seed": 11,
        "sources": [{"id": s, "format": "sharegpt", "path": f"data/raw/{s}.json", "params": {}} for s in SOURCES],
        "steps": [],
    }
    lay.spec.write_text(yaml.safe_dump(spec, sort_keys=False))
    lay.ingest.path.mkdir()
    sink = ParquetSink(lay.ingest.kept)
    chunk = 20_000
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            src = SOURCES[(i * 7) % 5 % 3]  # uneven source sizes
            rows.append({
                "id": record_id(src, f"data/raw/{src}.json", i),
                "source": src,
                "subset": None,
                "turns": [
                    {"role": "user", "content": f"Question {i}: how would you explain topic {i % 997} to a beginner?"},
                    {"role": "assistant", "content": f"Answer {i}: " + "start with the basics and build up. " * 6},
                    {"role": "user", "content": f"Thanks. Can you give an example for case {i % 31}?"},
                ],
                "meta": {"n": i},
                "provenance": {"file": f"data/raw/{src}.json", "record": i},
            })
        batch = make_batch(rows).with_columns(
            pl.lit("en").alias("filter_language.lang"), (pl.lit(0.5) + pl.lit(0.0)).alias("filter_language.score")
        )
        sink.write(batch)
    sink.close()
    ingest = StepReport(step_id="ingest", kind="read", n_in=n, n_out=n)
    StepCache(lay).finish(lay.ingest, "bench", ingest)
    per_source = dict(pl.scan_parquet(lay.ingest.kept).group_by("source").len().collect().iter_rows())
    sources = {s: {"format": "sharegpt", "files": 1, "read": per_source[s], "ingested": per_source[s],
                   "quarantined": 0} for s in SOURCES}
    head = {"name": spec["name"], "run_dir": str(lay.root), "recipe_hash": "bench", "started": "2026-01-01T00:00:00",
            "seconds": 0.0, "dry_run": False, "limit": None}
    write_report(lay, build_report(lay, lay.ingest, reports=[ingest], source_stats=sources, head=head))
    return lay.root


def check_splits(run: Path, out: Path, splits: str) -> None:
    from curate.export.splits import assign_splits, parse_splits

    kept = pl.read_parquet(RunLayout(run).ingest.kept, columns=["id", "source"])
    want = assign_splits(kept, parse_splits(splits), 11).select("id", "split")
    got = pl.concat([
        pl.read_parquet(f, columns=["id"]).with_columns(pl.lit(f.name.split("-")[0]).alias("split"))
        for f in sorted((out / "data").glob("*.parquet"))
    ])
    assert got.height == kept.height, (got.height, kept.height)
    diff = want.join(got, on="id", how="full", suffix="_got").filter(pl.col("split") != pl.col("split_got"))
    assert diff.height == 0 and got["id"].n_unique() == kept.height, diff.head()
    print(f"splits match assign_splits for all {got.height:,} records")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--workdir", default="bench/out/export")
    ap.add_argument("--splits", default="train=0.9,validation=0.05,test=0.05")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    root = Path(args.workdir).absolute()
    t0 = time.perf_counter()
    run = build_run(root, args.records)
    print(f"run dir {run} ready in {time.perf_counter() - t0:.1f} s")
    out = root / "hub-out"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "curate.cli", "export", str(run), str(out), "--format", "hub", "--splits", args.splits],
        check=True,
    )
    wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"export --format hub of {args.records:,} records: wall {wall:.1f} s, peak RSS {peak_mib:,.0f} MiB")
    if args.check:
        check_splits(run, out, args.splits)


if __name__ == "__main__":
    main()
