"""Dedup benchmarks: MinHash vs datasketch on generated records with planted pairs, and SemDeDup on
clustered 384-d vectors. Prints figures; never a timed test.

    .venv/bin/python bench/dedup.py minhash --n 100000 --sketch minhash --sketch oph
    .venv/bin/python bench/dedup.py minhash --n 1000000 --ds-n 100000
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


def f1(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> dict[str, float]:
    tp = len(found & truth)
    p = tp / len(found) if found else 1.0
    r = tp / len(truth) if truth else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0, 4)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pairs(i: np.ndarray, j: np.ndarray) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist())}


def bench_minhash(n: int, skip_datasketch: bool, ds_n: int | None, sketches: list[str]) -> None:
    """curate's MinHash-LSH (shingle, sketch, LSH, exact verification) vs datasketch on the same texts.

    datasketch runs its fastest path, ``MinHash.bulk`` (FACTS.md: 9.1K/s vs 4K/s for update_batch),
    then MinHashLSH insert + query at threshold 0.8, unverified. With ``ds_n`` < n it runs on the
    first ds_n texts and its time is extrapolated linearly to n (printed as such).
    """
    from curate.index import minhash as mh
    from curate.steps.dedup.minhash import MinHashDedup, near_pairs

    defaults = MinHashDedup.Params()
    ng, thr = defaults.ngram, defaults.threshold_jaccard  # what dedup.minhash does by default, on both sides
    t0 = time.perf_counter()
    texts, planted = corpus(n)
    print(f"corpus: {n} texts of 30-100 words, {len(planted)} planted one-word edits ({time.perf_counter() - t0:.0f}s)")
    sh0 = mh.shingle(texts, ngram=ng)
    a_, b_ = np.array([p[0] for p in planted]), np.array([p[1] for p in planted])
    jac = mh.jaccard(sh0, a_, b_)
    truth = _pairs(a_[jac >= thr], b_[jac >= thr])
    del sh0
    print(f"planted pairs with {ng}-gram Jaccard >= {thr}: {len(truth)} (the rest fall below and are not duplicates)")
    for sketch in sketches:
        t0 = time.perf_counter()
        sh = mh.shingle(texts, ngram=ng)
        t1 = time.perf_counter()
        i, j, _, n_cand = near_pairs(sh, 128, thr, sketch=sketch)
        ours = time.perf_counter() - t0
        print(f"curate {sketch}: {n} records in {ours:.1f}s = {n / ours:,.0f} records/s (shingle {t1 - t0:.1f}s, "
              f"sketch+LSH+verify {ours - (t1 - t0):.1f}s), candidates {n_cand}, {f1(_pairs(i, j), truth)}, "
              f"peak RSS so far {_rss_mb():,.0f} MB")
        del sh
    if skip_datasketch:
        return
    from datasketch import MinHash, MinHashLSH

    m = min(ds_n or n, n)
    sub = texts[:m]
    t0 = time.perf_counter()
    shingles = []
    for t in sub:
        w = t.lower().split()
        shingles.append([" ".join(w[k : k + ng]).encode() for k in range(len(w) - ng + 1)])
    t1 = time.perf_counter()
    mhs = MinHash.bulk(shingles, num_perm=128)
    t2 = time.perf_counter()
    lsh = MinHashLSH(threshold=thr, num_perm=128)
    for k, mk in enumerate(mhs):
        lsh.insert(k, mk)
    found_ds = set()
    for k, mk in enumerate(mhs):
        for o in lsh.query(mk):
            if o != k:
                found_ds.add((min(k, o), max(k, o)))
    ds_s = time.perf_counter() - t0
    sub_truth = {p for p in truth if p[1] < m}
    scale = n / m
    note = f"measured on the first {m} texts, time x{scale:.0f} extrapolated linearly to {n}" if m < n else "measured"
    print(f"datasketch ({note}): shingle {t1 - t0:.1f}s, MinHash.bulk {t2 - t1:.1f}s = {m / (t2 - t1):,.0f} records/s, "
          f"LSH insert+query {ds_s - (t2 - t0):.1f}s; end to end {m / ds_s:,.0f} records/s, "
          f"{f1(found_ds, sub_truth)} on its {len(sub_truth)} planted pairs")
    print(f"speedup end to end: {ds_s * scale / ours:.1f}x (curate {sketches[-1]} vs datasketch bulk + MinHashLSH)")


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
    ap.add_argument("--ds-n", type=int, default=None, help="run datasketch on the first N texts, extrapolate to --n")
    ap.add_argument("--sketch", action="append", choices=["oph", "minhash"],
                    help="curate sketch(es) to time (default: oph)")
    a = ap.parse_args()
    if a.what == "minhash":
        bench_minhash(a.n, a.skip_datasketch, a.ds_n, a.sketch or ["oph"])
    else:
        bench_semantic(a.n)
