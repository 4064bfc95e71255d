"""``curate demo-data DIR``: write the demo corpus."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from curate.demo.common import DEFAULT_RECORDS
from curate.demo.truth import generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="output folder (created; existing demo files are overwritten)")
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS,
                        help=f"total records over the five sources (default {DEFAULT_RECORDS:,})")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    parser.add_argument("--plant-scale", type=float, default=1.0,
                        help="multiplies every planted-problem rate (0 = a clean corpus; default 1)")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    summary = generate(args.dir, args.records, args.seed, args.plant_scale)
    secs = time.perf_counter() - t0
    recs = summary["records"]
    print(f"wrote {sum(recs.values()):,} records to {args.dir} in {secs:.1f}s (seed {args.seed})")
    for src, rel in summary["files"].items():
        print(f"  {rel:<28} {recs[src]:>7,}")
    planted = ", ".join(f"{k}={sum(v.values())}" for k, v in summary["planted"].items())
    print(f"  planted {summary['planted_total']:,}: {planted}")
    print(f"  ground truth: {Path(args.dir) / 'ground_truth.jsonl'}")
    return 0
