"""The keep policy shared by every dedup step: which member of a duplicate group survives.

Groups come in as a component label per row; the survivor is chosen by the policy's key, then input
order, so results are deterministic. A protected record (a person labelled it keep) is never removed
but does not displace the survivor: restoring a duplicate keeps both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from curate.layout import GROUPS
from curate.schema import turn_texts
from curate.steps.base import DECISION_SCHEMA, StepContext, StepParams

GROUP_SCHEMA: dict[str, pl.DataType] = dict(GROUPS.schema or {})
_SIMPLE = ("longest_response", "source_priority", "first")


class DedupParams(StepParams):
    keep: str = Field(
        "longest_response",
        description="Which duplicate survives: longest_response | score:<column> (highest) | "
        "source_priority (with source_priority: [...]) | first (input order).",
    )
    source_priority: list[str] = Field(
        default_factory=list, description="Sources in order of preference, for keep: source_priority."
    )

    @field_validator("keep")
    @classmethod
    def _keep_known(cls, v: str) -> str:
        if v in _SIMPLE or (v.startswith("score:") and len(v) > len("score:")):
            return v
        raise ValueError(f"keep must be one of {', '.join(_SIMPLE)} or score:<column>, got {v!r}")

    @model_validator(mode="after")
    def _priority_given(self) -> DedupParams:
        if self.keep == "source_priority" and not self.source_priority:
            raise ValueError("keep: source_priority needs a non-empty source_priority list")
        return self


def load_rows(ds: pl.LazyFrame, params: DedupParams, *extra: pl.Expr) -> pl.DataFrame:
    """``_row`` (input order), ``id``, ``source`` and the policy's ``_key`` (higher wins), plus ``extra``."""
    keep = params.keep
    if keep == "longest_response":
        key = turn_texts("assistant").list.eval(pl.element().fill_null("").str.len_chars()).list.sum()
        key = key.fill_null(0).cast(pl.Float64)
    elif keep.startswith("score:"):
        col = keep.split(":", 1)[1]
        names = ds.collect_schema().names()
        if col not in names:
            from curate.errors import ConfigError

            raise ConfigError(
                f"keep: {keep}: column {col!r} is not in the dataset; put the step that adds it "
                f"(a score.* or filter step) before this dedup step. Columns: {names}"
            )
        key = pl.col(col).cast(pl.Float64)
    elif keep == "source_priority":
        rank = {s: i for i, s in enumerate(params.source_priority)}
        key = -pl.col("source").replace_strict(rank, default=len(rank), return_dtype=pl.Int64).cast(pl.Float64)
    else:  # first
        key = pl.lit(0.0)
    return (
        ds.select(pl.col("id"), pl.col("source"), key.alias("_key"), *extra)
        .collect()
        .with_row_index("_row")
        .with_columns(pl.col("_row").cast(pl.Int64))
    )


def resolve_groups(
    rows: pl.DataFrame,
    labels: np.ndarray,
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    reason: str,
    ctx: StepContext,
    step_id: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pick a survivor per group (label shared by >= 2 rows) and return ``(decisions, groups)``.

    ``similarity(member_rows, survivor_rows)`` gives each member's similarity to its survivor.
    Protected members and those a person marked "not a duplicate" are never removed; they stay in
    ``groups`` with ``removed=False``.
    """
    n = len(rows)
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels, minlength=n) if n else np.zeros(0, np.int64)
    in_group = sizes[labels] >= 2 if n else np.zeros(0, bool)
    if not in_group.any():
        return pl.DataFrame(schema=DECISION_SCHEMA), pl.DataFrame(schema=GROUP_SCHEMA)
    protected = list(ctx.protected_ids)
    g = (
        rows.select("_row", "id", "_key")
        .with_columns(
            pl.Series("_label", labels),
            pl.col("id").is_in(protected).alias("_protected"),
            pl.col("id").is_in(list(ctx.not_duplicate_ids)).alias("_not_dup"),
            pl.col("_key").fill_null(-np.inf).fill_nan(-np.inf),
        )
        .filter(pl.Series(in_group))
        .sort(["_label", "_key", "_row"], descending=[False, True, False])
    )
    g = g.with_columns(
        pl.col("_row").first().over("_label").alias("_surv_row"),
        pl.col("id").first().over("_label").alias("survivor"),
        pl.col("_label").rank("dense").cast(pl.Int64).sub(1).alias("group_id"),
    )
    member_rows = g["_row"].to_numpy()
    surv_rows = g["_surv_row"].to_numpy()
    sims = np.ones(len(g), dtype=np.float64)
    not_self = member_rows != surv_rows
    if not_self.any():
        sims[not_self] = np.asarray(similarity(member_rows[not_self], surv_rows[not_self]), dtype=np.float64)
    g = g.with_columns(
        pl.Series("similarity", np.clip(sims, -1.0, 1.0)),
        (pl.Series(not_self) & ~pl.col("_protected") & ~pl.col("_not_dup")).alias("removed"),
        pl.lit(step_id).alias("step"),
    )
    groups = g.select(
        "group_id", "survivor", pl.col("id").alias("member"), "similarity", "removed", "step"
    ).cast(GROUP_SCHEMA)  # type: ignore[arg-type]
    decisions = (
        g.filter("removed")
        .select("id", pl.lit(reason).alias("reason"), pl.col("survivor").alias("duplicate_of"), "similarity")
        .cast(DECISION_SCHEMA)  # type: ignore[arg-type]
    )
    return decisions, groups


def write_groups(groups: pl.DataFrame, ctx: StepContext) -> dict[str, float]:
    """Save the GROUPS artifact for the browser and return the step totals (groups, removed)."""
    groups.write_parquet(ctx.artifact(GROUPS))
    return {
        "groups": float(groups["group_id"].n_unique()) if len(groups) else 0.0,
        "removed": float(groups["removed"].sum()) if len(groups) else 0.0,
    }
