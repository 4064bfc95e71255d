"""`curate ingest FORMAT PATH... -o OUT.parquet`: one reader, streamed into Parquet, every record accounted.

Output: ``OUT.parquet`` (conversation schema, zstd) and ``OUT.quarantine.jsonl`` beside it (one
``Quarantined.to_json()`` per line; always written, empty when nothing was quarantined, so a stale
file never survives a re-run). Quarantined records do not change the exit code: they are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from curate.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", help="reader name, e.g. alpaca, sharegpt, stackexchange, oasst (see `curate steps read`)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, globs, folders or hub:ORG/NAME")
    p.add_argument("-o", "--output", required=True, help="output Parquet file (OUT.parquet)")
    p.add_argument("--source", default=None, help="source id written in the `source` column (default: FORMAT)")
    p.add_argument("--params", default="{}", help='reader parameters as a JSON object, e.g. \'{"answer": "top"}\'')
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object on the last stdout line")
    p.add_argument("--limit", type=int, default=None, help="stop after N raw records (ingested + quarantined)")
    p.add_argument("--batch-size", type=int, default=20_000, help="records per Parquet row group")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def quarantine_path(output: Path) -> Path:
    return output.with_name(output.name.removesuffix(".parquet") + ".quarantine.jsonl")


def _reader(fmt: str, params_json: str) -> Any:
    from pydantic import ValidationError

    from curate.steps.registry import get_reader

    cls = get_reader(fmt)
    try:
        params = json.loads(params_json)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params is not valid JSON ({e}); write e.g. --params '{{\"answer\": \"top\"}}'") from None
    if not isinstance(params, dict):
        raise ConfigError("--params must be a JSON object")
    try:
        return cls(cls.Params.model_validate(params), step_id=f"read.{fmt}")
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc'])) or '(params)'}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"--params for read.{fmt}: {problems}") from None


def run(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from curate.ingest.base import Quarantined, ReadStats, expand_paths, read_batches
    from curate.schema import empty_batch

    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must be >= 0")
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    reader = _reader(args.format, args.params)
    source = args.source or args.format
    paths = expand_paths(args.paths)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    qpath = quarantine_path(out)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_q = qpath.with_name(qpath.name + ".tmp")
    stats = ReadStats()
    bar = tqdm(
        unit=" rec", unit_scale=True, desc=f"ingest {args.format}", file=sys.stderr,
        disable=args.quiet or not sys.stderr.isatty(), dynamic_ncols=True,
    )
    t0 = time.perf_counter()
    writer: pq.ParquetWriter | None = None
    try:
        with open(tmp_q, "w", encoding="utf-8") as qfh:

            def on_quarantine(q: Quarantined) -> None:
                qfh.write(json.dumps(q.to_json(), ensure_ascii=False) + "\n")

            last = 0
            for batch in read_batches(
                reader, paths, source, batch_size=args.batch_size, stats=stats,
                on_quarantine=on_quarantine, limit=args.limit,
            ):
                table = batch.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp_out, table.schema, compression="zstd")
                writer.write_table(table)
                bar.update(stats.read - last)
                last = stats.read
            bar.update(stats.read - last)
        if writer is None:
            pq.write_table(empty_batch().to_arrow(), tmp_out, compression="zstd")
        else:
            writer.close()
            writer = None
        os.replace(tmp_out, out)
        os.replace(tmp_q, qpath)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        for p in (tmp_out, tmp_q):
            if p.exists():
                p.unlink()
    seconds = time.perf_counter() - t0
    summary: dict[str, Any] = stats.as_dict() | {
        "by_reason": dict(stats.by_reason.most_common()),
        "extra": dict(reader.report_extra),
        "output": str(out),
        "quarantine_file": str(qpath),
        "seconds": round(seconds, 3),
    }
    rate = stats.read / seconds if seconds > 0 else 0.0
    lines = [
        (
            f"read {stats.read:,} from {stats.files} file(s): ingested {stats.ingested:,}, "
            f"quarantined {stats.quarantined:,} in {seconds:.1f}s ({rate:,.0f} records/s)"
        ),
    ]
    if stats.by_reason:
        lines.append("  quarantined: " + ", ".join(f"{k} {v:,}" for k, v in stats.by_reason.most_common()))
    if reader.report_extra:
        lines.append("  reader: " + ", ".join(f"{k} {v:,}" for k, v in sorted(reader.report_extra.items())))
    lines.append(f"  wrote {out}" + (f" and {qpath}" if stats.quarantined else ""))
    text = "\n".join(lines)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(summary, sort_keys=True))
    else:
        print(text)
    return 0
