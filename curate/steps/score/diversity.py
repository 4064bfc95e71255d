"""`score.diversity`: diversity figures per source, per subset and overall (see curate.analysis.diversity)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from curate import layout as L
from curate.analysis.diversity import METRICS, group_figures, response_text_expr, response_words_expr
from curate.schema import first_user_expr
from curate.steps.base import GlobalResult, GlobalStep, StepContext, StepParams
from curate.steps.registry import register

DUP_REASONS = ("exact_dup", "near_dup", "semantic_dup", "rouge_l_dup")


def auto_k(n: int) -> int:
    """Default k-means clusters: about sqrt(n)/2 (48 for 9K records, 256 from 262K on)."""
    return int(min(256, max(8, round(math.sqrt(max(n, 1)) / 2))))


def aligned_vectors(ctx: StepContext, ids: pl.Series) -> np.ndarray | None:
    """Rows of the run's embeddings for ``ids`` (in that order), or None when no embed step ran."""
    path = ctx.find_artifact(L.EMBEDDINGS)
    if path is None:
        return None
    from curate.index.vectors import load_embeddings

    emb_ids, matrix = load_embeddings(path)
    if emb_ids.len() == ids.len() and emb_ids.equals(ids, check_names=False):
        return np.array(matrix, dtype=np.float32)  # same rows in the same order: one sequential read
    pos = pl.DataFrame({"id": emb_ids, "row": pl.arange(0, len(emb_ids), eager=True)})
    rows = pl.DataFrame({"id": ids}).join(pos, on="id", how="left")["row"]
    if rows.null_count():
        missing = rows.null_count()
        raise ValueError(f"{missing} records have no embedding; the embed step must run on every record")
    return np.asarray(matrix[rows.to_numpy()], dtype=np.float32)


@register("score.diversity")
class DiversityScorer(GlobalStep):
    """Measure diversity per source, per subset and overall; decides nothing.

    Figures: mean nearest-neighbour cosine distance, cluster entropy over seeded faiss k-means, the
    Vendi score (Friedman & Dieng 2023) on a fixed-size seeded sample, distinct-1/2 of the prompts,
    response-length distribution and the share of responses of three words or fewer, response
    homogeneity (distinct normalised responses and distinct-1 of the responses, on the same fixed-size
    sample as distinct-n), and the near-duplicate rate from the dedup steps' ledger. They go to ``diversity.json`` (and the run's
    report.json), and ``filter.source`` can drop whole sources by them (``drop_if``).
    Per record it adds ``<id>.cluster`` and, up to ``knn_max`` records, ``<id>.nn_dist`` (exact search up
    to 20K records; above, a FAISS IVF index with nprobe tuned to recall@10 >= 0.95, which finds the exact
    nearest neighbour for 97% of records at about a third of the CPU: 33 s instead of ~115 s per 100K).

    Reasons: none (a scorer).
    """

    provides = (L.DIVERSITY,)

    kind: ClassVar[str] = "score"

    class Params(StepParams):
        clusters: int | None = Field(None, ge=2, description="k-means clusters; default round(sqrt(n)/2) in [8, 256].")
        nn_sample: int = Field(5_000, ge=10, description="Records sampled per group for nn_dist.")
        vendi_sample: int = Field(1_000, ge=10, description="Records sampled per group for the Vendi score.")
        text_sample: int = Field(2_000, ge=10, description="Prompts sampled per group for distinct-n.")
        max_subsets: int = Field(50, ge=0, description="Largest subsets reported (0 = none).")
        knn_max: int = Field(200_000, ge=0, description="Write per-record nn_dist only up to this many records.")

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        p = self.params
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        df = ds.select(
            "id", "source", "subset",
            first_user_expr().alias("prompt"),
            response_words_expr().alias("words"),
            response_text_expr().alias("response"),
        ).collect()
        vectors = aligned_vectors(ctx, df["id"])
        timings["seconds_load"] = time.perf_counter() - t0
        k = p.clusters or auto_k(len(df))
        clusters = None
        scores = pl.DataFrame({"id": df["id"]})
        if vectors is not None and len(df) >= 2:
            from curate.index.vectors import kmeans_assign

            t0 = time.perf_counter()
            k = min(k, len(df))
            clusters = kmeans_assign(vectors, k, seed=ctx.seed)
            scores = scores.with_columns(pl.Series(f"{self.id}.cluster", clusters, dtype=pl.Int32))
            timings["seconds_kmeans"] = time.perf_counter() - t0
            if len(df) <= p.knn_max:
                t0 = time.perf_counter()
                scores = scores.with_columns(pl.Series(f"{self.id}.nn_dist", nn_dist_all(vectors, seed=ctx.seed)))
                timings["seconds_nn_dist"] = time.perf_counter() - t0
        dups = duplicates_by_source(ledger_before(ctx))
        t0 = time.perf_counter()
        prompts, responses, words = df["prompt"], df["response"], df["words"].to_numpy()

        def figures(rows: np.ndarray) -> dict[str, Any]:
            return group_figures(
                rows=rows, vectors=vectors, clusters=clusters, k=k, prompts=prompts, responses=responses,
                response_words=words, seed=ctx.seed, nn_sample=p.nn_sample,
                vendi_sample=p.vendi_sample, text_sample=p.text_sample,
            )

        indexed = df.select("source", "subset").with_row_index("row")
        sources, subsets = report_groups(indexed.group_by("source", "subset").len(), p.max_subsets)
        rows_of = dict(indexed.group_by("source").agg("row").iter_rows())
        per_source = {s: figures(np.asarray(rows_of[s], dtype=np.int64)) for s in sources}
        per_subset = {}
        if subsets:
            rows_in = {(s, sub): rows for s, sub, rows in indexed.filter(pl.col("subset").is_not_null())
                       .group_by("source", "subset").agg("row").iter_rows()}
            per_subset = {f"{s}/{sub}": figures(np.asarray(rows_in[(s, sub)], dtype=np.int64))
                          for s, sub in subsets}
        overall = figures(np.arange(len(df)))
        finish(self, ctx, k=k, embeddings=vectors is not None, overall=overall, per_source=per_source,
               per_subset=per_subset, dups=dups, timings=timings, t0=t0)
        return GlobalResult(scores=scores if scores.width > 1 else None)


