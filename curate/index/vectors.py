"""Embedding matrices and FAISS indexes: arrays in, arrays out; knows nothing of conversations.

Layout written by the embed step into its run folder and read by every later consumer
(semantic dedup, diversity, map, the browser's search):

* ``embeddings.npy``        float32 (n, d), unit-norm rows (``np.lib.format.open_memmap``)
* ``embedding_ids.parquet`` one ``id`` column, row-aligned with ``embeddings.npy``
* ``index.faiss``           inner-product index over the same rows
* ``index_ids.parquet``     one ``id`` column, row-aligned with the index
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl

from curate import layout as L
from curate.errors import MissingResourceError

# File names inside an embed step's folder; declared, with their shapes, in curate.layout.
EMBEDDINGS = L.EMBEDDINGS.name
EMBEDDING_IDS = L.EMBEDDING_IDS.name
INDEX = L.INDEX.name
INDEX_IDS = L.INDEX_IDS.name
EMBEDDING_INFO = L.EMBEDDING_INFO.name

# Above this many vectors an exact self-kNN costs hours on a 2-core CPU (FACTS.md: 132 s per 100K).
EXACT_MAX = 200_000


@dataclass
class IndexInfo:
    """How the index was built and how good its recall is (written into embedding.json)."""

    kind: str  # "flat" or "ivf"
    count: int
    dim: int
    nlist: int = 0
    nprobe: int = 0
    recall_at_10: float = 1.0  # measured against exact search on sampled queries
    gpu: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Unit-norm float32 rows; zero rows stay zero (they match nothing)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return cast(np.ndarray, x / norms)


def write_embeddings(folder: Path, ids: list[str] | pl.Series, n: int, dim: int) -> np.memmap:
    """Create ``embeddings.npy`` as a writable float32 memmap and its row-aligned id file."""
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"id": pl.Series("id", ids, dtype=pl.Utf8)}).write_parquet(folder / EMBEDDING_IDS)
    return np.lib.format.open_memmap(folder / EMBEDDINGS, mode="w+", dtype=np.float32, shape=(n, dim))


def _artifact_folder(path: Path) -> Path:
    return path.parent if path.suffix else path


def load_embeddings(path: str | Path) -> tuple[pl.Series, np.ndarray]:
    """``(ids, matrix)`` from an embed step's folder (or its ``embeddings.npy``); matrix is a read-only memmap."""
    folder = _artifact_folder(Path(path))
    emb, ids_file = folder / EMBEDDINGS, folder / EMBEDDING_IDS
    if not emb.exists() or not ids_file.exists():
        raise MissingResourceError(
            f"{folder}: no {EMBEDDINGS} + {EMBEDDING_IDS}; run a pipeline with an "
            "`embed.sentence_transformer` step first"
        )
    ids = pl.read_parquet(ids_file)["id"]
    matrix = np.load(emb, mmap_mode="r")
    if matrix.shape[0] != len(ids):
        raise MissingResourceError(f"{folder}: {EMBEDDINGS} has {matrix.shape[0]} rows but {len(ids)} ids")
    return ids, matrix


def load_embedding_info(path: str | Path) -> dict[str, Any]:
    """The embed step's ``embedding.json`` (model, dim, device, text, count, index)."""
    p = _artifact_folder(Path(path)) / EMBEDDING_INFO
    if not p.exists():
        raise MissingResourceError(f"{p} is missing; run a pipeline with an `embed.sentence_transformer` step")
    out: dict[str, Any] = json.loads(p.read_text())
    return out


