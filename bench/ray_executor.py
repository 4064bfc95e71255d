"""Local executor vs Ray executor on the cleaning recipe of bench/pipeline.py.

    .venv/bin/python bench/ray_executor.py                      # 200,000 records
    .venv/bin/python bench/ray_executor.py --records 50000 --batch-size 10000
    .venv/bin/python bench/ray_executor.py --ray-address auto   # an existing cluster

Runs ingest -> clean.normalize -> filter.failed_response -> filter.refusal -> filter.language {keep: [en]}
-> filter.length -> filter.repetition -> clean.pii {mode: redact} twice through the real runner on the
same generated OIG corpus (``bench/out/pipeline_oig_<n>.jsonl``, shared with bench/pipeline.py):
once with ``executor.kind: local`` (a spawn pool of ``--workers`` processes) and once with
``executor.kind: ray``. Ray's cluster start is timed on its own (``ray.init``; a CLI run pays it
once per run), the per-step seconds are printed side by side, and the two runs' outputs are compared:
the kept records of every step (ids, in order), the ledger and the quarantine entries. (A Ray run's
files are shards, so they are compared by content, not byte for byte.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import OUT, STEPS, corpus  # bench/pipeline.py: the corpus generator and the step list


def recipe(path: Path, kind: str, workers: int, batch_size: int) -> dict[str, Any]:
    return {
        "name": f"bench_executor_{kind}",
        "seed": 13,
        "sources": [{"id": "oig", "format": "oig", "path": str(path)}],
        "steps": STEPS,
        "executor": {"kind": kind, "workers": workers, "batch_size": batch_size},
        "limits": {"max_quarantine_frac": 0.01},
    }


def outputs(run: Path) -> dict[str, Any]:
    """What a run produced, comparable across executors: kept ids per step, the ledger, the quarantine."""
    import polars as pl

    from curate.layout import RunLayout
    from curate.rundir import RunDir

    out: dict[str, Any] = {f.name: pl.scan_parquet(f.kept).select("id").collect()["id"].to_list()
                           for f in RunLayout(run).step_folders()}
    ledger = RunDir(run).ledger()
    out["ledger"] = ledger.collect().rows() if ledger is not None else []
    out["quarantine"] = RunDir(run).quarantine()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2, help="executor.workers of the local run")
    ap.add_argument("--batch-size", type=int, default=20_000, help="executor.batch_size of both runs")
    ap.add_argument("--ray-address", help="join this cluster instead of starting a local one")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray

    from curate.pipeline.runner import run_pipeline
    from curate.pipeline.spec import build_plan

    print(f"uptime: {os.popen('uptime').read().strip()}")
    path = corpus(args.records)
    results = {}
    t0 = time.perf_counter()
    ray.init(address=args.ray_address, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0
    cpus = int(ray.cluster_resources().get("CPU", 0))
    try:
        for kind in ("local", "ray"):
            plan = build_plan(recipe(path, kind, args.workers, args.batch_size), origin="bench/ray_executor.py")
            run_dir = OUT / f"executor_{kind}_{args.records}"
            shutil.rmtree(run_dir, ignore_errors=True)
            t0 = time.perf_counter()
            res = run_pipeline(plan, run_dir=run_dir, force=True, progress=False, log=lambda m: None,
                               ray_address=args.ray_address if kind == "ray" else None)
            results[kind] = (time.perf_counter() - t0, res, run_dir)
    finally:
        ray.shutdown()

    (wl, rl, dl), (wr, rr, dr) = results["local"], results["ray"]
    print(f"records {args.records:,}  batch_size {args.batch_size:,}  local workers {args.workers}  "
          f"ray CPUs {cpus}  load {os.getloadavg()[0]:.2f} (1-min)")
    print(f"{'step':<24}{'in':>10}{'out':>10}{'local s':>9}{'ray s':>9}")
    for a, b in zip(rl.reports, rr.reports, strict=True):
        print(f"{a.step_id:<24}{a.n_in:>10,}{a.n_out:>10,}{a.seconds:>9.1f}{b.seconds:>9.1f}")
    print(f"local executor: wall {wl:.1f}s  {args.records / wl:,.0f} records/s")
    print(f"ray executor:   wall {wr:.1f}s  {args.records / wr:,.0f} records/s  "
          f"(+ ray.init {ray_init_s:.1f}s = {wr + ray_init_s:.1f}s for a fresh local cluster)")
    fa, fb = outputs(dl), outputs(dr)
    differ = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
    same = rl.report["totals"] == rr.report["totals"] and not differ
    print(f"outputs ({len(fa) - 2} steps' kept ids, ledger, quarantine) identical: "
          f"{'yes' if same else 'NO ' + str(differ)}")


if __name__ == "__main__":
    main()
