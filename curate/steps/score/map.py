"""`score.map`: a seeded 2-D map of the embeddings with clusters and topic keywords (map.parquet).

A map that stays put: when the previous run of the recipe has a map and the embeddings of the records
both runs map are unchanged, its layout, cluster ids and topics are reused; records new to this run are
placed by their nearest neighbours. Otherwise the layout is fitted again and cluster ids are matched to
the previous run's by member overlap, so a cluster keeps its number across reruns.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import layout as L
from curate.analysis.maps import (
    ctfidf_topics,
    hdbscan_labels,
    knn_place_labelled,
    match_clusters,
    same_vectors,
    shorten,
    umap_layout,
    verb_table,
)
from curate.errors import ConfigError
from curate.layout import RunLayout
from curate.schema import first_user_expr
from curate.steps.base import GlobalResult, GlobalStep, StepContext, StepParams
from curate.steps.registry import register
from curate.steps.score.diversity import aligned_vectors, auto_k

NOISE_TOPIC = "noise"
# Params whose change makes a new map (the others, like topic_words, do not move a point).
LAYOUT_PARAMS = ("clusters", "method", "min_cluster_size", "fit_sample", "rest", "n_neighbors", "min_dist")


@dataclass
class PreviousMap:
    """The map of an earlier run of the recipe, with the embeddings it was made from."""

    run: Path
    map: pl.DataFrame  # id, x, y, cluster, topic
    params: dict[str, Any]
    emb_ids: pl.Series
    emb: np.ndarray


def previous_map(ctx: StepContext) -> PreviousMap | None:
    """The map of the run this one follows: ``latest`` when it is another run, else the sibling run whose
    map was written last. None when there is none, or it lacks its embeddings or map.json."""
    here = ctx.run_dir.resolve()
    recipe = RunLayout(here).recipe
    candidates: list[Path] = []
    if recipe.latest.exists() and recipe.latest.resolve() != here:
        candidates.append(recipe.latest.resolve())
    siblings = []
    for d in recipe.root.iterdir() if recipe.root.is_dir() else []:
        if d.is_dir() and not d.is_symlink() and d.resolve() != here:
            m = RunLayout(d).find(L.MAP)
            if m is not None:
                siblings.append((m.stat().st_mtime_ns, d.resolve()))
    candidates += [d for _, d in sorted(siblings, reverse=True)]
    for run in candidates:
        lay = RunLayout(run)
        m, info, emb = lay.find(L.MAP), lay.find(L.MAP_INFO), lay.find(L.EMBEDDINGS)
        if m is None or info is None or emb is None:
            continue
        from curate.index.vectors import load_embeddings

        try:
            params = json.loads(info.read_text(encoding="utf-8")).get("params", {})
            emb_ids, matrix = load_embeddings(emb)
            prev = pl.read_parquet(m, columns=["id", "x", "y", "cluster", "topic"])
        except (OSError, ValueError, pl.exceptions.PolarsError) as e:
            ctx.extra.setdefault("warnings", []).append(f"previous map in {run} unreadable: {e}")
            continue
        return PreviousMap(run=run, map=prev, params=params, emb_ids=emb_ids, emb=matrix)
    return None


def _rows_of(ids: pl.Series, of: pl.Series) -> np.ndarray:
    """Row of each of ``ids`` in ``of`` (-1 where absent)."""
    pos = pl.DataFrame({"id": of, "_r": pl.int_range(0, len(of), eager=True, dtype=pl.Int64)})
    return pl.DataFrame({"id": ids}).join(pos, on="id", how="left")["_r"].fill_null(-1).to_numpy()


@register("score.map")
class MapScorer(GlobalStep):
    """Lay the records out in 2-D (UMAP, seeded), cluster them and label each cluster with its topic.

    Writes ``map.parquet`` (id, x, y, cluster, topic, source) for the browser and the report,
    ``map_removed.parquet`` (removed records placed on the same map: a record removed after the embed
    step at its nearest mapped record by embedding, a duplicate removed before it at its survivor), ``map.json`` (how the map was
    made), ``clusters.json`` and ``verbs.json``, an Alpaca-style table of instruction root verbs and
    their objects. Clusters are k-means on the embeddings (or HDBSCAN on the layout); topics are
    c-TF-IDF keywords of the prompts, so no LLM or network is needed. Above ``fit_sample`` points UMAP
    is fitted on a seeded sample and the rest are placed by ``rest``: ``knn`` (default) puts each at the
    similarity-weighted mean position of its 5 nearest fitted points (FAISS IVF), ``transform`` runs
    umap's own transform. On bench/analysis.py's 1M clustered records (2 cores), transform placed the
    other 950K in 205 s and knn in well under 100 s, and knn's map kept topics together better (a
    point's 10 nearest 2-D neighbours share its planted topic 0.90 of the time, against 0.76 with
    transform).

    With ``stable`` (default), a rerun keeps the map a person has learnt: if the previous run of the
    recipe mapped with the same layout params, every record both runs map has an unchanged embedding
    (within 1e-3) and at most ``max_new_share`` of this run's records are new, the previous positions,
    cluster ids and topics are kept and new records are placed and clustered by their nearest
    previous neighbours. Otherwise the map is fitted again and each new cluster takes the id of the
    previous cluster holding most of its records (Hungarian matching on member overlap).

    Reasons: none (a scorer).
    """

    needs = (L.EMBEDDINGS, L.EMBEDDING_IDS)
    provides = (L.MAP, L.MAP_REMOVED, L.MAP_INFO, L.CLUSTERS, L.VERBS)

    kind: ClassVar[str] = "score"

    class Params(StepParams):
        clusters: int | None = Field(None, ge=2, description="k-means clusters; default round(sqrt(n)/2) in [8, 256].")
        method: Literal["kmeans", "hdbscan"] = Field("kmeans", description="Clustering method.")
        min_cluster_size: int = Field(50, ge=2, description="HDBSCAN minimum cluster size.")
        fit_sample: int = Field(50_000, ge=100, description="UMAP is fitted on at most this many points.")
        rest: Literal["knn", "transform"] = Field(
            "knn", description="How points beyond fit_sample are placed: similarity-weighted mean position of "
                               "the 5 nearest fitted points (fast), or umap's transform (about 2x slower).")
        n_neighbors: int = Field(15, ge=2, description="UMAP neighbours.")
        min_dist: float = Field(0.1, ge=0, le=1, description="UMAP minimum distance.")
        topic_words: int = Field(4, ge=1, le=12, description="Keywords per cluster topic.")
        stable: bool = Field(True, description="Reuse the previous run's layout, cluster ids and topics when the "
                                               "mapped records' embeddings are unchanged; else match cluster ids.")
        max_new_share: float = Field(0.2, ge=0, le=1, description="Reuse the previous layout only when at most "
                                                                  "this share of the mapped records is new.")
        place_removed: bool = Field(True, description="Place removed records on the map (map_removed.parquet).")

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        p = self.params
        df = ds.select("id", "source", first_user_expr().alias("prompt")).collect()
        vectors = aligned_vectors(ctx, df["id"])
        if vectors is None:
            raise ConfigError(f"{self.id}: no embeddings in this run; add `embed.sentence_transformer` before it")
        params = p.model_dump()
        info: dict[str, Any] = {"layout": "fitted", "previous_run": None, "why_fitted": None, "points": len(df),
                                "reused_points": 0, "placed_points": 0, "cluster_ids": "new", "clusters_matched": 0,
                                "params": params}
        timings: dict[str, float] = {}
        prompts = df["prompt"].to_list()
        prev = previous_map(ctx) if p.stable else None
        reuse = self._reusable(prev, df["id"], vectors, info) if prev is not None else None
        t0 = time.perf_counter()
        if prev is not None and reuse is not None:
            xy, labels, names = self._reuse(prev, reuse, vectors, ctx, info)
            timings["seconds_layout"] = time.perf_counter() - t0
        else:
            xy = umap_layout(vectors, seed=ctx.seed, fit_sample=p.fit_sample, n_neighbors=p.n_neighbors,
                             min_dist=p.min_dist, rest=p.rest, timings=timings)
            timings["seconds_layout"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if p.method == "hdbscan":
                labels = hdbscan_labels(xy, min_cluster_size=p.min_cluster_size, seed=ctx.seed)
            else:
                from curate.index.vectors import kmeans_assign

                labels = kmeans_assign(vectors, min(p.clusters or auto_k(len(df)), max(len(df), 1)), seed=ctx.seed)
            if prev is not None:
                labels = self._match(prev, df["id"], labels, info)
            timings["seconds_clusters"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            topics = ctfidf_topics(prompts, labels, top_n=p.topic_words, seed=ctx.seed)
            names = {int(lab): ", ".join(words) for lab, words in topics.items()}
            timings["seconds_topics"] = time.perf_counter() - t0
        topic_col = pl.Series(labels, dtype=pl.Int64).replace_strict(names, default=NOISE_TOPIC, return_dtype=pl.Utf8)
        out = pl.DataFrame({
            "id": df["id"], "x": xy[:, 0].astype(np.float64), "y": xy[:, 1].astype(np.float64),
            "cluster": pl.Series(labels, dtype=pl.Int32), "topic": topic_col, "source": df["source"],
        })
        out.write_parquet(ctx.artifact(L.MAP.name))
        if p.place_removed:
            t0 = time.perf_counter()
            removed = self._place_removed(ctx, out, vectors, info)
            removed.write_parquet(ctx.artifact(L.MAP_REMOVED.name))
            timings["seconds_removed"] = time.perf_counter() - t0
        sizes = out.group_by("cluster", "topic").len().sort("len", "cluster", descending=[True, False])
        clusters = [{"cluster": int(c), "topic": t, "size": int(n),
                     "sample_prompts": _samples(out, prompts, int(c), ctx.seed)}
                    for c, t, n in sizes.iter_rows()]
        ctx.artifact(L.CLUSTERS.name).write_text(json.dumps(clusters, indent=1, ensure_ascii=False))
        t0 = time.perf_counter()
        ctx.artifact(L.VERBS.name).write_text(json.dumps(verb_table(prompts), indent=1))
        timings["seconds_verbs"] = time.perf_counter() - t0
        ctx.artifact(L.MAP_INFO.name).write_text(json.dumps(info, indent=1, default=str))
        self.report_extra = {"clusters": float(len(sizes)), "points": float(len(out)),
                             "layout_reused": float(info["layout"] == "reused"),
                             "placed_points": float(info["placed_points"]),
                             "clusters_matched": float(info["clusters_matched"]), **timings}
        return GlobalResult(scores=out.select(
            "id", pl.col("x").alias(f"{self.id}.x"), pl.col("y").alias(f"{self.id}.y"),
            pl.col("cluster").alias(f"{self.id}.cluster"), pl.col("topic").alias(f"{self.id}.topic")))

    # -- a map that stays put ---------------------------------------------------------------------
    def _reusable(self, prev: PreviousMap, ids: pl.Series, vectors: np.ndarray,
                  info: dict[str, Any]) -> np.ndarray | None:
        """Row in ``prev.map`` of each record (-1 = new) when the previous layout can be kept, else None
        (with the reason in ``info["why_fitted"]``)."""
        info["previous_run"] = str(prev.run)
        now = {k: self.params.model_dump()[k] for k in LAYOUT_PARAMS}
        if {k: prev.params.get(k) for k in LAYOUT_PARAMS} != now:
            info["why_fitted"] = "layout params changed"
            return None
        rows = _rows_of(ids, prev.map["id"])
        common = np.flatnonzero(rows >= 0)
        new_share = 1.0 - len(common) / max(len(ids), 1)
        if len(common) < 4 or new_share > self.params.max_new_share:
            info["why_fitted"] = f"{new_share:.0%} of the records are new (more than max_new_share)"
            return None
        emb_rows = _rows_of(ids.gather(common), prev.emb_ids)
        if (emb_rows < 0).any() or prev.emb.shape[1] != vectors.shape[1]:
            info["why_fitted"] = "the previous run has no embedding for some mapped records"
            return None
        order = np.argsort(emb_rows)  # read the previous matrix in row order (it is memory-mapped)
        if not same_vectors(vectors[common[order]], prev.emb[emb_rows[order]]):
            info["why_fitted"] = "embeddings changed"
            return None
        return rows

    def _reuse(self, prev: PreviousMap, rows: np.ndarray, vectors: np.ndarray, ctx: StepContext,
               info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """Positions, cluster ids and topics of the previous map; new records by their nearest neighbours."""
        common = np.flatnonzero(rows >= 0)
        new = np.flatnonzero(rows < 0)
        pxy = prev.map.select("x", "y").to_numpy().astype(np.float32)
        pcl = prev.map["cluster"].to_numpy().astype(np.int64)
        xy = np.empty((len(rows), 2), dtype=np.float32)
        labels = np.empty(len(rows), dtype=np.int64)
        xy[common] = pxy[rows[common]]
        labels[common] = pcl[rows[common]]
        if len(new):
            xy[new], labels[new] = knn_place_labelled(
                vectors[common], xy[common], labels[common], vectors, new, k=5, seed=ctx.seed)
        names = {int(c): str(t) for c, t in prev.map.select("cluster", "topic").unique("cluster").iter_rows()
                 if c is not None and t is not None and c >= 0}
        info.update(layout="reused", reused_points=len(common), placed_points=len(new),
                    cluster_ids="carried")
        return xy, labels, names

    def _match(self, prev: PreviousMap, ids: pl.Series, labels: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """Fresh cluster labels renumbered to the previous run's ids where the members overlap."""
        rows = _rows_of(ids, prev.map["id"])
        both = rows >= 0
        old = prev.map["cluster"].to_numpy().astype(np.int64)[rows[both]]
        mapping = match_clusters(old, labels[both], labels)
        info["cluster_ids"] = "matched"
        info["clusters_matched"] = sum(1 for k, v in mapping.items() if k >= 0 and v in set(old.tolist()))
        return np.vectorize(mapping.__getitem__, otypes=[np.int64])(labels) if len(labels) else labels

    # -- removed records --------------------------------------------------------------------------
    def _place_removed(self, ctx: StepContext, out: pl.DataFrame, vectors: np.ndarray,
                       info: dict[str, Any]) -> pl.DataFrame:
        """Removed records of earlier steps on this map: at their nearest mapped record by embedding when
        they have one (removed after the embed step), else at the position of what they duplicate (following duplicate_of
        through earlier removals to a mapped record). Others (removed by a filter before the embed
        step) have no place and are counted in ``info``."""
        lay = RunLayout(ctx.run_dir)
        here = ctx.work_dir.name
        files = [f for f in lay.ledger_files() if f.stem < here]
        empty = L.MAP_REMOVED.empty()
        info["removed_placed"] = {"embedding": 0, "duplicate_of": 0}
        info["removed_unplaced"] = 0
        if not files:
            return empty
        ledger = pl.concat([pl.scan_parquet(f).select("id", "duplicate_of") for f in files]).collect()
        ledger = ledger.join(out.select("id"), on="id", how="anti").unique("id", keep="last", maintain_order=True)
        if ledger.is_empty():
            return empty
        topics = dict(out.select("cluster", "topic").unique("cluster").iter_rows())
        mapped_xy = out.select("x", "y").to_numpy().astype(np.float32)
        mapped_cl = out["cluster"].to_numpy().astype(np.int64)
        parts = []
        path = ctx.find_artifact(L.EMBEDDINGS.name)
        by_emb = pl.DataFrame(schema={"id": pl.Utf8, "x": pl.Float64, "y": pl.Float64, "cluster": pl.Int64,
                                      "placed": pl.Utf8})
        if path is not None:
            from curate.index.vectors import load_embeddings

            emb_ids, matrix = load_embeddings(path)
            erows = _rows_of(ledger["id"], emb_ids)
            has = np.flatnonzero(erows >= 0)
            if len(has):
                ids = ledger["id"].gather(has)
                order = np.argsort(erows[has])
                qv = np.asarray(matrix[erows[has][order]], dtype=np.float32)
                # at the nearest mapped record: a mean of several neighbours would put a record of a dropped
                # source in the empty space between clusters, a place that says nothing
                pos, lab = knn_place_labelled(vectors, mapped_xy, mapped_cl, qv, np.arange(len(qv)), k=1,
                                              seed=ctx.seed)
                by_emb = pl.DataFrame({"id": ids.gather(order), "x": pos[:, 0].astype(np.float64),
                                       "y": pos[:, 1].astype(np.float64), "cluster": lab, "placed": "embedding"})
                parts.append(by_emb)
        # duplicates removed before the embed step: at what they duplicate, through chains of removals
        where = pl.concat([out.select("id", "x", "y", pl.col("cluster").cast(pl.Int64)),
                           by_emb.select("id", "x", "y", pl.col("cluster").cast(pl.Int64))])
        placed_ids = where["id"].implode()
        target = ledger.filter(~pl.col("id").is_in(placed_ids) & pl.col("duplicate_of").is_not_null()).select(
            "id", pl.col("duplicate_of").alias("at"))
        dup_of = dict(ledger.filter(pl.col("duplicate_of").is_not_null()).select("id", "duplicate_of").iter_rows())
        for _ in range(8):  # a chain of duplicates of duplicates is short; stop at eight links
            done = pl.col("at").is_in(placed_ids)
            if target.filter(~done).is_empty():
                break
            target = target.with_columns(pl.when(done).then(pl.col("at")).otherwise(pl.col("at").replace(dup_of)))
        placed = target.join(where.rename({"id": "at"}), on="at", how="inner").select(
            "id", "x", "y", "cluster", pl.lit("duplicate_of").alias("placed"))
        parts.append(placed)
        res = pl.concat([p.select("id", "x", "y", pl.col("cluster").cast(pl.Int32), "placed") for p in parts])
        res = res.with_columns(pl.col("cluster").cast(pl.Int64).replace_strict(
            topics, default=NOISE_TOPIC, return_dtype=pl.Utf8).alias("topic"))
        info["removed_placed"] = {"embedding": int((res["placed"] == "embedding").sum()),
                                  "duplicate_of": int((res["placed"] == "duplicate_of").sum())}
        info["removed_unplaced"] = int(ledger.height - res.height)
        return res.select(list(L.MAP_REMOVED.schema or {})).cast(dict(L.MAP_REMOVED.schema or {}))  # type: ignore[arg-type]


def _samples(out: pl.DataFrame, prompts: list[str], cluster: int, seed: int, n: int = 3) -> list[str]:
    idx = np.flatnonzero(out["cluster"].to_numpy() == cluster)
    if len(idx) > n:
        idx = np.sort(np.random.default_rng(seed + cluster).choice(idx, size=n, replace=False))
    return [shorten(prompts[i]) for i in idx]
