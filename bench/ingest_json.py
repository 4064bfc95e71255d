"""Throughput of the JSON-family readers (alpaca, sharegpt) on generated JSONL, records/s.

    .venv/bin/python bench/ingest_json.py --records 200000
    .venv/bin/python bench/ingest_json.py --records 200000 --formats sharegpt --repeats 3

Times the whole ingest path: read lines, decode, parse, validate, ids, content hash, schema batches.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import orjson

from curate.ingest.base import ReadStats, read_batches
from curate.steps.registry import get_reader

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "data",
    "model",
    "train",
    "curate",
    "record",
    "value",
    "system",
    "user",
]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(fmt: str, n: int, path: Path) -> None:
    rng = random.Random(13)
    with path.open("wb") as fh:
        for i in range(n):
            if fmt == "alpaca":
                rec = {
                    "instruction": _text(rng, 15),
                    "input": _text(rng, 10) if i % 3 == 0 else "",
                    "output": _text(rng, 60),
                }
            else:
                turns = [
                    {"from": "human" if j % 2 == 0 else "gpt", "value": _text(rng, 25)} for j in range(4)
                ]
                rec = {"id": f"c{i}", "conversations": turns}
            fh.write(orjson.dumps(rec) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--formats", nargs="+", default=["alpaca", "sharegpt"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for fmt in args.formats:
        path = args.out / f"ingest_json_{fmt}_{args.records}.jsonl"
        if not path.exists():
            generate(fmt, args.records, path)
        reader = get_reader(fmt)()
        for _ in range(args.repeats):
            stats = ReadStats()
            t0, c0 = time.perf_counter(), time.process_time()
            rows = sum(len(b) for b in read_batches(reader, [str(path)], "bench", stats=stats))  # type: ignore[arg-type]
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            mb = path.stat().st_size / 1e6
            # CPU time as well: on a shared machine wall time mostly measures the neighbours
            print(
                f"read.{fmt}: {rows:,} records, {mb:.0f} MB in {dt:.2f} s wall = {rows / dt:,.0f} records/s "
                f"({cpu:.2f} s CPU = {rows / cpu:,.0f} records/CPU-s)"
            )


if __name__ == "__main__":
    main()
