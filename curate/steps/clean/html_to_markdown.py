"""Convert HTML in turn contents to Markdown (Stack Exchange bodies, ChatGPT page scrapes)."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
from pydantic import Field, field_validator

from curate.schema import ERROR_COLUMN, ROLES, TURN, content_hash
from curate.steps.base import StepParams, Transform, map_records, with_errors
from curate.steps.registry import register
from curate.textutil import DEFAULT_MAX_CHARS, KNOWN_TAG_PATTERN, html_to_markdown, looks_like_html

_FENCED = re.compile(r"```.*?(?:```|$)|~~~.*?(?:~~~|$)", re.DOTALL)
_TAG = re.compile(r"</?[a-zA-Z][\w-]*(?:\s[^<>]*)?/?>")
# An answer that is a document: HTML, SVG or XML written as the content of the answer.
_DOCUMENT_START = re.compile(r"^\s*(?:<!doctype|<html\b|<svg\b|<\?xml|<form\b|<script\b|<style\b)", re.IGNORECASE)
_ASKS_MARKUP = re.compile(
    r"\b(?:html|svg|xml|markup|web ?page|css|javascript|js|jsx|tsx|react|vue|angular|script tag|form|template|tag)s?\b",
    re.IGNORECASE,
)
# What a chat UI's rendered answer looks like (ShareGPT scrapes): wrapper divs, paragraphs, highlighted code.
_RENDERED = re.compile(r'class="(?:markdown|prose|whitespace-pre|hljs|language-|request-)|^\s*<(?:div|p)\b', re.IGNORECASE)


def is_page_markup(text: str, prompt: str = "") -> bool:
    """Whether the HTML in ``text`` is page markup to convert, not content the answer was asked to write.

    Content stays as it is: HTML only inside fenced code, an answer that is a document (``<!DOCTYPE``,
    ``<html>``, ``<svg>``, ``<?xml``, ``<form>``, ``<script>``), or HTML in answer to a prompt that asks
    for markup ("Generate a valid HTML form"), unless the text carries a chat UI's rendering (wrapper
    ``<div>``/``<p>``, ``class="markdown ..."``), which is markup whatever was asked.
    """
    outside = _FENCED.sub(" ", text)
    if not _TAG.search(outside):
        return False
    if _RENDERED.search(outside):
        return True
    if _DOCUMENT_START.search(outside):
        return False
    return not (prompt and _ASKS_MARKUP.search(prompt))


@register("clean.html_to_markdown")
class HtmlToMarkdownClean(Transform):
    """Rewrite turn contents whose HTML is page markup as Markdown; HTML that is an answer's content stays.

    Page markup is a chat UI's rendered answer (ShareGPT) or a Stack Exchange body; HTML, SVG or XML
    that an answer was asked to write, or that sits in fenced code, is left as it is
    (:func:`is_page_markup`): "Generate a valid HTML form" keeps its form.

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
            prompt = ""
            for t in row["turns"]:
                text = t["content"]
                if t["role"] == "user":
                    prompt = text or ""
                if text is not None and self._wanted(t["role"]):
                    page = looks_like_html(text) and is_page_markup(text, prompt if t["role"] != "user" else "")
                    new = html_to_markdown(text, self.params.max_chars) if page else text
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