def _gpu_available(faiss: Any) -> bool:
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def _exact_knn(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(np.ascontiguousarray(base, dtype=np.float32))
    _, idx = flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return idx


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true k neighbours that the index returned."""
    k = truth.shape[1]
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) for f, t in zip(found, truth)]
    return float(np.sum(hits) / (k * len(truth)))


def build_index(
    vectors: np.ndarray,
    *,
    exact_max: int = EXACT_MAX,
    seed: int = 0,
    target_recall: float = 0.95,
    n_queries: int = 500,
    use_gpu: bool | None = None,
) -> tuple[Any, IndexInfo]:
    """Inner-product index over unit vectors: exact up to ``exact_max`` rows, IVF above.

    IVF uses nlist ~ 4*sqrt(n), is trained on a seeded sample, and takes the smallest nprobe
    whose recall@10 against exact search on ``n_queries`` sampled rows reaches ``target_recall``.
    """
    import faiss

    t0 = time.perf_counter()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    gpu = _gpu_available(faiss) if use_gpu is None else use_gpu
    if n <= exact_max:
        index: Any = faiss.IndexFlatIP(d)
        index.add(x)
        return index, IndexInfo("flat", n, d, gpu=False, seconds=time.perf_counter() - t0)

    nlist, rows = ivf_plan(n, seed=seed)
    index = ivf_trained(x[rows], nlist, seed=seed, gpu=gpu)
    if gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(x)
    if gpu:
        index = faiss.index_gpu_to_cpu(index)
    info = finish_ivf(index, x, target_recall=target_recall, n_queries=n_queries, seed=seed, gpu=gpu)
    info.seconds = time.perf_counter() - t0
    return index, info


def ivf_plan(n: int, *, seed: int = 0) -> tuple[int, np.ndarray]:
    """``(nlist, training rows)`` of :func:`build_index`'s IVF over ``n`` rows: nlist ~ 4*sqrt(n), trained on a
    seeded sample of at least 64 rows per list (faiss warns below 39; 64 trains IVF well on clustered data)."""
    nlist = int(max(1, round(4 * np.sqrt(n))))
    n_train = min(n, max(64 * nlist, 100_000))
    return nlist, np.sort(np.random.default_rng(seed).choice(n, n_train, replace=False))


def ivf_trained(train: np.ndarray, nlist: int, *, seed: int = 0, gpu: bool = False) -> Any:
    """An empty inner-product IVF index with its lists trained on ``train`` (a CPU index).

    Vectors can then be added in parts, each part to its own copy, and the copies merged in order
    (``merge_from(part, add_id=offset)``): each vector goes to the list of its nearest centroid whatever
    the part, so the merged index is the one a single ``add`` builds (Ray adds per slice in parallel)."""
    import faiss

    x = np.ascontiguousarray(train, dtype=np.float32)
    quantizer = faiss.IndexFlatIP(x.shape[1])
    cpu_index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    cpu_index.cp.seed = seed
    if gpu:
        trained = faiss.index_cpu_to_all_gpus(cpu_index)
        trained.train(x)
        return faiss.index_gpu_to_cpu(trained)
    cpu_index.train(x)
    return cpu_index


def finish_ivf(index: Any, vectors: np.ndarray, *, target_recall: float = 0.95, n_queries: int = 500, seed: int = 0,
               gpu: bool = False) -> IndexInfo:
    """Tune a filled IVF index's nprobe against exact search (:func:`tune_nprobe`) and describe it."""
    nprobe, recall = tune_nprobe(index, vectors, target_recall=target_recall, n_queries=n_queries, seed=seed)
    return IndexInfo("ivf", int(index.ntotal), int(vectors.shape[1]), nlist=int(index.nlist), nprobe=nprobe,
                     recall_at_10=recall, gpu=gpu)


def tune_nprobe(
    index: Any, vectors: np.ndarray, *, target_recall: float = 0.95, n_queries: int = 500, seed: int = 0, k: int = 10
) -> tuple[int, float]:
    """Smallest power-of-two nprobe whose measured recall@k reaches the target; sets it on the index."""
    rng = np.random.default_rng(seed + 1)
    n = vectors.shape[0]
    q = np.ascontiguousarray(vectors[np.sort(rng.choice(n, min(n_queries, n), replace=False))], dtype=np.float32)
    truth = _exact_knn(vectors, q, k)
    nprobe, recall = 1, 0.0
    while True:
        index.nprobe = nprobe
        _, found = index.search(q, k)
        recall = recall_at_k(found, truth)
        if recall >= target_recall or nprobe >= index.nlist:
            return nprobe, recall
        nprobe = min(nprobe * 2, index.nlist)


def save_index(index: Any, ids: list[str] | pl.Series, folder: Path) -> None:
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(folder / INDEX))
    pl.DataFrame({"id": pl.Series("id", ids, dtype=pl.Utf8)}).write_parquet(folder / INDEX_IDS)


