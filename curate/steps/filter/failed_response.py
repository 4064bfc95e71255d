"""Reject conversations whose assistant side failed: missing, empty, truncated or an error message."""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
import regex as re
from pydantic import Field, field_validator

from curate.schema import turn_texts
from curate.steps.base import Filter, FilterParams
from curate.steps.clean._text import is_verse
from curate.steps.registry import register

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

_TILDE_FENCE = re.compile(r"(?m)^[ \t]*~~~")
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026][\"'\)\]\u201d\u2019*_]*$")
# The text stops on a sign that needs a continuation: a comma, a colon ("Here is the code:"
# promises content that never came), an opening bracket, a connector or a hanging dash.
_OPEN_PUNCT = re.compile(r"(?:[,:(\[{&+=/\u3001\uff0c\uff1a]|\s[-\u2013\u2014])$")
# Words an English sentence cannot end on: articles, most prepositions and conjunctions,
# possessive determiners, subject pronouns, "is"-forms, and verbs that announce a list. A
# stranded preposition can end a sentence ("what it is made of"), but the final sentence of an
# answer that also lacks its full stop almost never does; ones that often end a sentence
# ("in", "on", "up", "about", "for", "with") are left out.
CONTINUATION_WORDS = frozenset(
    ["a", "an", "the", "of", "to", "at", "by", "from", "into", "onto", "as", "than", "via", "per", "towards", "toward", "through", "between", "among", "upon", "within", "during", "including", "and", "or", "but", "nor", "because", "although", "whereas", "if", "unless", "that", "which", "whose", "is", "are", "was", "were", "been", "being", "my", "your", "their", "our", "its", "these", "such", "very", "i", "he", "she", "we", "they", "involves", "include", "includes", "contains", "requires", "lists", "means", "consists", "following"]
)
_LAST_WORD = re.compile(r"(?:^|\s)([^\W\d_][\w'\u2019-]*)[\"'\u201d\u2019*_]*$")
# "... so you" / "... and it": a conjunction and the subject of a clause that never came.
_OPEN_SUBJECT = re.compile(r"(?i)(?:^|\s)(?:so|if|and|but|when|because|that|while|or|unless|until)\s+(?:you|it)$")
_KEY_COMBO = re.compile(r"[+\-/*=&|]\s*\p{Lu}$")  # "Ctrl + Shift + I"
# ":(" / ":'(" / ";-(" end a chat message; they are not an opening bracket.
_EMOTICON = re.compile(r"[:;=]['\u2019-]?[(\[{/\\|]$")
# A short fragment after a sentence end or a dash on the same line ("... the list. Then we
# reverse", "... the organic section - your body"): a new clause that stopped after one to three
# words. It must open on a word that cannot start a finished clause that short (a conjunction,
# article, preposition or determiner): "Hope this helps" and "Good luck" are finished.
_FRAGMENT = re.compile(r"(\S+)(?:[.!?]|\s[-\u2013\u2014])\s+([\w'\u2019-]+(?:\s+[\w'\u2019-]+){0,2})$")
FRAGMENT_STARTERS = frozenset(
    ["while", "when", "if", "although", "though", "because", "since", "after", "before", "once", "unless", "whereas", "as", "then", "and", "but", "or", "the", "a", "an", "in", "on", "at", "for", "to", "with", "from", "by", "of", "this", "these", "those", "its", "their", "our", "your", "my", "his"]
)
_ABBREV = frozenset(["e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st", "no", "fig", "eq", "approx", "ca", "cf", "al", "jr", "sr", "inc", "ltd", "co"])
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+\u2022]|\d{1,3}[.)]|[a-zA-Z][.)])[ \t]+\S")
_TABLE_ROW = re.compile(r"^[ \t]*\|")
_URL_END = re.compile(r"(?:https?://|www\.)\S+$|<https?://\S+>$")
# "Sincerely," / "Best regards," / "Cheers," as the last line, or the line before a name.
_LETTER_CLOSING = re.compile(r"(?m)^[^\S\n]*[\w' ]{2,30},[^\S\n]*$")
_CONTINUE_ASK = re.compile(
    r"^\W*(?:please\s+)?(?:continue|go on|keep going|carry on|more|finish(?: it| that| the \w+)?|"
    r"(?:you )?(?:got|were) cut off|resume)\b[\s\W]*(?:please)?\W*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"\S+")
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def word_count(text: str) -> int:
    """Whitespace tokens, with each Han/kana character counted as one word."""
    return len(_WORD.findall(text)) + len(_CJK_CHAR.findall(text))


def cut_kind(text: str, min_words: int = 8) -> str | None:
    """How an assistant turn looks cut off, or None when it looks complete.

    ``open_fence``: a code fence is left open (and the text does not end on a sentence end).
    ``open_punct``: it ends on a comma, colon, opening bracket, connector or hanging dash.
    ``open_word``: its last word cannot end a sentence (``CONTINUATION_WORDS``).
    ``fragment``: its last line ends on one to three words of a new sentence ("... list. Then we reverse").
    Complete without a full stop: lists, tables, code, equations, titles, names, links, verse,
    signatures, short answers (fewer than ``min_words`` words are only checked for open fences).
    """
    t = text.strip()
    if not t:
        return None
    # Counting every ``` (not only fence lines) also balances inline ```x``` and the
    # "```code on the opening line" style of Stack Exchange dumps.
    fences = t.count("```") % 2 + len(_TILDE_FENCE.findall(t)) % 2
    # A bare fence as the very end closes a block (a stray opener earlier); it opens nothing.
    if fences and not _SENTENCE_END.search(t) and not t.endswith(("\n```", "\n~~~")):
        return "open_fence"
    if word_count(t) < min_words or _SENTENCE_END.search(t):
        return None
    last_line = t.rsplit("\n", 1)[-1]
    if _URL_END.search(last_line):
        return None
    tail = "\n".join(t.rsplit("\n", 3)[-3:])
    if _LETTER_CLOSING.search(tail) and not t.endswith(":"):
        return None  # a signature after "Best regards,"
    verse = is_verse(t)
    if _OPEN_PUNCT.search(t) and not _EMOTICON.search(t):
        if t.endswith(",") and verse:
            return None
        if _TABLE_ROW.search(last_line) and not t.endswith((",", ":")):
            return None
        return "open_punct"
    m = _LAST_WORD.search(t)
    if m and m.group(1).lower() in CONTINUATION_WORDS and not _KEY_COMBO.search(t):
        return "open_word"
    if _OPEN_SUBJECT.search(t):
        return "open_word"
    if not verse and not _LIST_ITEM.search(last_line) and not _TABLE_ROW.search(last_line):
        f = _FRAGMENT.search(last_line)
        if (
            f
            and f.group(1).rstrip(".").lower().lstrip("(") not in _ABBREV
            and f.group(2).split()[0].lower() in FRAGMENT_STARTERS
            and _LAST_WORD.search(f.group(2))
        ):
            return "fragment"
    return None


def asks_to_continue(text: str) -> bool:
    """A user turn that only asks the assistant to go on ("continue", "go on please")."""
    return bool(_CONTINUE_ASK.match(text.strip())) if len(text) < 80 else False


@register("filter.failed_response")
class FailedResponseFilter(Filter):
    """Reject conversations whose final answer failed: missing, empty, an error message, or cut off (GPT4All's first cut).

    ``no_response``: no assistant turn at all (unless ``allow_prompt_only``). ``empty_response``:
    an assistant turn that is empty or whitespace only. ``error_response``: an assistant turn that
    starts with an error message (``error_patterns`` + ``extra_error_patterns``, regexes, case
    insensitive, anchored at the turn start so answers that quote a traceback are kept).

    ``truncated_response``: the final assistant turn looks cut off (:func:`cut_kind`, written to
    ``<id>.cut``): a code fence left open, a final comma, colon, opening bracket or hanging dash,
    a last word no English sentence ends on ("... the importance of"), or a new sentence that
    stops after one to three words ("... of the list. Then we reverse"); or the record's meta says
    the generation stopped at its token limit (``finish_reason: length``). A missing full stop
    alone is not a cut: lists, tables, code, equations, titles, names, links, verse and complete
    sentences without a period are kept (on labelled real answers, most unpunctuated endings were
    complete). The rule follows GPT4All's cleaning of its raw GPT-3.5 generations (technical
    report, 2023), which dropped empty, failed and cut-off responses; the word lists are ours.

    Earlier assistant turns are judged apart: one that looks cut, or that the user answers with
    "continue" / "go on", flags the conversation ``truncated_earlier_turn`` (the answer was
    finished in the next turn); list it in ``remove_flags`` to remove such conversations.

    Reasons: no_response, empty_response, error_response, truncated_response.
    Flags: truncated_earlier_turn.
    """

    class Params(FilterParams):
        allow_prompt_only: bool = Field(
            False, description="Keep conversations that have no assistant turn (prompt-only sets)."
        )
        min_words_to_judge: int = Field(
            8,
            ge=1,
            description="Assistant turns shorter than this (words) are only checked for an open code fence.",
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
        remove_flags: list[Literal["truncated_earlier_turn"]] = Field(
            default_factory=list, description="Flags that remove the conversation instead of marking it."
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

    params: Params

    def _error_regex(self) -> str | None:
        pats = [*self.params.error_patterns, *self.params.extra_error_patterns]
        if not pats:
            return None
        return r"(?i)^\s*(?:" + "|".join(f"(?:{p})" for p in pats) + ")"

    def _cuts(self, turns: list[dict[str, Any]] | None) -> dict[str, Any]:
        """The final assistant turn's cut kind and whether an earlier assistant turn was cut."""
        p = self.params
        asst = [i for i, t in enumerate(turns or []) if t["role"] == "assistant"]
        if not asst or turns is None:
            return {"cut": None, "earlier": False}
        final = turns[asst[-1]]["content"] or ""
        cut = cut_kind(final, p.min_words_to_judge)
        if cut == "open_fence" and not p.check_fences:
            cut = None
        earlier = False
        for i in asst[:-1]:
            nxt = next((t for t in turns[i + 1 :] if t["role"] == "user"), None)
            if cut_kind(turns[i]["content"] or "", p.min_words_to_judge) is not None or (
                nxt is not None and asks_to_continue(nxt["content"] or "")
            ):
                earlier = True
                break
        return {"cut": cut, "earlier": earlier}

    def measure(self, batch: pl.DataFrame) -> pl.DataFrame:
        asst = turn_texts("assistant")
        n_asst = asst.list.len().fill_null(0)
        n_empty = asst.list.eval(pl.element().fill_null("").str.strip_chars().str.len_chars() == 0).list.sum()
        err_re = self._error_regex()
        if err_re is None:
            has_error = pl.lit(False)
        else:
            has_error = asst.list.eval(pl.element().fill_null("").str.contains(err_re)).list.any()
        last = asst.list.last().fill_null("").str.strip_chars()
        words = last.str.count_matches(r"\S+") + last.str.count_matches(r"[\p{Han}\p{Hiragana}\p{Katakana}]")
        cuts = pl.Series(
            [self._cuts(t) for t in batch["turns"].to_list()],
            dtype=pl.Struct({"cut": pl.Utf8, "earlier": pl.Boolean}),
        )
        at_limit = pl.col("meta").fill_null("").str.contains(r'"finish_reason"\s*:\s*"length"')
        cut = pl.when(at_limit & cuts.struct.field("cut").is_null()).then(pl.lit("token_limit")).otherwise(
            cuts.struct.field("cut")
        )
        return batch.with_columns(
            n_asst.cast(pl.Int32).alias(f"{self.id}.assistant_turns"),
            n_empty.fill_null(0).cast(pl.Int32).alias(f"{self.id}.empty_turns"),
            has_error.fill_null(False).alias(f"{self.id}.error"),
            cut.alias(f"{self.id}.cut"),
            ((n_asst > 0) & cut.is_not_null()).fill_null(False).alias(f"{self.id}.truncated"),
            cuts.struct.field("earlier").alias(f"{self.id}.earlier_cut"),
            words.fill_null(0).cast(pl.Int32).alias(f"{self.id}.last_words"),
        )

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        i = self.id
        no_resp = pl.col(f"{i}.assistant_turns") == 0
        if self.params.allow_prompt_only:
            no_resp = pl.lit(False)
        earlier = pl.col(f"{i}.earlier_cut") & pl.lit("truncated_earlier_turn" in self.params.remove_flags)
        return batch.select(
            pl.when(no_resp)
            .then(pl.lit("no_response"))
            .when(pl.col(f"{i}.empty_turns") > 0)
            .then(pl.lit("empty_response"))
            .when(pl.col(f"{i}.error"))
            .then(pl.lit("error_response"))
            .when(pl.col(f"{i}.truncated"))
            .then(pl.lit("truncated_response"))
            .when(earlier)
            .then(pl.lit("truncated_earlier_turn"))
            .otherwise(pl.lit(None, dtype=pl.Utf8))
            .alias("reason")
        ).to_series()

    def flag_reason(self, batch: pl.DataFrame) -> pl.Series:
        return batch.select(
            pl.when(pl.col(f"{self.id}.earlier_cut")).then(pl.lit("truncated_earlier_turn")).alias("flag")
        ).to_series()
