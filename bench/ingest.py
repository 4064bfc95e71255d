"""Ingest benchmark: records/s and peak RSS per reader, each reader in its own process.

    .venv/bin/python bench/ingest.py                         # 1,000,000 Alpaca records, 1024 MB Posts.xml
    .venv/bin/python bench/ingest.py --records 200000 --xml-mb 200 --xml-small-mb 50

Inputs are generated once under bench/out/ (git-ignored) and reused. Aims: >= 50,000 records/s
on JSONL formats; Posts.xml peak RSS under 1.5 GB and flat in the file size (hence a small and a
large XML file). Stack Exchange bodies are kept as HTML by default (``markdown: false``) so the
figure measures the reader; ``--xml-markdown`` adds the HTML -> Markdown conversion.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
WORDS = ("the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on", "be", "by", "this", "are", "or", "at", "from", "an", "which", "have", "not", "but", "all", "data", "model", "python", "list", "value", "function", "error", "file", "question", "answer", "coffee", "beer", "grind", "water", "temperature", "bean", "roast", "time", "test", "string", "number", "return", "class", "object", "table", "query", "index", "server")


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def make_alpaca(path: Path, n: int, seed: int = 7) -> None:
    """About 350 bytes per record, like real Alpaca; a third have an input."""
    import orjson

    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for i in range(n):
            rec = {
                "instruction": _text(rng, 6, 20) + f" #{i}?",
                "input": _text(rng, 5, 15) if i % 3 == 0 else "",
                "output": _text(rng, 20, 70) + ".",
            }
            fh.write(orjson.dumps(rec) + b"\n")
    tmp.rename(path)


def make_posts_xml(path: Path, mb: int, seed: int = 11) -> None:
    """Id-ordered questions, each followed by 0-3 answers; 5% of answers arrive ~2,000 posts later."""
    rng = random.Random(seed)
    target = mb << 20
    tmp = path.with_suffix(".tmp")
    late: list[tuple[int, str]] = []  # (due post id, row)
    next_id = 1

    def body() -> str:
        parts = [f"<p>{_text(rng, 20, 60)}</p>" for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:
            parts.append(f'<pre class="lang-py"><code>{_text(rng, 5, 25)}\n</code></pre>')
        return html.escape("\n".join(parts), quote=True).replace("\n", "&#xA;")

    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write('\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        size = 0
        while size < target:
            qid = next_id
            next_id += 1
            n_ans = rng.choice((0, 1, 1, 2, 3))
            ans_ids = list(range(next_id, next_id + n_ans))
            next_id += n_ans
            acc = f' AcceptedAnswerId="{rng.choice(ans_ids)}"' if ans_ids and rng.random() < 0.6 else ""
            row = (
                f'  <row Id="{qid}" PostTypeId="1"{acc} CreationDate="2020-01-01T00:00:00.000" '
                f'Score="{rng.randint(-2, 50)}" ViewCount="{rng.randint(1, 9999)}" Body="{body()}" '
                f'Title="{_text(rng, 4, 12)}" Tags="&lt;python&gt;&lt;data&gt;" AnswerCount="{n_ans}" />\n'
            )
            rows = [row]
            for aid in ans_ids:
                arow = (f'  <row Id="{aid}" PostTypeId="2" ParentId="{qid}" Score="{rng.randint(-2, 80)}" '
                        f'Body="{body()}" />\n')
                if rng.random() < 0.05:
                    late.append((qid + 2000, arow))
                else:
                    rows.append(arow)
            while late and late[0][0] <= qid:
                rows.append(late.pop(0)[1])
            if rng.random() < 0.01:
                rows.append(f'  <row Id="{next_id}" PostTypeId="5" Body="&lt;p&gt;wiki&lt;/p&gt;" />\n')
                next_id += 1
            chunk = "".join(rows)
            fh.write(chunk)
            size += len(chunk)
        for _, arow in late:
            fh.write(arow)
        fh.write("</posts>\n")
    tmp.rename(path)


def child(fmt: str, path: str, params: str) -> None:
    """Run one reader over one file; print one JSON line with counts, time and peak RSS."""
    sys.path.insert(0, str(ROOT))
    from curate.ingest.base import ReadStats, read_batches
    from curate.steps.registry import get_reader

    cls = get_reader(fmt)
    reader = cls(cls.Params.model_validate(json.loads(params)))
    stats = ReadStats()
    t0 = time.perf_counter()
    rows = 0
    for batch in read_batches(reader, [path], fmt, stats=stats):
        rows += batch.height
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({
        "format": fmt, "file": os.path.basename(path), "file_mb": round(os.path.getsize(path) / 2**20),
        "read": stats.read, "ingested": stats.ingested, "quarantined": stats.quarantined,
        "seconds": round(seconds, 2), "records_per_s": round(stats.read / seconds), "peak_rss_mb": round(peak_mb),
        "extra": reader.report_extra,
    }))


def run_child(fmt: str, path: Path, params: dict[str, object]) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", fmt, str(path), json.dumps(params)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{fmt} on {path} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="Alpaca JSONL records")
    ap.add_argument("--xml-mb", type=int, default=1024, help="size of the large Posts.xml")
    ap.add_argument("--xml-small-mb", type=int, default=128, help="size of the small Posts.xml (RSS comparison)")
    ap.add_argument("--xml-markdown", action="store_true", help="convert bodies to Markdown while reading")
    ap.add_argument("--only", choices=("alpaca", "xml"), default=None)
    ap.add_argument("--child", nargs=3, metavar=("FORMAT", "PATH", "PARAMS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    if args.only in (None, "alpaca"):
        p = OUT / f"alpaca_{args.records}.jsonl"
        if not p.exists():
            t = time.perf_counter()
            make_alpaca(p, args.records)
            print(f"generated {p} ({p.stat().st_size / 2**20:,.0f} MB) in {time.perf_counter() - t:.1f}s", flush=True)
        results.append(run_child("alpaca", p, {}))
        print(json.dumps(results[-1]), flush=True)
    if args.only in (None, "xml"):
        for mb in (args.xml_small_mb, args.xml_mb):
            p = OUT / f"Posts_{mb}mb.xml"
            if not p.exists():
                t = time.perf_counter()
                make_posts_xml(p, mb)
                print(f"generated {p} in {time.perf_counter() - t:.1f}s", flush=True)
            results.append(run_child("stackexchange", p, {"markdown": args.xml_markdown}))
            print(json.dumps(results[-1]), flush=True)
    print(f"\n{'format':<14} {'file MB':>8} {'records':>10} {'seconds':>8} {'records/s':>10} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['format']:<14} {r['file_mb']:>8} {r['read']:>10,} {r['seconds']:>8} "
              f"{r['records_per_s']:>10,} {r['peak_rss_mb']:>12,}")


if __name__ == "__main__":
    main()
