"""Dedup benchmarks: MinHash vs datasketch on generated records with planted pairs, and SemDeDup on
clustered 384-d vectors. Prints figures; never a timed test.

    .venv/bin/python bench/dedup.py minhash --n 100000
    .venv/bin/python bench/dedup.py semantic --n 1000000
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[tuple[int, int]]]:
    """n texts of 30-100 words; 5% are copies of an earlier text with one word substituted."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(20000)])
    lens = rng.integers(30, 101, n)
    texts = [" ".join(vocab[rng.integers(0, len(vocab), k)]) for k in lens]
    planted = []
    for r in rng.choice(np.arange(1, n), n // 20, replace=False):
        src = int(rng.integers(0, r))
        w = texts[src].split()
        w[int(rng.integers(0, len(w)))] = str(vocab[rng.integers(0, len(vocab))])
        texts[r] = " ".join(w)
        planted.append((src, int(r)))
    return texts, planted


def f1(found: set[tuple[int, int]], truth: set[tuple[int, int]], texts: list[str]) -> dict[str, float]:
    tp = len(found & truth)
    p = tp / len(found) if found else 1.0
    r = tp / len(truth) if truth else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0, 4)}


def bench_minhash(n: int, skip_datasketch: bool) -> None:
    from curate.index import minhash as mh
    from curate.steps.dedup.minhash import near_pairs

    texts, planted = corpus(n)
    sh0 = mh.shingle(texts)
    truth = set()
    for a, b in planted:
        j = mh.jaccard(sh0, np.array([a]), np.array([b]))[0]
        if j >= 0.8:
            truth.add((min(a, b), max(a, b)))
    t0 = time.perf_counter()
    sh = mh.shingle(texts)
    i, j, _, n_cand = near_pairs(sh, 128, 0.8)
    ours = time.perf_counter() - t0
    found = {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist())}
    print(f"curate minhash: {n} records in {ours:.1f}s = {n / ours:,.0f} records/s, candidates {n_cand}, "
          f"{f1(found, truth, texts)} (planted pairs with 5-gram Jaccard >= 0.8: {len(truth)})")
    if skip_datasketch:
        return
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    shingles = []
    for t in texts:
        w = t.lower().split()
        shingles.append([" ".join(w[k : k + 5]).encode() for k in range(len(w) - 4)])
    mhs = MinHash.bulk(shingles, num_perm=128)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for k, m in enumerate(mhs):
        lsh.insert(k, m)
    found_ds = set()
    for k, m in enumerate(mhs):
        for o in lsh.query(m):
            if o != k:
                found_ds.add((min(k, o), max(k, o)))
    ds_s = time.perf_counter() - t0
    print(f"datasketch (bulk + MinHashLSH 0.8, unverified): {n / ds_s:,.0f} records/s, {f1(found_ds, truth, texts)}; "
          f"speedup {ds_s / ours:.1f}x")


def bench_semantic(n: int, d: int = 384) -> None:
    from curate.index import vectors as vx

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2000, d)).astype(np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):
        k = min(100_000, n - s)
        x[s : s + k] = centers[rng.integers(0, 2000, k)] + 0.6 * rng.normal(size=(k, d)).astype(np.float32)
    x = vx.normalize_rows(x)
    dup = rng.choice(n, n // 100, replace=False)
    x[dup[: len(dup) // 2]] = vx.normalize_rows(x[dup[len(dup) // 2 :]] + 0.01 * rng.normal(size=(len(dup) // 2, d)))
    t0 = time.perf_counter()
    labels = vx.kmeans_assign(x, max(1, n // 1000), seed=0)
    t1 = time.perf_counter()
    i, j, _ = vx.pairs_above(x, labels, 0.95)
    comp = vx.components(n, i, j)
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"semantic (kmeans k={n // 1000}, cos>=0.95): {n} x {d} in {t2 - t0:.1f}s (kmeans {t1 - t0:.1f}s, "
          f"pairs {t2 - t1:.1f}s), pairs {len(i)}, removed {n - len(np.unique(comp))}, planted {len(dup) // 2}, "
          f"peak RSS {rss:,.0f} MB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["minhash", "semantic"])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--skip-datasketch", action="store_true")
    a = ap.parse_args()
    if a.what == "minhash":
        bench_minhash(a.n, a.skip_datasketch)
    else:
        bench_semantic(a.n)