def load_index(path: str | Path, *, nprobe: int | None = None) -> tuple[Any, pl.Series]:
    """``(index, ids)`` from an embed step's folder; IVF indexes get the nprobe tuned at build time."""
    import faiss

    folder = _artifact_folder(Path(path))
    if not (folder / INDEX).exists() or not (folder / INDEX_IDS).exists():
        raise MissingResourceError(
            f"{folder}: no {INDEX}; run a pipeline with an `embed.sentence_transformer` step first"
        )
    index = faiss.read_index(str(folder / INDEX))
    if hasattr(index, "nprobe"):
        if nprobe is None and (folder / EMBEDDING_INFO).exists():
            nprobe = int(json.loads((folder / EMBEDDING_INFO).read_text()).get("index", {}).get("nprobe", 0)) or None
        if nprobe:
            index.nprobe = nprobe
    return index, pl.read_parquet(folder / INDEX_IDS)["id"]


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ``(scores, rows)`` by inner product (cosine for unit vectors); missing hits are row -1."""
    q = normalize_rows(np.atleast_2d(queries))
    scores, rows = index.search(q, k)
    return scores, rows


def range_pairs(index: Any, queries: np.ndarray, threshold: float, batch_size: int = 4096) -> tuple[np.ndarray, ...]:
    """All ``(query_row, index_row, score)`` with inner product >= threshold (range search, batched)."""
    qi: list[np.ndarray] = []
    ri: list[np.ndarray] = []
    sc: list[np.ndarray] = []
    for start in range(0, queries.shape[0], batch_size):
        q = np.ascontiguousarray(queries[start : start + batch_size], dtype=np.float32)
        lims, dist, labels = index.range_search(q, threshold)
        counts = np.diff(lims.astype(np.int64))
        qi.append(np.repeat(np.arange(start, start + len(q)), counts))
        ri.append(labels.astype(np.int64))
        sc.append(dist.astype(np.float32))
    if not qi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(qi), np.concatenate(ri), np.concatenate(sc)


def kmeans_assign(vectors: np.ndarray, k: int, *, seed: int = 0, niter: int = 20) -> np.ndarray:
    """Cluster label of each row from seeded spherical faiss k-means (trained on at most 256 rows per centroid)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    k = max(1, min(k, x.shape[0]))
    if k == 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    return nearest_centroid(x, kmeans_centroids(x, k, seed=seed, niter=niter))


def kmeans_centroids(vectors: np.ndarray, k: int, *, seed: int = 0, niter: int = 20) -> np.ndarray:
    """(k, d) centroids of :func:`kmeans_assign`'s k-means (faiss draws its training sample from ``vectors``)."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=256, gpu=_gpu_available(faiss))
    km.train(x)
    return np.asarray(km.centroids, dtype=np.float32)


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Label of each row: its centroid of highest inner product (exact; row by row, so any slice of rows
    gets the labels it gets in the whole)."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    _, labels = index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    return labels[:, 0].astype(np.int64)


def pairs_above(x: np.ndarray, labels: np.ndarray, threshold: float, block: int = 2048) -> tuple[np.ndarray, ...]:
    """Pairs ``(i, j, cos)`` with i < j in the same cluster and cosine >= threshold.

    Each cluster is compared block by block, so memory stays at ``block * cluster_size`` floats.
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(order)]])
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    out_s: list[np.ndarray] = []
    for s, e in zip(starts, ends):
        if e - s < 2:
            continue
        members = order[s:e]
        cx = np.ascontiguousarray(x[members], dtype=np.float32)
        for b in range(0, len(members), block):
            sims = cx[b : b + block] @ cx.T
            r, c = np.nonzero(sims >= threshold)
            keep = c > r + b
            r, c = r[keep], c[keep]
            out_i.append(members[r + b])
            out_j.append(members[c])
            out_s.append(sims[r, c])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s)


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Union-find over pairs: the smallest row index of each row's component (vectorised, no scipy).

    Min-label propagation with pointer jumping: converges in O(log diameter) rounds on dedup graphs.
    """
    labels = np.arange(n, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if len(i) == 0:
        return labels
    while True:
        m = np.minimum(labels[i], labels[j])
        new = labels.copy()
        np.minimum.at(new, i, m)
        np.minimum.at(new, j, m)
        np.minimum.at(new, labels, new)  # pull each root down to its smallest member's label
        new = new[new]
        while True:
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, labels):
            return labels
        labels = new
