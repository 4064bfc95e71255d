"""Semantic deduplication (SemDeDup) on the run's embeddings."""

from __future__ import annotations

import math
from typing import Literal, cast

import numpy as np
import polars as pl
from pydantic import Field

from curate import layout as L
from curate.errors import ConfigError
from curate.index import vectors as vx
from curate.steps.base import Dedup, StepContext
from curate.steps.dedup.keep import DedupParams, load_rows, resolve_groups, write_groups
from curate.steps.registry import register


@register("dedup.semantic")
class SemanticDedup(Dedup):
    """Keep one record per group of records whose embeddings have cosine >= threshold_cosine.

    Mode ``kmeans`` follows SemDeDup (Abbas et al. 2023): seeded faiss k-means into clusters of about
    ``cluster_size`` rows, then every pair inside a cluster with cosine >= threshold is a duplicate
    (pairs split across clusters are missed; ``knn`` does not miss them). Mode ``knn`` runs a range
    search on the run's FAISS index. Pairs are joined by union-find, and each removed record's
    ``similarity`` is its cosine to the survivor. The 0.95 default is near SemDeDup's strictest
    setting (eps 0.05), which removes paraphrases with the same meaning and keeps topical neighbours.
    Only records still in the dataset are considered (earlier steps may have removed embedded rows).

    Reasons: semantic_dup.
    """

    needs = (L.EMBEDDINGS, L.EMBEDDING_IDS)
    provides = (L.GROUPS,)

    def needed(self) -> tuple[L.Artifact, ...]:
        return self.needs + ((L.INDEX, L.INDEX_IDS) if self.params.mode == "knn" else ())

    class Params(DedupParams):
        threshold_cosine: float = Field(0.95, gt=0, le=1, description="Cosine at or above which two records are duplicates.")
        mode: Literal["kmeans", "knn"] = Field("kmeans", description="kmeans (SemDeDup) or knn (index range search).")
        cluster_size: int = Field(1000, ge=2, description="Target rows per k-means cluster (k = n / cluster_size).")
        niter: int = Field(20, ge=1, description="k-means iterations.")

    def decide(self, ds: pl.LazyFrame, ctx: StepContext) -> pl.DataFrame:
        p = self.params
        emb_path = ctx.find_artifact(L.EMBEDDINGS)
        if emb_path is None:
            raise ConfigError(
                f"{self.id}: no embeddings found in this run; add `embed.sentence_transformer` "
                "before dedup.semantic in the recipe"
            )
        emb_ids, matrix = vx.load_embeddings(emb_path)
        rows = load_rows(ds, p)
        pos = (
            rows.select("_row", "id")
            .join(pl.DataFrame({"id": emb_ids, "_vec": np.arange(len(emb_ids), dtype=np.int64)}), on="id", how="inner")
            .sort("_row")
        )
        self.report_extra["not_embedded"] = float(len(rows) - len(pos))
        vec_rows = pos["_vec"].to_numpy()
        # consider only rows still present, in input order; x[k] belongs to rows row pos["_row"][k]
        x = np.ascontiguousarray(matrix[vec_rows], dtype=np.float32)
        if p.mode == "kmeans":
            k = max(1, math.ceil(len(x) / p.cluster_size))
            labels = vx.kmeans_assign(x, k, seed=self.seed, niter=p.niter) if len(x) else np.zeros(0, np.int64)
            self.report_extra["clusters"] = float(k)
            i, j, _ = vx.pairs_above(x, labels, p.threshold_cosine)
        else:
            index, index_ids = vx.load_index(emb_path)
            present = np.full(len(index_ids), -1, dtype=np.int64)
            lookup = pl.DataFrame({"id": index_ids, "_ix": np.arange(len(index_ids))}).join(
                pos.with_row_index("_k").select("id", "_k"), on="id", how="inner"
            )
            present[lookup["_ix"].to_numpy()] = lookup["_k"].to_numpy().astype(np.int64)
            qi, ri, _ = vx.range_pairs(index, x, p.threshold_cosine)
            rj = present[ri]
            keep = (rj >= 0) & (rj != qi)
            i, j = qi[keep], rj[keep]
        self.report_extra["pairs"] = float(len(i))
        # map vector positions back to dataset rows; rows without a vector stay alone
        row_of = pos["_row"].to_numpy()
        labels_rows = vx.components(len(rows), row_of[i], row_of[j])
        vec_of_row = np.full(len(rows), -1, dtype=np.int64)
        vec_of_row[row_of] = np.arange(len(row_of))

        def cosine(m: np.ndarray, s: np.ndarray) -> np.ndarray:
            return cast(np.ndarray, np.einsum("ij,ij->i", x[vec_of_row[m]], x[vec_of_row[s]]))

        decisions, groups = resolve_groups(rows, labels_rows, cosine, reason="semantic_dup", ctx=ctx, step_id=self.id)
        self.report_extra.update(write_groups(groups, ctx))
        return decisions