def report_groups(pairs: pl.DataFrame, max_subsets: int) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """The groups ``diversity.json`` reports besides the whole set, from the records per (source, subset)
    (``len``; rows of one pair may repeat, e.g. one per shard): every source, by name, and the
    ``max_subsets`` largest subsets (ties by source, then subset)."""
    sizes = pairs.group_by("source", "subset").agg(pl.col("len").sum())
    sources = sizes.group_by("source").agg(pl.col("len").sum()).sort("source")["source"].to_list()
    top = (sizes.filter(pl.col("subset").is_not_null())
           .sort("len", "source", "subset", descending=[True, False, False]).head(max_subsets))
    return sources, list(top.select("source", "subset").iter_rows())


def near_dup_rate(count: int, dups: int) -> float:
    return dups / (count + dups) if count + dups else 0.0


def finish(step: DiversityScorer, ctx: StepContext, *, k: int, embeddings: bool, overall: dict[str, Any],
           per_source: dict[Any, dict[str, Any]], per_subset: dict[str, dict[str, Any]], dups: dict[Any, int],
           timings: dict[str, float], t0: float) -> None:
    """Near-duplicate rates, ``diversity.json`` and the report's figures, from every group's figures
    (shared by the local step and the Ray executor's)."""
    p = step.params
    for s, fig in per_source.items():
        fig["near_dup_rate"] = near_dup_rate(fig["count"], dups.get(s, 0))
    overall["near_dup_rate"] = near_dup_rate(overall["count"], sum(dups.values()))
    out = {
        "metrics": METRICS,
        "clusters": k,
        "embeddings": embeddings,
        "samples": {"nn": p.nn_sample, "vendi": p.vendi_sample, "text": p.text_sample},
        "overall": overall,
        "per_source": per_source,
        "per_subset": per_subset,
    }
    ctx.artifact(L.DIVERSITY).write_text(json.dumps(_finite(out), indent=1))
    timings["seconds_figures"] = time.perf_counter() - t0
    step.report_extra = {"clusters": float(k), "overall_vendi": float(overall.get("vendi", float("nan"))),
                         **timings}


def _finite(obj: Any) -> Any:
    """NaN/inf become null so the JSON is valid for every reader."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def nn_dist_all(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Cosine distance of each row to its nearest other row: exact up to 20K rows, IVF above."""
    from curate.index.vectors import build_index

    # Exact search costs 132 s per 100K rows on 2 cores (FACTS.md); IVF with nprobe tuned for
    # recall@10 >= 0.95 costs a third of that (bench/analysis.py), and a missed neighbour only
    # overstates one record's distance.
    index, _ = build_index(x, exact_max=20_000, seed=seed)
    sims, _ = index.search(np.ascontiguousarray(x), 2)
    dist: np.ndarray = (1.0 - np.clip(sims[:, 1], -1, 1)).astype(np.float32)
    return dist


def ledger_before(ctx: StepContext) -> list[Path]:
    """The ledger files of the steps before this one."""
    return [f for f in ctx.layout.ledger_files() if f.stem < ctx.work_dir.name]


def duplicates_by_source(files: list[Path]) -> dict[Any, int]:
    """Records removed as duplicates per source in the ledger ``files`` (a lazy scan of two columns)."""
    if not files:
        return {}
    lg = pl.concat([pl.scan_parquet(f).select("source", "reason") for f in files])
    counts = lg.filter(pl.col("reason").is_in(DUP_REASONS)).group_by("source").len().collect()
    return dict(counts.iter_rows())
