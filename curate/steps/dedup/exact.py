"""Exact deduplication on a normalised content hash."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import layout as L
from curate.steps.base import Dedup, StepContext
from curate.steps.dedup.keep import DedupParams, load_rows, resolve_groups, write_groups
from curate.steps.embed.texts import text_expr
from curate.steps.registry import register


def normalized(expr: pl.Expr) -> pl.Expr:
    """Polars twin of ``curate.schema.normalize_for_hash``: collapse whitespace, strip, lowercase."""
    return expr.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()


@register("dedup.exact")
class ExactDedup(Dedup):
    """Keep one record per identical normalised text (case and whitespace ignored).

    Scope ``conversation`` uses the schema's ``content_hash`` (all turns with roles); ``prompt``
    (alias ``first_user``) the first user turn; ``user`` all user turns. Records whose scoped text
    is empty are never grouped. Which one survives follows the shared keep policy.

    Reasons: exact_dup.
    """

    provides = (L.GROUPS,)

    class Params(DedupParams):
        scope: Literal["conversation", "prompt", "first_user", "user"] = Field(
            "conversation", description="What must be identical: conversation, prompt (first user turn) or user."
        )

    def decide(self, ds: pl.LazyFrame, ctx: StepContext) -> pl.DataFrame:
        p = self.params
        if p.scope == "conversation":
            key = pl.col("content_hash")
        else:
            key = normalized(text_expr(p.scope))
        rows = load_rows(ds, p, key.alias("_hash"))
        rows = rows.with_columns(
            pl.when(pl.col("_hash").fill_null("") == "")
            .then(pl.col("_row"))
            .otherwise(pl.col("_row").min().over("_hash"))
            .alias("_label")
        )
        labels = rows["_label"].to_numpy()
        decisions, groups = resolve_groups(
            rows, labels, lambda m, s: np.ones(len(m)), reason="exact_dup", ctx=ctx, step_id=self.id
        )
        self.report_extra.update(write_groups(groups, ctx))
        return decisions
