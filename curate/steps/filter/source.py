"""Keep or drop conversations by their source and subset (filter.source)."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator

from curate import layout as L
from curate.analysis.diversity import METRICS
from curate.errors import ConfigError
from curate.steps.base import Filter, FilterParams, StepContext
from curate.steps.registry import register

_NONE = pl.lit(None, dtype=pl.Utf8)


def glob_regex(pattern: str) -> str:
    """fnmatch-style glob (``*``, ``?``, ``[seq]``, ``[!seq]``; case-sensitive) as an anchored Rust regex."""
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "[" (as fnmatch does)
                out.append(r"\[")
                continue
            body = pattern[i:j]
            neg = body[:1] in ("!", "^")
            body = body[1:] if neg else body
            body = body.replace("\\", r"\\").replace("[", r"\[")
            out.append("[" + ("^" if neg else "") + body + "]")
            i = j + 1
        else:
            out.append("\\" + ch if ch in r"\.+*?()|[]{}^$#&-~" else ch)
    out.append("$")
    return "".join(out)


def matches_any(col: str, patterns: list[str]) -> pl.Expr:
    """True where ``col`` matches one of the globs; false for null values."""
    if not patterns:
        return pl.lit(False)
    rx = "|".join(f"(?:{glob_regex(p)})" for p in patterns)
    return pl.col(col).str.contains(rx).fill_null(False)


@register("filter.source")
class SourceFilter(Filter):
    """Keep or drop conversations by source and subset, matched with fnmatch-style globs.

    ``drop_*`` lists remove what matches; non-empty ``keep_*`` lists remove what does not match.
    A null subset matches no pattern, so ``keep_subsets`` also removes rows without a subset.
    Rules are checked in ``rules()`` order (drop before keep, source before subset, then the
    measured rule). Writes no score columns.

    ``drop_if`` drops whole sources (or subsets) by the figures an earlier ``score.diversity`` step
    measured, so a decision like GPT4All's removal of P3 ("homogeneous: short, often one-word
    answers") is written as a rule and replayed, never as a hand-picked name. Each key is
    ``<metric>_below`` or ``<metric>_above`` with a metric from ``score.diversity`` (vendi, nn_dist,
    cluster_entropy, distinct_1, distinct_2, short_response_share, unique_response_share,
    response_distinct_1, response_words_p50, near_dup_rate, ...); a group is dropped when all
    conditions hold (``drop_if_match: any`` for either). What was decided, with the figures, goes to
    ``source_decisions.json`` in the step folder.

    Reasons: dropped_source, dropped_subset, not_kept_source, not_kept_subset, low_diversity_source,
    low_diversity_subset.
    """

    provides = (L.SOURCE_DECISIONS,)
    
    def needed(self) -> tuple[L.Artifact, ...]:
        return (L.DIVERSITY,) if self.params.drop_if else ()

    parallel: ClassVar[bool] = False  # drop_if decisions come from prepare(), in the main process

    class Params(FilterParams):
        keep_sources: list[str] = Field(
            default_factory=list, description="Globs; when set, only matching sources are kept."
        )
        drop_sources: list[str] = Field(default_factory=list, description="Globs of sources to drop.")
        keep_subsets: list[str] = Field(
            default_factory=list, description="Globs; when set, only matching subsets are kept."
        )
        drop_subsets: list[str] = Field(default_factory=list, description="Globs of subsets to drop.")
        drop_if: dict[str, float] = Field(
            default_factory=dict,
            description="Drop a whole source (or subset) whose diversity figures meet these conditions, "
            "e.g. {short_response_share_above: 0.5, unique_response_share_below: 0.1}.",
        )
        drop_if_match: Literal["all", "any"] = Field("all", description="Conditions that must hold.")
        drop_if_scope: Literal["source", "subset"] = Field("source", description="Judge sources or subsets.")

        @field_validator("drop_if")
        @classmethod
        def _known_metrics(cls, v: dict[str, float]) -> dict[str, float]:
            for key in v:
                metric, _, side = key.rpartition("_")
                if side not in ("below", "above") or metric not in METRICS:
                    raise ValueError(
                        f"{key!r} is not <metric>_below or <metric>_above; metrics: {', '.join(METRICS)}"
                    )
            return v

    _dropped_groups: frozenset[str] = frozenset()

    def prepare(self, ctx: StepContext) -> None:
        """Read the diversity figures and decide which groups the ``drop_if`` rule drops."""
        p = self.params
        if not p.drop_if:
            return
        path = ctx.find_artifact(L.DIVERSITY)
        if path is None:
            raise ConfigError(f"{self.id}: drop_if needs figures from a `score.diversity` step before it")
        figures = json.loads(path.read_text())
        table = figures["per_source" if p.drop_if_scope == "source" else "per_subset"]
        decisions: dict[str, Any] = {}
        for key in p.drop_if:
            metric = key.rpartition("_")[0]
            if all(row.get(metric) is None for row in table.values()):
                raise ConfigError(
                    f"{self.id}: drop_if uses {metric!r}, which score.diversity did not measure "
                    "(vendi, nn_dist and cluster_entropy need an embed step before it)"
                )
        dropped = set()
        for group, row in table.items():
            held = {}
            for key, limit in p.drop_if.items():
                metric, _, side = key.rpartition("_")
                value = row.get(metric)
                held[key] = value is not None and (value < limit if side == "below" else value > limit)
            verdict = all(held.values()) if p.drop_if_match == "all" else any(held.values())
            if verdict:
                dropped.add(group if p.drop_if_scope == "source" else group.split("/", 1)[1])
            decisions[group] = {"drop": verdict, "conditions": held,
                                "figures": {k.rpartition("_")[0]: row.get(k.rpartition("_")[0]) for k in p.drop_if}}
        self._dropped_groups = frozenset(dropped)
        self.report_extra = {"dropped_groups": float(len(dropped))}
        ctx.artifact(L.SOURCE_DECISIONS).write_text(json.dumps(
            {"scope": p.drop_if_scope, "match": p.drop_if_match, "rule": p.drop_if, "groups": decisions}, indent=1))

    def rules(self) -> list[tuple[pl.Expr, str]]:
        """(condition to reject, reason) pairs, first match wins."""
        p = self.params
        rules: list[tuple[pl.Expr, str]] = []
        if p.drop_sources:
            rules.append((matches_any("source", p.drop_sources), "dropped_source"))
        if p.drop_subsets:
            rules.append((matches_any("subset", p.drop_subsets), "dropped_subset"))
        if p.keep_sources:
            rules.append((~matches_any("source", p.keep_sources), "not_kept_source"))
        if p.keep_subsets:
            rules.append((~matches_any("subset", p.keep_subsets), "not_kept_subset"))
        if self._dropped_groups:
            col = "source" if p.drop_if_scope == "source" else "subset"
            cond = pl.col(col).is_in(sorted(self._dropped_groups)).fill_null(False)
            rules.append((cond, f"low_diversity_{col}"))
        return rules

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        rules = self.rules()
        if not rules:  # a bare literal would select one row, not one per conversation
            return pl.Series("reason", [None] * batch.height, dtype=pl.Utf8)
        expr: pl.Expr = _NONE
        for cond, reason in reversed(rules):
            expr = pl.when(cond).then(pl.lit(reason)).otherwise(expr)
        return batch.select(expr.alias("reason")).to_series()
