"""Benchmark the Streamlit browser on a synthetic 1M-record run: build the run dir, time each page.

    .venv/bin/python bench/browse.py --records 1000000            # build bench/out/run_1000000 if absent, time pages
    .venv/bin/python bench/browse.py --records 1000000 --repeats 7

Each page is rendered with ``streamlit.testing.v1.AppTest`` in this process; the first render of a
page pays the cold cache (index table, map level of detail), the following ones show what a person
clicking around sees. Prints p50/p95 per page and the cold time, in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

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
    if (run / "report.json").exists():
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

    steps = [("01_filter_length", "filter"), ("02_dedup_exact", "dedup"), ("03_dedup_minhash", "dedup"),
             ("04_embed", "embed"), ("05_map", "score")]
    (run / "ledger").mkdir(exist_ok=True)
    (run / "quarantine").mkdir(exist_ok=True)
    remaining = np.ones(n, bool)
    reports = []
    for (name, kind), mask, reason in zip(
        steps, [removed_len, removed_exact, removed_near, None, None], ["too_short", "exact_dup", "near_dup", "", ""]
    ):
        d = run / name
        d.mkdir(exist_ok=True)
        n_in = int(remaining.sum())
        rejected = {}
        if mask is not None:
            led = df.filter(pl.Series(mask)).with_columns(
                step=pl.lit(name[3:]),
                reason=pl.lit(reason),
                duplicate_of=pl.lit(None, pl.Utf8) if reason == "too_short" else pl.lit(ids[0]),
                similarity=pl.lit(None, pl.Float64) if reason == "too_short" else pl.lit(0.91),
            )
            led.write_parquet(run / "ledger" / f"{name}.parquet")
            remaining &= ~mask
            rejected = {reason: int(mask.sum())}
        if name == "03_dedup_minhash":
            survivors = rng.choice(np.flatnonzero(kept), int(removed_near.sum()))
            members = np.flatnonzero(removed_near)
            pl.DataFrame({
                "group_id": np.arange(len(members)) // 3,
                "survivor": np.array(ids)[survivors[np.arange(len(members)) // 3 * 3 % len(survivors)]],
                "member": np.array(ids)[members],
                "similarity": rng.uniform(0.85, 1.0, len(members)),
                "step": "dedup_minhash",
            }).write_parquet(d / "groups.parquet")
        df.filter(pl.Series(remaining)).write_parquet(d / "kept.parquet")
        (d / "done.json").write_text("{}")
        reports.append({"step_id": name[3:], "kind": kind, "n_in": n_in, "n_out": int(remaining.sum()),
                        "n_added": 0, "rejected": rejected, "quarantined": {}, "seconds": 1.0, "extra": {}})
    # Map: clusters as Gaussian blobs; every record that reached the map step has a point.
    kept_ids = np.array(ids)[kept]
    m = len(kept_ids)
    cluster = rng.integers(0, N_CLUSTERS, m)
    centers = rng.uniform(-50, 50, (N_CLUSTERS, 2))
    xy = centers[cluster] + rng.normal(0, 2.0, (m, 2))
    topics = [f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]}" for i in range(N_CLUSTERS)]
    pl.DataFrame({"id": kept_ids, "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32),
                  "cluster": cluster.astype(np.int32), "topic": np.array(topics)[cluster]}
                 ).write_parquet(run / "05_map" / "map.parquet")
    # Embeddings: 16-d so the bench stays small; the page code does not depend on the dimension.
    emb_dir = run / "04_embed"
    vec = np.concatenate([centers[cluster], rng.normal(0, 1, (m, 14))], axis=1).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    np.save(emb_dir / "embeddings.npy", vec)
    pl.DataFrame({"id": kept_ids}).write_parquet(emb_dir / "embedding_ids.parquet")
    import faiss

    index = faiss.IndexFlatIP(vec.shape[1])
    index.add(vec)
    faiss.write_index(index, str(emb_dir / "index.faiss"))
    pl.DataFrame({"id": kept_ids}).write_parquet(emb_dir / "index_ids.parquet")
    (emb_dir / "embedding.json").write_text(json.dumps({"model": "bench-random-16d", "dim": 16, "text": "first_user"}))
    sources = {s: {"format": "jsonl", "files": 1, "read": int((src == s).sum()),
                   "ingested": int((src == s).sum()), "quarantined": 0,
                   "kept": int(((src == s) & kept).sum())} for s in SOURCES}
    report = {"name": "bench", "steps": reports, "sources": sources,
              "totals": {"read": n, "kept": int(kept.sum()), "removed": int((~kept).sum()), "quarantined": 0}}
    (run / "spec.yaml").write_text("name: bench\nseed: 0\nsources: []\nsteps: []\n")
    (run / "report.json").write_text(json.dumps(report))
    return run


def _app(run: Path, labels: Path, page: str, state: dict[str, object]) -> float:
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
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
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
        ("map (5K selected)", "map", {"curate.selection": [f"{i:016x}" for i in range(5000)]}),
        ("browse", "browse", {}),
        ("browse (source + lang filter, page 40)", "browse",
         {"b.source": ["oig"], "b.lang": ["fr"], "b.page": 40}),
        ("browse (substring search)", "browse", {"b.text": "rust train"}),
        ("duplicates", "duplicates", {}),
        ("search (more like this)", "search", {"curate.more_like": some_id}),
        ("label (cluster 7)", "label", {"l.target": "Cluster", "l.cluster": 7}),
    ]
    print(f"{'page':42s} {'cold':>7s} {'p50':>7s} {'p95':>7s}   (seconds, {args.repeats} warm runs)")
    for name, page, state in cases:
        cold = _app(run, labels, page, state)
        warm = sorted(_app(run, labels, page, state) for _ in range(args.repeats))
        p95 = warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))]
        print(f"{name:42s} {cold:7.2f} {statistics.median(warm):7.2f} {p95:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
