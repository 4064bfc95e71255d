"""Benchmark the Streamlit browser on a synthetic 1M-record run: build the run dir, time each page.

    .venv/bin/python bench/browse.py --records 1000000            # build bench/out/run_1000000 if absent, time pages
    .venv/bin/python bench/browse.py --records 1000000 --repeats 7
    .venv/bin/python bench/browse.py --records 1000000 --repeats 3 --chromium   # also in headless Chromium

Each page is rendered with ``streamlit.testing.v1.AppTest`` in this process; the first render of a
page pays the cold cache (index table, map level of detail), the following ones show what a person
clicking around sees. Prints p50/p95 per page and the cold time, in seconds, and the largest message a
page sends (bytes of its largest element; Streamlit's limit is 200 MB). The run is written at the layout's
paths by the runner's and the dedup steps' own writers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.schema import CONVERSATION

SOURCES = ("oig", "stackoverflow", "p3", "sharegpt", "alpaca")
WORDS = ["data", "model", "python", "rust", "train", "loss", "token", "prompt", "answer", "cluster", "vector", "index", "query", "table", "file", "error", "value", "list", "dict", "function", "class", "method", "string", "number", "graph", "chart", "plot", "map"]
LANGS = ("en", "en", "en", "en", "es", "fr", "de", "zh")
N_CLUSTERS = 200


def _texts(rng: np.random.Generator, n: int, words: int) -> list[str]:
    vocab = np.array(WORDS)
    picks = vocab[rng.integers(0, len(vocab), size=(n, words))]
    return [" ".join(row) for row in picks]


def build_run(out: Path, n: int, seed: int = 0) -> Path:
    """Write a run dir shaped like the runner's: steps, ledger, map, groups, embeddings, report."""
    rng = np.random.default_rng(seed)
    run = out / f"run_{n}" / "20260101-000000"
    from curate import layout as L
    from curate.layout import RunLayout

    if RunLayout(run).report.exists() and RunLayout(run).find(L.MAP_REMOVED) is not None:
        return run
    run.mkdir(parents=True, exist_ok=True)
    ids = [f"{i:016x}" for i in range(n)]
    src = np.array(SOURCES)[rng.integers(0, len(SOURCES), n)]
    # A pool of 5,000 distinct prompts/answers keeps generation fast while texts still differ per record.
    pool_q = _texts(rng, 5000, 30)
    pool_a = _texts(rng, 5000, 90)
    qi = rng.integers(0, 5000, n)
    ai = rng.integers(0, 5000, n)
    base = pl.DataFrame({"id": ids, "source": src, "qi": qi, "ai": ai, "k": np.arange(n)})
    pq = np.array(pool_q, dtype=object)
    pa = np.array(pool_a, dtype=object)
    df = base.with_columns(
        subset=pl.col("source") + "_" + (pl.col("k") % 3).cast(pl.Utf8),
        q=pl.format("[{}] {}", pl.col("k"), pl.Series(pq[qi].tolist())),
        a=pl.Series(pa[ai].tolist()),
    ).select(
        "id",
        "source",
        "subset",
        pl.concat_list(
            pl.struct(role=pl.lit("user"), content=pl.col("q")),
            pl.struct(role=pl.lit("assistant"), content=pl.col("a")),
        ).alias("turns"),
        pl.lit(None, dtype=pl.Utf8).alias("meta"),
        pl.struct(file=pl.lit("synthetic.jsonl"), record=pl.col("k")).alias("provenance"),
        pl.col("id").alias("content_hash"),
    )
    df = df.with_columns(*(pl.col(c).cast(t) for c, t in CONVERSATION.items()))
    chars = rng.integers(50, 4000, n)
    lang = np.array(LANGS)[rng.integers(0, len(LANGS), n)]
    df = df.with_columns(pl.Series("filter_length.chars", chars), pl.Series("filter_language.lang", lang))
    status = rng.random(n)
    removed_len = status < 0.05
    removed_exact = (status >= 0.05) & (status < 0.10)
    removed_near = (status >= 0.10) & (status < 0.15)
    kept = ~(removed_len | removed_exact | removed_near)

    from collections import Counter

    from curate.pipeline.batches import ledger_frame
    from curate.pipeline.cache import StepCache
    from curate.pipeline.report import build_report, write_report
    from curate.steps.base import StepContext, StepReport
    from curate.steps.dedup.keep import resolve_groups, write_groups

    # Everything below is written at the layout's paths by the runner's and the steps' own writers.
    lay = RunLayout(run)
    lay.ledger_dir.mkdir(exist_ok=True)
    lay.quarantine_dir.mkdir(exist_ok=True)
    cache = StepCache(lay)
    lay.ingest.path.mkdir(exist_ok=True)
    df.write_parquet(lay.ingest.kept)
    reports = [StepReport(step_id=L.INGEST_ID, kind="read", n_in=n, n_out=n)]
    cache.finish(lay.ingest, "bench-ingest", reports[0])
    steps = [("filter_length", "filter"), ("dedup_exact", "dedup"), ("dedup_minhash", "dedup"),
             ("embed", "embed"), ("map", "score")]
    remaining = np.ones(n, bool)
    ids_arr = np.array(ids)
    survivor_of = np.full(n, -1)
    pool = np.flatnonzero(kept)
    for (step_id, kind), mask, reason in zip(
        steps, [removed_len, removed_exact, removed_near, None, None], ["too_short", "exact_dup", "near_dup", "", ""]
    ):
        folder = lay.step(len(reports), step_id)
        folder.path.mkdir(exist_ok=True)
        rep = StepReport(step_id=step_id, kind=kind, n_in=int(remaining.sum()))
        if mask is not None:
            members = np.flatnonzero(mask)
            if kind == "dedup":  # groups of three removed members around one kept survivor
                survivor_of[members] = pool[rng.integers(0, len(pool), len(members) // 3 + 1)][np.arange(len(members)) // 3]
            led = ledger_frame(df.filter(pl.Series(mask)), step_id, reason,
                               duplicate_of=pl.Series(ids_arr[survivor_of[members]]) if kind == "dedup" else None,
                               similarity=pl.Series(rng.uniform(0.85, 1.0, len(members))) if kind == "dedup" else None)
            led.write_parquet(folder.ledger)
            if kind == "dedup":
                surv = np.unique(survivor_of[members])
                rows = pl.DataFrame({"id": np.concatenate([ids_arr[surv], ids_arr[members]]),
                                     "_key": np.concatenate([np.ones(len(surv)), np.zeros(len(members))])}
                                    ).with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
                labels = np.concatenate([np.searchsorted(surv, surv), np.searchsorted(surv, survivor_of[members])])
                _, groups = resolve_groups(rows, labels, lambda a, b: np.full(len(a), 0.9), reason=reason,
                                           ctx=StepContext(run_dir=run, work_dir=folder.path), step_id=step_id)
                write_groups(groups, StepContext(run_dir=run, work_dir=folder.path))
            remaining &= ~mask
            rep.rejected = Counter({reason: int(mask.sum())})
        df.filter(pl.Series(remaining)).write_parquet(folder.kept)
        rep.n_out = int(remaining.sum())
        reports.append(rep)
        cache.finish(folder, f"bench-{step_id}", rep)
    # Map: clusters as Gaussian blobs; every record that reached the map step has a point, and the removed
    # duplicates sit at their survivors (as score.map's map_removed.parquet places them).
    kept_ids = ids_arr[kept]
    m = len(kept_ids)
    cluster = rng.integers(0, N_CLUSTERS, m)
    centers = rng.uniform(-50, 50, (N_CLUSTERS, 2))
    xy = centers[cluster] + rng.normal(0, 2.0, (m, 2))
    topics = np.array([f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]}" for i in range(N_CLUSTERS)])
    map_folder = lay.step(5, "map")
    mapped = pl.DataFrame({"id": kept_ids, "x": xy[:, 0], "y": xy[:, 1], "cluster": cluster, "topic": topics[cluster],
                           "source": src[kept]}).cast(dict(L.MAP.schema or {}))  # type: ignore[arg-type]
    mapped.write_parquet(map_folder.file(L.MAP))
    dups = np.flatnonzero(survivor_of >= 0)
    at = pl.DataFrame({"id": ids_arr[survivor_of[dups]]}).join(mapped, on="id", how="left", maintain_order="left")
    pl.DataFrame({"id": ids_arr[dups], "x": at["x"], "y": at["y"], "cluster": at["cluster"], "topic": at["topic"],
                  "placed": "duplicate_of"}).cast(dict(L.MAP_REMOVED.schema or {})).write_parquet(  # type: ignore[arg-type]
        map_folder.file(L.MAP_REMOVED))
    # Embeddings: 16-d so the bench stays small; the page code does not depend on the dimension.
    emb = lay.step(4, "embed")
    vec = np.concatenate([centers[cluster], rng.normal(0, 1, (m, 14))], axis=1).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    np.save(emb.file(L.EMBEDDINGS), vec)
    pl.DataFrame({"id": kept_ids}).write_parquet(emb.file(L.EMBEDDING_IDS))
    import faiss

    index = faiss.IndexFlatIP(vec.shape[1])
    index.add(vec)
    faiss.write_index(index, str(emb.file(L.INDEX)))
    pl.DataFrame({"id": kept_ids}).write_parquet(emb.file(L.INDEX_IDS))
    emb.file(L.EMBEDDING_INFO).write_text(json.dumps({"model": "bench-random-16d", "dim": 16, "text": "first_user"}))
    sources = {s: {"format": "jsonl", "files": 1, "read": int((src == s).sum()), "ingested": int((src == s).sum()),
                   "quarantined": 0, "by_reason": {}} for s in SOURCES}
    lay.spec.write_text("name: bench\nseed: 0\nsources: []\nsteps: []\n")
    head = {"name": "bench", "run_dir": str(run), "recipe_hash": "bench", "started": "2026-01-01T00:00:00",
            "seconds": 1.0, "dry_run": False, "limit": None}
    write_report(lay, build_report(lay, map_folder, reports=reports, source_stats=sources, head=head))
    return run


def _largest_message(at: Any) -> int:
    """Bytes of the largest element the page sends (each element is one ForwardMsg delta; Streamlit refuses
    a message over server.maxMessageSize, 200 MB by default)."""
    from google.protobuf.message import Message

    best = 0

    def walk(node: object) -> None:
        nonlocal best
        proto = getattr(node, "proto", None)
        if isinstance(proto, Message):
            best = max(best, proto.ByteSize())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return best


def _app(run: Path, labels: Path, page: str, state: dict[str, object]) -> tuple[float, int]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["curate.run_dir"] = str(run)
    at.session_state["curate.labels_path"] = str(labels)
    for k, v in state.items():
        at.session_state[k] = v
    at.query_params["page"] = page
    t0 = time.perf_counter()
    at.run()
    dt = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].value}")
    return dt, _largest_message(at)


