"""``score.map`` on the cluster, with the local step's map: the same positions, clusters, topics and files.

1. per shard: each record's embedding row (:mod:`.vectors`), its id, source and prompt kept for later
   rounds, and the shard's (verb, object) counts for ``verbs.json``;
2. the layout is decided in one task, as locally: the previous run's map is kept when it can be (the
   check and the placement of new records read every mapped vector, so this stays one task), else
   2a. one task fits UMAP on the seeded sample of ``fit_sample`` rows (all rows when there are fewer) and
       saves the fitted vectors and positions; with ``method: kmeans`` another task trains the seeded
       k-means on every vector in record order (faiss draws its training sample from the rows in order,
       so this is the local k-means);
   2b. per shard: the rows outside the sample are placed at the similarity-weighted mean position of
       their 5 nearest fitted rows (the local ``knn_place``: the seeded index is rebuilt in each task,
       and each row's search is independent of the others) and get their nearest centroid;
   2c. ``method: hdbscan`` clusters the 2-D positions of every row in one task (8 bytes a row); a
       previous map's cluster ids are matched in one task (two integers a row);
3. one task picks the rows each cluster's c-TF-IDF topic and sample prompts are read from (at most
   2,000 a cluster) and reads only those prompts;
4. per shard: the score columns and the shard's part of ``map.parquet``; one task streams the parts
   into ``map.parquet`` and places the removed records (``map_removed.parquet``, one task: it searches
   every mapped vector).

The driver holds the per-shard counts, the topics and the clusters' sizes, never a column of the set.
With ``rest: transform`` the rows outside the sample are placed per shard by UMAP's own transform: the
positions then differ from a local run's by the random state of each chunk.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from curate import layout as L
from curate.errors import ConfigError
from curate.pipeline.ray.book import write_shard_scores
from curate.pipeline.ray.shards import InputShard, Staged, save_npy, save_parquet
from curate.pipeline.ray.vectors import all_vectors, row_offsets, save_vector_rows, shard_vectors, vectors_at
from curate.schema import first_user_expr
from curate.steps.base import GlobalResult, GlobalStep, StepContext

if TYPE_CHECKING:
    from curate.layout import StepFolder
    from curate.pipeline.ray_executor import RayExecutor

_ROWS: dict[str, Any] = {"id": pl.Utf8, "source": pl.Utf8, "prompt": pl.Utf8}


def _task_ctx(ctx: StepContext) -> StepContext:
    """The context a task gets: no label sets (a map decides nothing), no shared ``extra``."""
    return dataclasses.replace(ctx, protected_ids=frozenset(), not_duplicate_ids=frozenset(), extra={})


def _all_ids(root: Path, n_shards: int) -> pl.Series:
    """Every record's id, in record order (from the rows the first round saved)."""
    return pl.concat([pl.read_parquet(root / "rows" / f"s{i:05d}.parquet", columns=["id"])
                      for i in range(n_shards)])["id"]


def _all_of(root: Path, name: str, n_shards: int) -> np.ndarray:
    """The per-shard ``name/s<i>.npy`` arrays (positions, labels) joined in record order."""
    return np.concatenate([np.load(root / name / f"s{i:05d}.npy") for i in range(n_shards)])


def _prompts_at(root: Path, offs: list[int], positions: np.ndarray) -> list[str]:
    """The prompts at global row numbers ``positions`` (in that order), reading only the shards that hold them."""
    positions = np.asarray(positions, dtype=np.int64)
    out: list[str] = [""] * len(positions)
    shard = np.searchsorted(np.asarray(offs), positions, side="right") - 1
    for s in np.unique(shard):
        mine = np.flatnonzero(shard == s)
        local = pl.Series(positions[mine] - offs[int(s)], dtype=pl.Int64)
        got = pl.read_parquet(root / "rows" / f"s{int(s):05d}.parquet", columns=["prompt"])["prompt"].gather(local)
        for k, text in zip(mine.tolist(), got.to_list(), strict=True):
            out[k] = text
    return out


