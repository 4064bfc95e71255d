"""Convert HTML in turn contents to Markdown (Stack Exchange bodies, ChatGPT page scrapes)."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import Field, field_validator

from curate.pipeline.registry import register
from curate.schema import ERROR_COLUMN, ROLES, TURN, content_hash
from curate.steps.base import StepParams, Transform, map_records, with_errors
from curate.textutil import DEFAULT_MAX_CHARS, KNOWN_TAG_PATTERN, html_to_markdown, looks_like_html


@register("clean.html_to_markdown")
class HtmlToMarkdownClean(Transform):
    """Rewrite turn contents that contain HTML tags as Markdown; other turns are left untouched.

    Headings, lists, links and inline code are kept as Markdown, ``<pre><code class="language-x">``
    becomes a fenced block tagged ``x``, script/style content is dropped and ``javascript:`` links
    are kept as text (see ``curate.textutil.html_to_markdown``). A polars regex finds the rows with
    HTML; only those go through the Python converter. A record whose HTML cannot be converted
    (over ``max_chars``, nested too deeply) is quarantined with the converter's error.

    Reasons: none (a transform never rejects).
    """

    class Params(StepParams):
        roles: list[str] | None = Field(
            None, description="Roles whose turns are converted; null converts every role."
        )
        max_chars: int = Field(
            DEFAULT_MAX_CHARS, gt=0, description="Larger turn contents are quarantined, not parsed."
        )

        @field_validator("roles")
        @classmethod
        def _known_roles(cls, v: list[str] | None) -> list[str] | None:
            if v is not None:
                bad = [r for r in v if r not in ROLES]
                if bad:
                    raise ValueError(f"unknown roles {bad}; expected some of {list(ROLES)}")
            return v

    def _wanted(self, role: str) -> bool:
        return self.params.roles is None or role in self.params.roles

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        if batch.height == 0:
            return batch
        content = pl.element().struct.field("content").str.contains(KNOWN_TAG_PATTERN)
        if self.params.roles is not None:
            content = content & pl.element().struct.field("role").is_in(self.params.roles)
        mask = batch.select(pl.col("turns").list.eval(content).list.any().fill_null(False)).to_series()
        idx = mask.arg_true()
        if len(idx) == 0:
            return batch
        sub = batch[idx]
        converted_turns = 0

        def convert(row: dict[str, Any]) -> list[dict[str, str]]:
            nonlocal converted_turns
            out = []
            for t in row["turns"]:
                text = t["content"]
                if text is not None and self._wanted(t["role"]):
                    new = html_to_markdown(text, self.params.max_chars) if looks_like_html(text) else text
                    converted_turns += new != text
                    text = new
                out.append({"role": t["role"], "content": text})
            return out

        values, errors = map_records(sub, convert, pl.List(TURN))
        ok = errors.is_null()
        # A failed record keeps its turns as they were; the runner quarantines it by `_error`.
        merged = [
            (new, content_hash(new)) if new is not None else (old, h)
            for new, old, h in zip(values.to_list(), sub["turns"].to_list(), sub["content_hash"].to_list())
        ]
        new_turns = pl.Series([m[0] for m in merged], dtype=pl.List(TURN))
        hashes = pl.Series([m[1] for m in merged], dtype=pl.Utf8)
        self.report_extra["html_records"] = self.report_extra.get("html_records", 0) + int(ok.sum())
        self.report_extra["html_turns"] = self.report_extra.get("html_turns", 0) + converted_turns
        # Put the converted rows back in their places (scatter does not support list[struct]).
        pos = "__html_to_markdown_pos"
        changed = with_errors(sub.with_columns(new_turns.alias("turns"), hashes.alias("content_hash")), errors)
        rest = batch.filter(~mask)
        if ERROR_COLUMN in changed.columns and ERROR_COLUMN not in rest.columns:
            rest = rest.with_columns(pl.lit(None, dtype=pl.Utf8).alias(ERROR_COLUMN))
        out = pl.concat(
            [rest.with_columns(pl.Series(pos, (~mask).arg_true())), changed.with_columns(pl.Series(pos, idx))],
            how="vertical",
        )
        return out.sort(pos).drop(pos)
