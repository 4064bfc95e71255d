"""The Ray executor at growing sizes: time per step, and the driver's memory, which must not grow with N.

    .venv/bin/python bench/ray_scale.py                       # 200,000 and 1,000,000 records
    .venv/bin/python bench/ray_scale.py --records 50000 200000
    .venv/bin/python bench/ray_scale.py --address auto        # an existing cluster
    .venv/bin/python bench/ray_scale.py --scorers             # add score.diversity, dedup.semantic, score.map
    .venv/bin/python bench/ray_scale.py --light --scorers     # one cheap step of each kind, and the scorers
    .venv/bin/python bench/ray_scale.py --local               # the same recipe on the local executor

The corpus is bench/pipeline.py's generated OIG file (``bench/out/pipeline_oig_<n>.jsonl``) with planted
duplicates added (``bench/out/ray_scale_oig_<n>.jsonl``): every 25th record again, exactly, and every
25th record (offset 12) again with one word changed. The recipe: the cleaning steps of bench/pipeline.py,
then dedup.exact, dedup.minhash and embed.hashing (a model-free embedder: the bench measures the
pipeline, not a model; docs/scale.md prices the model from FACTS.md). ``--scorers`` adds
score.diversity, dedup.semantic and score.map (distributed too: k-means and the UMAP fit sample in one
task each, everything per record in per-shard tasks).

Each size runs in its own child process, which is the run's driver: its peak RSS is
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end (Ray's own processes are other processes),
and its RSS after every step is read from /proc/self/status. Without ``--address`` the child starts a
local cluster with ``--cpus`` CPUs (``ray.init``; its start is timed apart) and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import OUT, STEPS, _tree_rss, corpus  # bench/pipeline.py: corpus generator, cleaning steps

DEDUP_STEPS: list[dict[str, Any]] = [
    {"use": "dedup.exact"},
    {"use": "dedup.minhash"},
    {"use": "embed.hashing", "params": {"text": "first_user", "dim": 64}},
]
SCORER_STEPS: list[dict[str, Any]] = [{"use": "score.diversity"}, {"use": "dedup.semantic"}, {"use": "score.map"}]
# --light: one cheap step of each kind (the generated corpus's answers come from a small sentence bank, so
# MinHash's default banding (Jaccard 0.5) makes ~50 candidate pairs per record; 0.7 keeps the step's cost
# near a real corpus's)
LIGHT_STEPS: list[dict[str, Any]] = [
    {"use": "clean.normalize"},
    {"use": "filter.length", "params": {"min_chars": 20, "max_chars": 100000}},
    {"use": "dedup.exact"},
    {"use": "dedup.minhash", "params": {"lsh_threshold_jaccard": 0.7}},
    {"use": "embed.hashing", "params": {"text": "first_user", "dim": 64}},
]


def corpus_with_dups(n: int) -> Path:
    """bench/pipeline.py's corpus of ``n`` records, cut to ``n`` lines with planted exact and near copies."""
    path = OUT / f"ray_scale_oig_{n}.jsonl"
    if path.exists():
        return path
    src = corpus(n)
    rng = random.Random(5)
    tmp = path.with_suffix(".tmp")
    written = 0
    with src.open(encoding="utf-8") as fh, tmp.open("w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if written >= n:
                break
            out.write(line)
            written += 1
            if i % 25 == 0 and written < n:
                out.write(line)  # an exact copy
                written += 1
            elif i % 25 == 12 and written < n:
                rec = json.loads(line)
                words = rec["text"].split(" ")
                k = rng.randrange(len(words) // 2, len(words))
                words[k] = "indeed"
                out.write(json.dumps({**rec, "text": " ".join(words)}, ensure_ascii=False) + "\n")
                written += 1
    tmp.rename(path)
    return path


def tag(args: argparse.Namespace) -> str:
    """Output file suffix of a variant: _light, _local."""
    return ("_light" if args.light else "") + ("_scorers" if args.scorers else "") + ("_local" if args.local else "")


def rss_now() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def one(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """One size, in this process (the driver)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from curate.pipeline.runner import run_pipeline
    from curate.pipeline.spec import build_plan

    path = corpus_with_dups(n)
    steps = (LIGHT_STEPS if args.light else STEPS + DEDUP_STEPS) + (SCORER_STEPS if args.scorers else [])
    recipe = {"name": "bench_ray_scale", "seed": 13, "sources": [{"id": "oig", "format": "oig", "path": str(path)}],
              "steps": steps, "limits": {"max_quarantine_frac": 0.01},
              "executor": {"kind": "ray", "shard_rows": args.shard_rows, "batch_size": args.batch_size,
                           **({"address": args.address} if args.address else {})}}
    if args.local:  # the baseline: this process does all the work (a process pool for per-record steps)
        recipe["executor"] = {"kind": "local", "workers": args.cpus, "batch_size": args.batch_size}
    peak_tree = [0]
    stop = threading.Event()

    def sample() -> None:  # the whole process tree: the driver and, for a local cluster, Ray's processes
        while not stop.wait(1.0):
            peak_tree[0] = max(peak_tree[0], _tree_rss(os.getpid()))

    t0 = time.perf_counter()
    if args.local:
        pass
    elif args.address:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    else:
        tmp = tempfile.mkdtemp(prefix="rscale-", dir="/tmp")
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                 object_store_memory=args.object_store_mb * 1_000_000, _temp_dir=tmp)
    init_s = time.perf_counter() - t0
    rss_before = rss_now()
    after: list[tuple[str, int]] = []
    progress = OUT / f"ray_scale_{n}{tag(args)}.progress.jsonl"
    progress.unlink(missing_ok=True)

    def step_done(line: str) -> None:  # the run line of each step, with the driver's RSS then (kept if killed)
        after.append((line.split()[0], rss_now()))
        with progress.open("a") as fh:
            fh.write(json.dumps({"line": line, "driver_rss_mb": round(after[-1][1] / 2**20),
                                 "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                                 "t": round(time.perf_counter() - t0, 1)}) + "\n")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run_dir = OUT / f"ray_scale_run_{n}{'_local' if args.local else ''}"
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        res = run_pipeline(build_plan(recipe, origin="bench/ray_scale.py"), run_dir, force=True, progress=False,
                           log=step_done)
    finally:
        stop.set()
        sampler.join()
        cpus = int(ray.cluster_resources().get("CPU", 0)) if ray.is_initialized() else args.cpus
        nodes = sum(1 for x in ray.nodes() if x["Alive"]) if ray.is_initialized() else 1
        ray.shutdown()
    wall = time.perf_counter() - t0
    shards = len(list((run_dir / "00_ingest" / "kept.parquet").glob("part-*.parquet"))) or 1
    return {
        "records": n, "nodes": nodes, "cpus": cpus, "shards": shards, "ray_init_s": round(init_s, 1),
        "wall_s": round(wall, 1), "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "driver_rss_before_run_mb": round(rss_before / 2**20), "tree_peak_rss_mb": round(peak_tree[0] / 2**20),
        "steps": [{"step": r.step_id, "in": r.n_in, "out": r.n_out, "seconds": round(r.seconds, 1)} for r in res.reports],
        "driver_rss_after_step_mb": {name: round(rss / 2**20) for name, rss in after},
        "totals": res.report["totals"], "load_1min": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--address", help="join this cluster instead of starting a local one")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local cluster")
    ap.add_argument("--object-store-mb", type=int, default=1000, help="object store of the local cluster")
    ap.add_argument("--shard-rows", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=20_000)
    ap.add_argument("--scorers", action="store_true", help="add score.diversity, dedup.semantic and score.map")
    ap.add_argument("--light", action="store_true", help="one cheap step of each kind (LIGHT_STEPS)")
    ap.add_argument("--local", action="store_true", help="run on the local executor (the baseline)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child: one size, JSON on stdout
    args = ap.parse_args()
    if args.one is not None:
        print("RESULT " + json.dumps(one(args.one, args)), flush=True)
        return
    print(f"uptime: {os.popen('uptime').read().strip()}")
    results = []
    for n in args.records:
        corpus_with_dups(n)  # generated here, outside the timed child
        child = [sys.executable, __file__, "--one", str(n), "--cpus", str(args.cpus), "--shard-rows",
                 str(args.shard_rows), "--batch-size", str(args.batch_size), "--object-store-mb",
                 str(args.object_store_mb)] + (["--address", args.address] if args.address else []) + (
                     ["--scorers"] if args.scorers else []) + (["--light"] if args.light else []) + (
                     ["--local"] if args.local else [])
        out = subprocess.run(child, capture_output=True, text=True, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
            raise SystemExit(f"{n:,} records: the child failed (exit {out.returncode})")
        res = json.loads(line[len("RESULT "):])
        results.append(res)
        (OUT / f"ray_scale_{n}{tag(args)}.json").write_text(json.dumps(res, indent=1))
        print(f"\n{n:,} records on {res['nodes']} node(s), {res['cpus']} CPUs, {res['shards']} shards: wall "
              f"{res['wall_s']}s (+ ray.init {res['ray_init_s']}s), driver peak RSS {res['driver_peak_rss_mb']} MB "
              f"(before the run {res['driver_rss_before_run_mb']} MB), process tree peak {res['tree_peak_rss_mb']} MB, "
              f"load {res['load_1min']:.1f}")
        print(f"{'step':<24}{'in':>11}{'out':>11}{'s':>8}{'rec/s':>10}{'driver MB':>11}")
        for s in res["steps"]:
            rate = s["in"] / s["seconds"] if s["seconds"] else 0
            print(f"{s['step']:<24}{s['in']:>11,}{s['out']:>11,}{s['seconds']:>8.1f}{rate:>10,.0f}"
                  f"{res['driver_rss_after_step_mb'].get(s['step'], 0):>11}")
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"\ndriver peak RSS: {a['driver_peak_rss_mb']} MB at {a['records']:,} -> {b['driver_peak_rss_mb']} MB at "
              f"{b['records']:,} records ({b['records'] / a['records']:.0f}x the records)")


if __name__ == "__main__":
    main()
