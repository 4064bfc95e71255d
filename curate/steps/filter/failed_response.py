"""Reject conversations whose assistant side failed: missing, empty, truncated or an error message."""

from __future__ import annotations

import polars as pl
from pydantic import Field, field_validator

from curate.pipeline.registry import register
from curate.schema import turn_texts
from curate.steps.base import Filter, FilterParams

# Matched case-insensitively at the start of an assistant turn (after leading whitespace): a turn
# that *is* an error message starts with it, while an answer that quotes a traceback to explain
# it does not. Collected from failed generations in GPT4All's and ShareGPT's raw dumps.
DEFAULT_ERROR_PATTERNS: tuple[str, ...] = (
    r"error:",
    r"error \d{3}\b",
    r"traceback \(most recent call last\)",
    r"something went wrong",
    r"an error occurred",
    r"an error has occurred",
    r"there was an error",
    r"rate limit (?:exceeded|reached)",
    r"too many requests",
    r"internal server error",
    r"bad gateway",
    r"service unavailable",
    r"request failed with status code",
    r"network error",
    r"\{\s*\"error\"\s*:",
)

_TILDE_FENCE = r"(?m)^[ \t]*~~~"
# "Sincerely," / "Best regards," / "Cheers," on the line before: the last line is a signature.
_LETTER_CLOSING = r"(?m)^[^\S\n]*[\p{L}' ]{2,30},[^\S\n]*$"
# A final line that is a list item ("- x", "3. x", "a) x") or a table row is complete without a period.
_LIST_ITEM = r"^[ \t]*(?:[-*+\x{2022}]|\d{1,3}[.)]|[a-zA-Z][.)])[ \t]+\S"
_TABLE_ROW = r"^[ \t]*\|"
_URL_END = r"(?:https?://|www\.)\S+$"
# Endings that are complete without punctuation: a hashtag or @mention (social posts), a quote
# attribution ("... - Albert Einstein"), a number with a unit ("98.9°C", "5kg"), and an indented
# line (code written without fences ends on an identifier).
_COMPLETE_LAST_LINE = (
    r"(?:^|\s)[#@][\p{L}\p{N}_]+$"
    r"|(?:^|\s)[-\x{2013}\x{2014}~]\s*\p{Lu}[\p{L}.' ]{0,40}$"
    r"|\d[.,]?\d*\s?(?:°[CF]?|%|[\p{L}]{1,3})$"
    r"|^(?: {2,}|\t)\S"
)
# The text stops on something that needs a continuation: a letter, a comma, a colon, an opening
# bracket or a connector. Everything else (. ! ? ; digits, closing brackets/quotes, emoji, `)
# counts as an ending. A final ":" ("Here is the code:") promises content that never came.
_OPEN_END = r"[\p{L}\p{M},:\-\x{2013}\x{2014}(\[{/&+=<\x{3001}\x{FF0C}\x{FF1A}]$"
# Han and kana characters count as one word each: Chinese/Japanese have no spaces between words.
_CJK_CHAR = r"[\p{Han}\p{Hiragana}\p{Katakana}]"


