"""``filter.score``: remove records whose score column (from any scorer) is out of bounds."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, model_validator

from curate.errors import ConfigError
from curate.steps.base import Filter, FilterParams, StepContext
from curate.steps.registry import register


@register("filter.score")
class ScoreFilter(Filter):
    """Reject records whose score in ``column`` is below ``min_score`` or above ``max_score``.

    For the scores other steps write, e.g. ``score_llm_judge.score`` (1-10, keep ``min_score: 7``;
    AlpaGasus kept >= 4.5 of 5) or ``score_classifier.score`` (P(bad), keep ``max_score: 0.5``). A record
    with no score (null: the judge saw no answer, or kept an unparsed one) is kept unless
    ``missing: remove``. A column that is absent is a recipe error, raised before anything is removed.

    Reasons: score_below_min, score_above_max, score_missing.
    """

    class Params(FilterParams):
        column: str = Field(min_length=1, description="Score column, `<step_id>.<metric>` (e.g. score_llm_judge.score).")
        min_score: float | None = Field(None, description="Lowest score kept (inclusive); null = no lower bound.")
        max_score: float | None = Field(None, description="Highest score kept (inclusive); null = no upper bound.")
        missing: Literal["keep", "remove"] = Field("keep", description="What happens to records without a score.")

        @model_validator(mode="after")
        def _bounds(self) -> ScoreFilter.Params:
            if self.min_score is None and self.max_score is None:
                raise ValueError("give min_score, max_score or both")
            if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
                raise ValueError(f"min_score {self.min_score} is above max_score {self.max_score}")
            return self

    def prepare(self, ctx: StepContext) -> None:
        """Fail before the first record when the input has no such column (a misspelt name, a missing step)."""
        source = ctx.input_path  # the previous step's kept records
        if source is not None:
            self._check(list(pl.read_parquet_schema(source)))

    def _check(self, columns: list[str]) -> None:
        if self.params.column not in columns:
            scores = sorted(c for c in columns if "." in c)
            raise ConfigError(f"{self.id}: no column {self.params.column!r} in the input; score columns here: "
                              f"{', '.join(scores) or 'none'} (a score step must run before this filter)")

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        p = self.params
        self._check(batch.columns)
        col = pl.col(p.column).cast(pl.Float64)
        rules: list[tuple[pl.Expr, str | None]] = [(col.is_null() | col.is_nan(),
                                                    "score_missing" if p.missing == "remove" else None)]
        if p.min_score is not None:
            rules.append((col < p.min_score, "score_below_min"))
        if p.max_score is not None:
            rules.append((col > p.max_score, "score_above_max"))
        expr: pl.Expr = pl.lit(None, dtype=pl.Utf8)
        for cond, reason in reversed(rules):  # the first rule that holds wins
            expr = pl.when(cond).then(pl.lit(reason, dtype=pl.Utf8)).otherwise(expr)
        return batch.select(expr.alias("reason")).to_series()