# What each page shows when it is ready, for the Chromium timing.
READY = {
    "overview": "text=Top removal reasons", "map": ".js-plotly-plot canvas", "browse": "text=matching records",
    "duplicates": "text=removed members", "search": "text=vectors ·", "label": "text=records in this set",
}


def chromium_times(run: Path, labels: Path, repeats: int) -> None:
    """Each page opened in headless Chromium through ``curate browse``: seconds from navigation until the page
    shows its content and Streamlit's script has finished (cold = first visit after the server started)."""
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    proc = subprocess.Popen([sys.executable, "-m", "curate.cli", "browse", str(run), "--port", str(port),
                             "--labels", str(labels)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            print(f"{'chromium page':42s} {'cold':>7s} {'p50':>7s}   (seconds to content, script finished)")
            for name, ready in READY.items():
                times = []
                for _ in range(repeats + 1):
                    t0 = time.perf_counter()
                    page.goto(f"{url}/?page={name}")
                    page.wait_for_selector(ready, timeout=600_000)
                    page.wait_for_selector("[data-test-script-state=notRunning]", timeout=600_000)
                    times.append(time.perf_counter() - t0)
                print(f"{name:42s} {times[0]:7.2f} {statistics.median(times[1:]):7.2f}", flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--chromium", action="store_true", help="also time each page in headless Chromium")
    args = ap.parse_args()
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    t0 = time.perf_counter()
    run = build_run(args.out, args.records)
    print(f"run dir {run} ready in {time.perf_counter() - t0:.1f} s")
    labels = run.parent / "labels.sqlite"
    from curate.labels import LabelStore

    LabelStore(labels).add([f"{i:016x}" for i in range(0, args.records, 97)], "keep", annotator="bench")
    some_id = f"{args.records // 2:016x}"
    cases: list[tuple[str, str, dict[str, object]]] = [
        ("overview", "overview", {}),
        ("map", "map", {}),
        ("map (colour by label)", "map", {"map.color": "label"}),
        ("map (status, removed shown)", "map", {"map.color": "status"}),
        ("map (5K selected)", "map", {"curate.selection": [f"{i:016x}" for i in range(5000)]}),
        ("browse", "browse", {}),
        ("browse (source + lang filter, page 40)", "browse",
         {"b.source": ["oig"], "b.lang": ["fr"], "b.page": 40}),
        ("browse (substring search)", "browse", {"b.text": "rust train"}),
        ("duplicates", "duplicates", {}),
        ("search (more like this)", "search", {"curate.more_like": some_id}),
        ("label (cluster 7)", "label", {"l.target": "Cluster", "l.cluster": 7}),
    ]
    print(f"{'page':42s} {'cold':>7s} {'p50':>7s} {'p95':>7s} {'largest msg':>12s}   "
          f"(seconds, {args.repeats} warm runs; bytes)")
    for name, page, state in cases:
        cold, size = _app(run, labels, page, state)
        warm = sorted(_app(run, labels, page, state)[0] for _ in range(args.repeats))
        p95 = warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))]
        print(f"{name:42s} {cold:7.2f} {statistics.median(warm):7.2f} {p95:7.2f} {size:12,d}", flush=True)
    if args.chromium:
        chromium_times(run, labels, max(1, args.repeats // 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
