"""Reject conversations whose assistant refuses or hides behind an AI disclaimer (filter.refusal)."""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Literal

import polars as pl
import yaml
from pydantic import Field, field_validator, model_validator

from curate.pipeline.registry import register
from curate.schema import turn_texts
from curate.steps.base import Filter, FilterParams

_FAMILY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Characters that are special in polars' (Rust) regex syntax and must be escaped in a literal.
_RUST_META = set(r"\.+*?()|[]{}^$#&-~")


@functools.lru_cache(maxsize=1)
def default_phrases() -> dict[str, tuple[str, ...]]:
    """The shipped phrase families (``refusal_phrases.yaml``), in file order."""
    text = resources.files("curate.steps.filter").joinpath("refusal_phrases.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {fam: tuple(str(p) for p in phrases) for fam, phrases in data.items()}


def fold(text: pl.Expr) -> pl.Expr:
    """Lowercase and fold typographic apostrophes, so "I’m" matches a phrase written "i'm"."""
    return text.str.to_lowercase().str.replace_all("[\u2019\u2018\u02bc]", "'")


def phrase_regex(phrases: list[str] | tuple[str, ...]) -> str:
    """One alternation for a family: literal phrases, any whitespace run matching any whitespace."""
    alts = []
    for p in phrases:
        words = p.lower().replace("\u2019", "'").split()
        alts.append(r"\s+".join("".join("\\" + ch if ch in _RUST_META else ch for ch in w) for w in words))
    return "(?:" + "|".join(alts) + ")"


@register("filter.refusal")
class RefusalFilter(Filter):
    """Reject conversations whose assistant turns contain a refusal or AI-disclaimer phrase; the reason names its family.

    Phrases ship in ``refusal_phrases.yaml`` (families ai_disclaimer, cannot_comply, no_opinion,
    knowledge_cutoff, policy), collected from the lists used to build the "unfiltered" Vicuna and
    WizardLM sets and GPT4All's cleaning notes. Matching is a case-insensitive substring test on
    assistant turns only (``scope``), one polars regex per family; the first family that matches,
    in file order then ``extra_phrases`` order, is written to ``<id>.family`` and names the reason.

    Reasons: refusal_ai_disclaimer, refusal_cannot_comply, refusal_no_opinion,
    refusal_knowledge_cutoff, refusal_policy, and refusal_<family> for each family added in
    ``extra_phrases``.
    """

    class Params(FilterParams):
        scope: Literal["any_assistant", "first_assistant", "last_assistant"] = Field(
            "any_assistant", description="Which assistant turns are searched."
        )
        extra_phrases: dict[str, list[str]] = Field(
            default_factory=dict,
            description="More phrases per family ({family: [phrases]}); new families are allowed.",
        )
        disable_families: list[str] = Field(
            default_factory=list, description="Families (shipped or extra) that are not checked."
        )

        @field_validator("extra_phrases")
        @classmethod
        def _names(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
            for fam, phrases in v.items():
                if not _FAMILY_NAME.match(fam):
                    raise ValueError(f"family {fam!r} must be lowercase snake_case (it becomes a reason)")
                if any(not p.strip() for p in phrases):
                    raise ValueError(f"family {fam!r} has an empty phrase (it would match everything)")
            return v

        @model_validator(mode="after")
        def _known_families(self) -> RefusalFilter.Params:
            known = [*default_phrases(), *self.extra_phrases]
            unknown = [f for f in self.disable_families if f not in known]
            if unknown:
                raise ValueError(f"disable_families names unknown families {unknown}; known: {known}")
            return self

    def families(self) -> dict[str, str]:
        """Family name -> regex, in match order."""
        merged: dict[str, list[str]] = {f: list(p) for f, p in default_phrases().items()}
        for fam, phrases in self.params.extra_phrases.items():
            merged.setdefault(fam, []).extend(phrases)
        return {f: phrase_regex(p) for f, p in merged.items() if f not in self.params.disable_families and p}

    def measure(self, batch: pl.DataFrame) -> pl.DataFrame:
        asst = turn_texts("assistant")
        scope = self.params.scope
        if scope == "first_assistant":
            text = asst.list.first()
        elif scope == "last_assistant":
            text = asst.list.last()
        else:
            text = asst.list.join("\n")
        text = fold(text.fill_null(""))
        family: pl.Expr = pl.lit(None, dtype=pl.Utf8)
        for fam, rx in reversed(list(self.families().items())):
            family = pl.when(text.str.contains(rx)).then(pl.lit(fam)).otherwise(family)
        return batch.with_columns(family.alias(f"{self.id}.family"))

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        fam = pl.col(f"{self.id}.family")
        return batch.select(
            pl.when(fam.is_not_null()).then(pl.lit("refusal_") + fam).alias("reason")
        ).to_series()