@register("filter.failed_response")
class FailedResponseFilter(Filter):
    """Reject conversations with no, empty, truncated or error-message assistant turns (GPT4All's first cut).

    ``no_response``: no assistant turn at all (unless ``allow_prompt_only``). ``empty_response``:
    an assistant turn that is empty or whitespace only. ``error_response``: an assistant turn that
    starts with an error message (``error_patterns`` + ``extra_error_patterns``, regexes, case
    insensitive, anchored at the turn start so answers that quote a traceback are kept).
    ``truncated_response``: the final assistant turn has an odd number of ``` (or of ~~~ fence
    lines) and does not end on a sentence end, or it has at least ``min_words_to_judge`` words (whitespace tokens; each Han/kana
    character counts as one word), its last line at least ``min_last_line_words``, and it ends on
    a letter, comma, colon, dash, opening bracket or connector, unless its last line is a list
    item, a table row, an indented code line, a signature after a closing ("Sincerely,") in the
    last three lines, the text is verse (4+ lines of at most 12 words on average, half of them ending on a
    letter), or ends
    with a URL, a hashtag, a number with a unit or a quote attribution ("- Albert Einstein"). A final ":"
    counts as truncated: it announces content that never came. Endings with terminal punctuation,
    digits, closing brackets/quotes/fences, ``;`` or emoji are complete. The rule follows GPT4All's
    cleaning of its raw GPT-3.5 generations (technical report, 2023), which dropped empty,
    failed and cut-off responses; the word threshold is ours.

    Reasons: no_response, empty_response, error_response, truncated_response.
    """

    class Params(FilterParams):
        allow_prompt_only: bool = Field(
            False, description="Keep conversations that have no assistant turn (prompt-only sets)."
        )
        min_words_to_judge: int = Field(
            20,
            ge=1,
            description="Final assistant turns shorter than this (words) are never judged truncated.",
        )
        min_last_line_words: int = Field(
            5, ge=1, description="A final line shorter than this (words) is a signature or name, not a cut."
        )
        check_fences: bool = Field(
            True, description="Treat a final assistant turn with an unclosed code fence as truncated."
        )
        error_patterns: list[str] = Field(
            list(DEFAULT_ERROR_PATTERNS),
            description="Regexes (case-insensitive) that mark an assistant turn starting with them as an error.",
        )
        extra_error_patterns: list[str] = Field(
            default_factory=list, description="Regexes added to error_patterns (keeps the defaults)."
        )

        @field_validator("error_patterns", "extra_error_patterns")
        @classmethod
        def _compiles(cls, v: list[str]) -> list[str]:
            for p in v:
                try:  # patterns run in polars (Rust regex): no look-around or backreferences
                    pl.Series([""]).str.contains(p)
                except pl.exceptions.ComputeError as e:
                    raise ValueError(f"invalid regex {p!r}: {e}") from e
            return v

    def _error_regex(self) -> str | None:
        pats = [*self.params.error_patterns, *self.params.extra_error_patterns]
        if not pats:
            return None
        return r"(?i)^\s*(?:" + "|".join(f"(?:{p})" for p in pats) + ")"

    def measure(self, batch: pl.DataFrame) -> pl.DataFrame:
        p = self.params
        asst = turn_texts("assistant")
        n_asst = asst.list.len().fill_null(0)
        n_empty = asst.list.eval(pl.element().fill_null("").str.strip_chars().str.len_chars() == 0).list.sum()
        err_re = self._error_regex()
        if err_re is None:
            has_error = pl.lit(False)
        else:
            has_error = asst.list.eval(pl.element().fill_null("").str.contains(err_re)).list.any()

        last = asst.list.last().fill_null("").str.strip_chars()
        words = last.str.count_matches(r"\S+") + last.str.count_matches(_CJK_CHAR)
        last_line = last.str.extract(r"([^\n]*)$", 1).fill_null("")
        # Counting every ``` (not only fence lines) also balances inline ```x``` and the
        # "```code on the opening line" style of Stack Exchange dumps.
        fences = last.str.count_matches("```") % 2 + last.str.count_matches(_TILDE_FENCE) % 2
        # An odd count that ends on a sentence end is a stray ``` in prose, not a cut code block.
        unbalanced = (
            ((fences > 0) & ~last.str.contains(r"[.!?\x{3002}\x{FF01}\x{FF1F}][\"')\]\x{201D}\x{2019}]*$"))
            if p.check_fences
            else pl.lit(False)
        )
        tail_lines = last.str.extract(r"((?:[^\n]*\n+){0,2}[^\n]*)$", 1).fill_null("")
        n_lines = last.str.count_matches(r"(?m)\S[^\S\n]*$")
        open_lines = last.str.count_matches(r"(?m)[\p{L}\p{M}][^\S\n]*$")
        # Verse and lyrics leave most lines unpunctuated; their last line says nothing of a cut.
        verse = (n_lines >= 4) & (open_lines * 2 >= n_lines) & (words <= 12 * n_lines)
        open_end = (
            last.str.contains(_OPEN_END)
            & ~last_line.str.contains(_LIST_ITEM)
            & ~last_line.str.contains(_TABLE_ROW)
            & ~last_line.str.contains(_URL_END)
            & ~last_line.str.contains(_COMPLETE_LAST_LINE)
            & ~tail_lines.str.contains(_LETTER_CLOSING)
            & ~verse
            # Short final lines are signatures, titles and names ("Best regards,\nJohn Smith").
            & (
                last_line.str.count_matches(r"\S+") + last_line.str.count_matches(_CJK_CHAR)
                >= p.min_last_line_words
            )
        )
        truncated = (n_asst > 0) & (unbalanced | ((words >= p.min_words_to_judge) & open_end))
        return batch.with_columns(
            n_asst.cast(pl.Int32).alias(f"{self.id}.assistant_turns"),
            n_empty.fill_null(0).cast(pl.Int32).alias(f"{self.id}.empty_turns"),
            has_error.fill_null(False).alias(f"{self.id}.error"),
            truncated.fill_null(False).alias(f"{self.id}.truncated"),
            words.fill_null(0).cast(pl.Int32).alias(f"{self.id}.last_words"),
        )

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        i = self.id
        no_resp = pl.col(f"{i}.assistant_turns") == 0
        if self.params.allow_prompt_only:
            no_resp = pl.lit(False)
        return batch.select(
            pl.when(no_resp)
            .then(pl.lit("no_response"))
            .when(pl.col(f"{i}.empty_turns") > 0)
            .then(pl.lit("empty_response"))
            .when(pl.col(f"{i}.error"))
            .then(pl.lit("error_response"))
            .when(pl.col(f"{i}.truncated"))
            .then(pl.lit("truncated_response"))
            .otherwise(pl.lit(None, dtype=pl.Utf8))
            .alias("reason")
        ).to_series()
