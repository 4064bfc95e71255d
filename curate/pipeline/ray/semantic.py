"""``dedup.semantic`` (mode ``kmeans``, SemDeDup) on the cluster, with the local step's groups and survivors.

1. per shard: the keep key of each row (``load_rows``), and ``(id, row)`` scattered by id; per slice of
   ``embedding_ids.parquet``: ``(id, vector position)`` scattered the same way;
2. per id bucket: the join, so each row still in the set knows its vector (rows without one stay alone,
   counted as ``not_embedded``, as locally);
3. one task trains the k-means, as :func:`curate.index.vectors.kmeans_assign` does locally (seeded
   faiss k-means, spherical, ``k = ceil(n / cluster_size)``, at most 256 points per centroid: faiss
   draws that sample from the vectors in row order, so the task reads them all, from the memory-mapped
   ``embeddings.npy``, to draw the same one) and saves the centroids;
4. per slice of rows: the nearest centroid of each vector (exact search: each row's cluster is the
   local one);
5. per group of clusters: every pair inside a cluster with cosine >= threshold
   (:func:`curate.index.vectors.pairs_above` on the cluster's vectors, in the local member order);
6. one task joins the pairs into groups by union-find over the pairs' rows only, each shard writes the
   ids and keep keys of its grouped rows, and one task applies the keep policy with the cosine to the
   survivor (read from the memory-mapped matrix for those rows only) and writes the decisions per
   shard (:func:`curate.pipeline.ray.dedup.resolve_in_task`).

Mode ``knn`` (a range search on the run's FAISS index) runs in the driver, as locally.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from curate import layout as L
from curate.errors import ConfigError
from curate.index import vectors as vx
from curate.pipeline.ray.dedup import (
    _read_all,
    _save_npy,
    _write,
    group_rows,
    labelled_members,
    members_of_shard,
    resolve_in_task,
    shard_rows,
)
from curate.pipeline.ray.shards import InputShard
from curate.pipeline.ray.shuffle import gather, scatter
from curate.pipeline.ray.vectors import row_offsets
from curate.steps.base import GlobalResult, GlobalStep, StepContext

if TYPE_CHECKING:
    from curate.layout import StepFolder
    from curate.pipeline.ray_executor import RayExecutor

_IDS: dict[str, Any] = {"id": pl.Utf8, "_row": pl.Int64}
_VEC: dict[str, Any] = {"id": pl.Utf8, "_vec": pl.Int64}
_POS: dict[str, Any] = {"_row": pl.Int64, "_vec": pl.Int64}
_PAIRS: dict[str, Any] = {"i": pl.Int64, "j": pl.Int64}
_ROWS: dict[str, Any] = {"_row": pl.Int64, "id": pl.Utf8, "_key": pl.Float64}


def _id_bucket(ids: pl.Series, n: int) -> pl.Series:
    return (ids.hash(0) % n).cast(pl.Int64)


def run_semantic(step: GlobalStep, shards: list[InputShard], folder: StepFolder, ctx: StepContext,
                 ex: RayExecutor) -> tuple[GlobalResult, pl.DataFrame | None]:
    from curate.pipeline.ray_executor import n_buckets

    p = step.params
    if p.mode != "kmeans":  # the range search needs the whole index: in the driver, as locally
        return step.run(pl.scan_parquet(sorted({s.path for s in shards})), ctx), None
    emb_path = ctx.find_artifact(L.EMBEDDINGS)
    if emb_path is None:
        raise ConfigError(f"{step.id}: no embeddings found in this run; add `embed.sentence_transformer` "
                          "before dedup.semantic in the recipe")
    emb_folder = emb_path.parent
    offs = row_offsets(shards)
    buckets = n_buckets(len(shards))
    root, work = folder.work / "semantic", folder.work
    n_ids = int(pl.scan_parquet(emb_folder / L.EMBEDDING_IDS.name).select(pl.len()).collect().item())
    id_cuts = [round(c * n_ids / buckets) for c in range(buckets + 1)]
    seed, threshold, cluster_size, niter = step.seed, p.threshold_cosine, p.cluster_size, p.niter

    def rows(i: int) -> dict[str, Any]:
        r = shard_rows(step, shards[i], offs[i])
        _write(r.select(list(_ROWS)), root / "rows" / f"s{i:05d}.parquet", work)
        scatter(r.select("id", "_row"), _id_bucket(r["id"], buckets), buckets, root / "ids", i, work)
        return {}

    def vec_ids(c: int) -> dict[str, Any]:
        lo, hi = id_cuts[c], id_cuts[c + 1]
        ids = pl.scan_parquet(emb_folder / L.EMBEDDING_IDS.name).slice(lo, hi - lo).collect()
        v = ids.with_columns(pl.int_range(lo, hi, dtype=pl.Int64).alias("_vec"))
        scatter(v, _id_bucket(v["id"], buckets), buckets, root / "vecids", c, work)
        return {}

    def join(b: int) -> dict[str, Any]:
        mine = gather(root / "ids", b, _IDS).drop("_shard")
        vecs = gather(root / "vecids", b, _VEC).drop("_shard")
        pos = mine.join(vecs, on="id", how="inner").select("_row", "_vec")
        _write(pos, root / "pos" / f"b{b:04d}.parquet", work)
        return {"rows": mine.height, "embedded": pos.height}

    ex.run(f"{step.id}_rows", rows, range(len(shards)))
    ex.run(f"{step.id}_vector_ids", vec_ids, range(buckets))
    joined = ex.run(f"{step.id}_join", join, range(buckets))
    n_pos = sum(j["embedded"] for j in joined)
    step.report_extra["not_embedded"] = float(offs[-1] - n_pos)
    k = max(1, math.ceil(n_pos / cluster_size))
    step.report_extra["clusters"] = float(k)
    slices = max(1, min(64, math.ceil(n_pos / 50_000)))

    def train(item: int) -> dict[str, Any]:
        pos = _read_all(root / "pos", _POS).sort("_row")
        _save_npy(pos["_row"].to_numpy(), root / "order_rows.npy", work)
        _save_npy(pos["_vec"].to_numpy(), root / "order_vecs.npy", work)
        _, matrix = vx.load_embeddings(emb_folder)
        kk = max(1, min(k, pos.height))
        if kk > 1:
            x = np.ascontiguousarray(matrix[pos["_vec"].to_numpy()], dtype=np.float32)
            _save_npy(vx.kmeans_centroids(x, kk, seed=seed, niter=niter), root / "centroids.npy", work)
        return {"k": kk}

    def assign(s: int) -> dict[str, Any]:
        vec_rows = np.load(root / "order_vecs.npy", mmap_mode="r")
        lo, hi = round(s * len(vec_rows) / slices), round((s + 1) * len(vec_rows) / slices)
        if (root / "centroids.npy").exists():
            _, matrix = vx.load_embeddings(emb_folder)
            x = np.ascontiguousarray(matrix[np.asarray(vec_rows[lo:hi])], dtype=np.float32)
            labels = vx.nearest_centroid(x, np.load(root / "centroids.npy"))
        else:
            labels = np.zeros(hi - lo, dtype=np.int64)
        _save_npy(labels, root / "labels" / f"s{s:05d}.npy", work)
        return {}

    def pairs(g: int) -> dict[str, Any]:
        labels = np.concatenate([np.load(root / "labels" / f"s{s:05d}.npy") for s in range(slices)])
        mine = np.flatnonzero(labels % groups == g)  # positions k (row order) of this group's clusters
        vec_rows = np.load(root / "order_vecs.npy", mmap_mode="r")
        _, matrix = vx.load_embeddings(emb_folder)
        x = np.ascontiguousarray(matrix[np.asarray(vec_rows[mine])], dtype=np.float32)
        i, j, _ = vx.pairs_above(x, labels[mine], threshold)
        _write(pl.DataFrame({"i": mine[i], "j": mine[j]}, schema=_PAIRS), root / "pairs" / f"g{g:04d}.parquet", work)
        return {"pairs": len(i)}

    ex.run(f"{step.id}_kmeans", train, [0], whole_node=True)
    ex.run(f"{step.id}_assign", assign, range(slices))
    groups = max(1, min(k, ex.cluster.cpus() * 4))
    found = ex.run(f"{step.id}_pairs", pairs, range(groups))
    step.report_extra["pairs"] = float(sum(f["pairs"] for f in found))
    group_rows(ex, f"{step.id}_components", root / "pairs", root, work, order=root / "order_rows.npy")
    ex.run(f"{step.id}_members", lambda s: members_of_shard(root, offs, s, work), range(len(shards)))

    def cosine(m: np.ndarray, s: np.ndarray) -> np.ndarray:
        rows_k = np.load(root / "order_rows.npy", mmap_mode="r")
        vecs_k = np.load(root / "order_vecs.npy", mmap_mode="r")
        _, matrix = vx.load_embeddings(emb_folder)
        a = np.asarray(matrix[np.asarray(vecs_k[np.searchsorted(rows_k, m)])], dtype=np.float32)
        b = np.asarray(matrix[np.asarray(vecs_k[np.searchsorted(rows_k, s)])], dtype=np.float32)
        return np.asarray(np.einsum("ij,ij->i", a, b))

    return resolve_in_task(ex, step, ctx, folder, lambda: labelled_members(root), cosine, reason="semantic_dup")
