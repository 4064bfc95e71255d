"""`score.map`: a seeded 2-D map of the embeddings with clusters and topic keywords (map.parquet)."""

from __future__ import annotations

import json
import time
from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate.analysis.maps import ctfidf_topics, hdbscan_labels, umap_layout, verb_table
from curate.errors import ConfigError
from curate.pipeline.registry import register
from curate.schema import first_user_expr
from curate.steps.base import GlobalResult, GlobalStep, StepContext, StepParams
from curate.steps.score.diversity import aligned_vectors, auto_k


@register("score.map")
class MapScorer(GlobalStep):
    """Lay the records out in 2-D (UMAP, seeded), cluster them and label each cluster with its topic.

    Writes ``map.parquet`` (id, x, y, cluster, topic, source) for the browser and the report, and
    ``verbs.json``, an Alpaca-style table of instruction root verbs and their objects. Clusters are
    k-means on the embeddings (or HDBSCAN on the layout); topics are c-TF-IDF keywords of the prompts,
    so no LLM or network is needed. Above ``fit_sample`` points UMAP is fitted on a seeded sample and
    the rest are placed by ``rest``: ``knn`` (default) puts each at the similarity-weighted mean
    position of its 5 nearest fitted points (FAISS IVF), ``transform`` runs umap's own transform. On
    bench/analysis.py's 1M clustered records (2 cores), transform placed the other 950K in 205 s and
    knn in well under 100 s, and knn's map kept topics together better (a point's 10 nearest 2-D
    neighbours share its planted topic 0.90 of the time, against 0.76 with transform).

    Reasons: none (a scorer).
    """

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

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        p = self.params
        df = ds.select("id", "source", first_user_expr().alias("prompt")).collect()
        vectors = aligned_vectors(ctx, df["id"])
        if vectors is None:
            raise ConfigError(f"{self.id}: no embeddings in this run; add `embed.sentence_transformer` before it")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        xy = umap_layout(vectors, seed=ctx.seed, fit_sample=p.fit_sample, n_neighbors=p.n_neighbors,
                         min_dist=p.min_dist, rest=p.rest, timings=timings)
        timings["seconds_layout"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if p.method == "hdbscan":
            labels = hdbscan_labels(xy, min_cluster_size=p.min_cluster_size, seed=ctx.seed)
        else:
            from curate.index.vectors import kmeans_assign

            labels = kmeans_assign(vectors, min(p.clusters or auto_k(len(df)), max(len(df), 1)), seed=ctx.seed)
        timings["seconds_clusters"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prompts = df["prompt"].to_list()
        topics = ctfidf_topics(prompts, labels, top_n=p.topic_words, seed=ctx.seed)
        names = {int(lab): ", ".join(words) for lab, words in topics.items()}
        topic_col = pl.Series(labels, dtype=pl.Int64).replace_strict(names, default="noise", return_dtype=pl.Utf8)
        timings["seconds_topics"] = time.perf_counter() - t0
        out = pl.DataFrame({
            "id": df["id"], "x": xy[:, 0], "y": xy[:, 1],
            "cluster": pl.Series(labels, dtype=pl.Int32), "topic": topic_col, "source": df["source"],
        })
        out.write_parquet(ctx.artifact("map.parquet"))
        sizes = out.group_by("cluster", "topic").len().sort("len", descending=True)
        clusters = [{"cluster": int(c), "topic": t, "size": int(n),
                     "sample_prompts": _samples(out, prompts, int(c), ctx.seed)}
                    for c, t, n in sizes.iter_rows()]
        ctx.artifact("clusters.json").write_text(json.dumps(clusters, indent=1, ensure_ascii=False))
        t0 = time.perf_counter()
        ctx.artifact("verbs.json").write_text(json.dumps(verb_table(prompts), indent=1))
        timings["seconds_verbs"] = time.perf_counter() - t0
        self.report_extra = {"clusters": float(len(sizes)), "points": float(len(out)), **timings}
        return GlobalResult(scores=out.select(
            "id", pl.col("x").alias(f"{self.id}.x"), pl.col("y").alias(f"{self.id}.y"),
            pl.col("cluster").alias(f"{self.id}.cluster"), pl.col("topic").alias(f"{self.id}.topic")))


def _samples(out: pl.DataFrame, prompts: list[str], cluster: int, seed: int, n: int = 3) -> list[str]:
    idx = np.flatnonzero(out["cluster"].to_numpy() == cluster)
    if len(idx) > n:
        idx = np.sort(np.random.default_rng(seed + cluster).choice(idx, size=n, replace=False))
    return [prompts[i][:300] for i in idx]