def run_map(step: GlobalStep, shards: list[InputShard], folder: StepFolder, ctx: StepContext,
            ex: RayExecutor) -> tuple[GlobalResult, pl.DataFrame | None]:
    from curate.analysis.maps import verb_pairs, verb_table_of
    from curate.steps.score.diversity import auto_k
    from curate.steps.score.map import NOISE_TOPIC, MapScorer, previous_map

    assert isinstance(step, MapScorer)
    p = step.params
    emb_path = ctx.find_artifact(L.EMBEDDINGS)
    if emb_path is None:
        raise ConfigError(f"{step.id}: no embeddings in this run; add `embed.sentence_transformer` before it")
    emb = emb_path.parent
    root, work = folder.work / "map", folder.work
    offs = row_offsets(shards)
    n, n_shards = offs[-1], len(shards)
    seed, sid = ctx.seed, step.id
    tctx = _task_ctx(ctx)
    params = p.model_dump()
    info: dict[str, Any] = {"layout": "fitted", "previous_run": None, "why_fitted": None, "points": n,
                            "reused_points": 0, "placed_points": 0, "cluster_ids": "new", "clusters_matched": 0,
                            "params": params}
    timings: dict[str, float] = {}

    def rows(i: int) -> dict[str, Any]:
        df = shards[i].scan().select("id", "source", first_user_expr().alias("prompt")).collect()
        save_vector_rows(df["id"], emb, root, i, work)
        save_parquet(df, root / "rows" / f"s{i:05d}.parquet", work)
        return {"verbs": [[v, o, c] for (v, o), c in verb_pairs(df["prompt"].to_list()).items()]}

    found = ex.run(f"{sid}_rows", rows, range(n_shards))

    # -- 2: the layout (kept from the previous run, or fitted) ---------------------------------------
    def decide(_: int) -> dict[str, Any]:
        prev = previous_map(tctx) if p.stable else None
        out: dict[str, Any] = {"info": {}, "warnings": tctx.extra.get("warnings", []), "prev": prev is not None}
        if prev is None:
            return out
        ids = _all_ids(root, n_shards)
        vectors = all_vectors(root, emb, n_shards)
        local_info: dict[str, Any] = {}
        reuse = step._reusable(prev, ids, vectors, local_info)
        if reuse is not None:
            xy, labels, names = step._reuse(prev, reuse, vectors, tctx, local_info)
            save_npy(xy, root / "xy.npy", work)
            save_npy(labels, root / "labels.npy", work)
            out["names"] = {str(k): v for k, v in names.items()}
        out["info"] = local_info
        return out

    t0 = time.perf_counter()
    decided = ex.run(f"{sid}_previous", decide, [0], whole_node=True)[0]
    if decided["warnings"]:
        ctx.extra.setdefault("warnings", []).extend(decided["warnings"])
    info.update(decided["info"])
    reused = "names" in decided
    if reused:
        names = {int(k): v for k, v in decided["names"].items()}
        timings["seconds_layout"] = time.perf_counter() - t0

        def parts(i: int) -> dict[str, Any]:
            lo, hi = offs[i], offs[i + 1]
            save_npy(np.asarray(np.load(root / "xy.npy", mmap_mode="r")[lo:hi]), root / "xy" / f"s{i:05d}.npy", work)
            save_npy(np.asarray(np.load(root / "labels.npy", mmap_mode="r")[lo:hi]),
                     root / "labels" / f"s{i:05d}.npy", work)
            return {}

        ex.run(f"{sid}_split", parts, range(n_shards))
    else:
        names = {}
        k = min(p.clusters or auto_k(n), max(n, 1))
        kmeans = p.method == "kmeans" and min(k, n) > 1

        def fit(item: int) -> dict[str, Any]:
            from curate.analysis.maps import umap_fit_rows, umap_reducer

            if item == 1:  # the k-means, on every vector in record order (as kmeans_assign)
                from curate.index.vectors import kmeans_centroids

                save_npy(kmeans_centroids(all_vectors(root, emb, n_shards), k, seed=seed), root / "centroids.npy", work)
                return {}
            t = time.perf_counter()
            idx = umap_fit_rows(n, seed=seed, fit_sample=p.fit_sample)
            fitted_rows = np.arange(n) if idx is None else idx
            if n < 4:
                fitted_xy = np.zeros((n, 2), dtype=np.float32)
            else:
                x = vectors_at(root, emb, n_shards, fitted_rows)
                reducer = umap_reducer(n, seed=seed, n_neighbors=p.n_neighbors, min_dist=p.min_dist)
                if idx is None:
                    fitted_xy = np.asarray(reducer.fit_transform(x), dtype=np.float32)
                else:
                    reducer.fit(x)
                    fitted_xy = np.asarray(reducer.embedding_, dtype=np.float32)
                    save_npy(x, root / "fitted_vectors.npy", work)
                    if p.rest == "transform":
                        import pickle

                        staged = Staged(root / "reducer.pkl", work)
                        staged.tmp.write_bytes(pickle.dumps(reducer))
                        staged.commit()
            save_npy(fitted_rows.astype(np.int64), root / "fitted_rows.npy", work)
            save_npy(fitted_xy, root / "fitted_xy.npy", work)
            return {"seconds_fit": time.perf_counter() - t}

        # UMAP is seeded, so single-threaded: one CPU; the k-means uses every CPU of a node
        timings["seconds_fit"] = ex.run(f"{sid}_fit", fit, [0])[0]["seconds_fit"]
        if kmeans:
            ex.run(f"{sid}_kmeans", fit, [1], whole_node=True)

        def place(i: int) -> dict[str, Any]:
            from curate.analysis.maps import knn_place
            from curate.index.vectors import nearest_centroid

            lo, hi = offs[i], offs[i + 1]
            fitted_rows = np.load(root / "fitted_rows.npy")
            fitted_xy = np.load(root / "fitted_xy.npy")
            a, b = np.searchsorted(fitted_rows, [lo, hi])
            xy = np.empty((hi - lo, 2), dtype=np.float32)
            xy[fitted_rows[a:b] - lo] = fitted_xy[a:b]
            todo = np.ones(hi - lo, dtype=bool)
            todo[fitted_rows[a:b] - lo] = False
            others = np.flatnonzero(todo)
            vectors = shard_vectors(root, emb, i) if (len(others) or kmeans) else None
            if len(others):
                assert vectors is not None
                if p.rest == "transform":
                    import pickle

                    reducer = pickle.loads((root / "reducer.pkl").read_bytes())
                    for s in range(0, len(others), 100_000):
                        part = others[s : s + 100_000]
                        xy[part] = reducer.transform(vectors[part])
                else:
                    xy[others] = knn_place(np.load(root / "fitted_vectors.npy"), fitted_xy, vectors, others, k=5,
                                           seed=seed)
            if kmeans:
                assert vectors is not None
                labels = nearest_centroid(vectors, np.load(root / "centroids.npy"))
            else:
                labels = np.zeros(hi - lo, dtype=np.int64)
            save_npy(xy, root / "xy" / f"s{i:05d}.npy", work)
            save_npy(labels.astype(np.int64), root / "labels" / f"s{i:05d}.npy", work)
            return {}

        t0 = time.perf_counter()
        ex.run(f"{sid}_place", place, range(n_shards))
        timings["seconds_rest"] = time.perf_counter() - t0
        timings["seconds_layout"] = timings["seconds_fit"] + timings["seconds_rest"]

        def relabel(_: int) -> dict[str, Any]:
            """HDBSCAN over every position, and/or the previous map's cluster ids: one task."""
            labels = _all_of(root, "labels", n_shards)
            out: dict[str, Any] = {}
            if p.method == "hdbscan":
                from curate.analysis.maps import hdbscan_labels

                xy = _all_of(root, "xy", n_shards)
                labels = hdbscan_labels(xy, min_cluster_size=p.min_cluster_size, seed=seed)
            if decided["prev"]:
                prev = previous_map(tctx)
                assert prev is not None
                ids = _all_ids(root, n_shards)
                local_info: dict[str, Any] = {}
                labels = step._match(prev, ids, labels, local_info)
                out["info"] = local_info
            for i in range(n_shards):
                save_npy(labels[offs[i]:offs[i + 1]].astype(np.int64), root / "labels" / f"s{i:05d}.npy", work)
            return out

        t0 = time.perf_counter()
        if p.method == "hdbscan" or decided["prev"]:
            info.update(ex.run(f"{sid}_clusters", relabel, [0])[0].get("info", {}))
        timings["seconds_clusters"] = time.perf_counter() - t0

    # -- 3: topics and sample prompts ---------------------------------------------------------------
    def topics(_: int) -> dict[str, Any]:
        from curate.analysis.maps import ctfidf_rows, ctfidf_words, shorten

        labels = _all_of(root, "labels", n_shards)
        out: dict[str, Any] = {"sizes": {str(c): int(m) for c, m in zip(*np.unique(labels, return_counts=True),
                                                                          strict=True)}}
        if not reused:
            picked = ctfidf_rows(labels, seed=seed)
            keys = sorted(picked)
            flat = np.concatenate([picked[c] for c in keys]) if keys else np.zeros(0, np.int64)
            texts = _prompts_at(root, offs, flat)
            docs, at = {}, 0
            for c in keys:
                docs[c] = texts[at : at + len(picked[c])]
                at += len(picked[c])
            out["names"] = {str(c): ", ".join(w) for c, w in ctfidf_words(docs, top_n=p.topic_words).items()}
        picks: list[tuple[str, np.ndarray]] = []  # as the local step's _samples: three seeded prompts a cluster
        for lab in np.unique(labels).tolist():
            rows_c = np.flatnonzero(labels == lab)
            if len(rows_c) > 3:
                rows_c = np.sort(np.random.default_rng(seed + int(lab)).choice(rows_c, size=3, replace=False))
            picks.append((str(lab), rows_c))
        flat = np.concatenate([r for _, r in picks]) if picks else np.zeros(0, np.int64)
        texts = [shorten(t) for t in _prompts_at(root, offs, flat)]
        samples: dict[str, list[str]] = {}
        at = 0
        for key, rows_c in picks:
            samples[key] = texts[at : at + len(rows_c)]
            at += len(rows_c)
        out["samples"] = samples
        return out

    t0 = time.perf_counter()
    top = ex.run(f"{sid}_topics", topics, [0])[0]
    if not reused:
        names = {int(c): v for c, v in top["names"].items()}
        timings["seconds_topics"] = time.perf_counter() - t0

    # -- 4: scores, map.parquet, removed records ------------------------------------------------------
    map_parts = root / "map"

    def write(i: int) -> dict[str, Any]:
        df = pl.read_parquet(root / "rows" / f"s{i:05d}.parquet", columns=["id", "source"])
        xy = np.load(root / "xy" / f"s{i:05d}.npy")
        labels = np.load(root / "labels" / f"s{i:05d}.npy")
        topic = pl.Series(labels, dtype=pl.Int64).replace_strict(names, default=NOISE_TOPIC, return_dtype=pl.Utf8)
        out = pl.DataFrame({"id": df["id"], "x": xy[:, 0].astype(np.float64), "y": xy[:, 1].astype(np.float64),
                            "cluster": pl.Series(labels, dtype=pl.Int32), "topic": topic, "source": df["source"]})
        save_parquet(out, map_parts / f"s{i:05d}.parquet", work)
        write_shard_scores(out.select(
            "id", pl.col("x").alias(f"{sid}.x"), pl.col("y").alias(f"{sid}.y"),
            pl.col("cluster").alias(f"{sid}.cluster"), pl.col("topic").alias(f"{sid}.topic")), folder, i)
        return {}

    ex.run(f"{sid}_write", write, range(n_shards))
    map_file = ctx.artifact(L.MAP.name)
    removed_file = ctx.artifact(L.MAP_REMOVED.name)

    def assemble(_: int) -> dict[str, Any]:
        import pyarrow.parquet as pq

        staged = Staged(map_file, work)
        writer = None
        for i in range(n_shards):
            table = pq.read_table(map_parts / f"s{i:05d}.parquet")
            writer = writer or pq.ParquetWriter(staged.tmp, table.schema, compression="zstd")
            writer.write_table(table)
        if writer is not None:
            writer.close()
        staged.commit()
        out: dict[str, Any] = {}
        if p.place_removed:
            t = time.perf_counter()
            local_info: dict[str, Any] = {}
            removed = step._place_removed(tctx, pl.read_parquet(map_file), all_vectors(root, emb, n_shards),
                                          local_info)
            save_parquet(removed, removed_file, work)
            out = {"info": local_info, "seconds_removed": time.perf_counter() - t}
        return out

    done = ex.run(f"{sid}_assemble", assemble, [0], whole_node=True)[0]
    if p.place_removed:
        info.update(done["info"])
        timings["seconds_removed"] = done["seconds_removed"]
    sizes: list[tuple[int, str, int]] = sorted(
        ((int(c), names.get(int(c), NOISE_TOPIC), int(m)) for c, m in top["sizes"].items()), key=lambda r: (-r[2], r[0]))
    clusters = [{"cluster": c, "topic": t, "size": m, "sample_prompts": top["samples"][str(c)]} for c, t, m in sizes]
    ctx.artifact(L.CLUSTERS.name).write_text(json.dumps(clusters, indent=1, ensure_ascii=False))
    t0 = time.perf_counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for f in found:  # shard order: the counts keep the order of first appearance in the whole set
        for v, o, c in f["verbs"]:
            pairs[(v, o)] += c
    ctx.artifact(L.VERBS.name).write_text(json.dumps(verb_table_of(pairs, n), indent=1))
    timings["seconds_verbs"] = time.perf_counter() - t0
    ctx.artifact(L.MAP_INFO.name).write_text(json.dumps(info, indent=1, default=str))
    step.report_extra = {"clusters": float(len(sizes)), "points": float(n),
                         "layout_reused": float(info["layout"] == "reused"),
                         "placed_points": float(info["placed_points"]),
                         "clusters_matched": float(info["clusters_matched"]), **timings}
    return GlobalResult(scores=None), None
