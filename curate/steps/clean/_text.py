"""Helpers shared by the clean and filter steps: turn-level explode/rebuild and code-fence regexes.

Steps that rewrite turn contents work on a flat frame (one row per turn) so that polars
expressions run over every turn at once and Python touches only the turns that need it;
``rebuild_turns`` puts the contents back into the ``turns`` list column in the same order.
"""

from __future__ import annotations

import re

import polars as pl
import pyarrow as pa

from curate.schema import TURN, content_hash

ROW = "_row"

# A fenced code block opens/closes with a line holding only ``` or ~~~ plus an info string
# (CommonMark: the info string of a ``` fence has no backtick, so "```x``` text" is inline code).
FENCE_LINE = r"(?m)^[ \t]*(?:```[^`\n]*|~~~[^\n]*)$"
# Closed fenced blocks, then an unclosed one running to the end of the text (Rust regex syntax).
CLOSED_FENCE_BLOCK = r"(?s)(?:```.*?```|~~~.*?~~~)"
OPEN_FENCE_TAIL = r"(?s)(?:```|~~~).*$"


def explode_turns(batch: pl.DataFrame) -> pl.DataFrame:
    """One row per turn: ``_row`` (index of the conversation in ``batch``), ``role``, ``content``."""
    lens = batch["turns"].list.len().fill_null(0)
    rows = (
        pl.Series(ROW, range(batch.height), dtype=pl.UInt32)
        .repeat_by(lens)
        .explode(empty_as_null=False, keep_nulls=False)
    )
    flat = batch["turns"].explode(empty_as_null=False, keep_nulls=False)
    return pl.DataFrame({ROW: rows}).with_columns(flat.struct.unnest())


def rebuild_turns(batch: pl.DataFrame, flat: pl.DataFrame) -> pl.Series:
    """The ``turns`` column of ``batch`` rebuilt from ``flat`` (same turn order, contents replaced).

    Null ``turns`` stay null and empty lists stay empty.
    """
    turns = batch["turns"]
    lens = turns.list.len().fill_null(0).cast(pl.Int64).to_list()
    offsets = [0]
    for n in lens:
        offsets.append(offsets[-1] + n)
    values = flat.select(pl.struct(pl.col("role"), pl.col("content")).cast(TURN)).to_series().to_arrow()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    mask = pa.array(turns.is_null().to_list(), type=pa.bool_()) if turns.null_count() else None
    arr = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values, mask=mask)
    return pl.Series("turns", pl.from_arrow(arr), dtype=pl.List(TURN))


def rehash(batch: pl.DataFrame, changed: pl.Series) -> pl.Series:
    """``content_hash`` recomputed for the rows where ``changed`` is true; other rows keep theirs."""
    old = batch["content_hash"].to_list()
    turns = batch["turns"].to_list()
    out = [
        content_hash(t) if c and t is not None else h
        for h, t, c in zip(old, turns, changed.fill_null(False).to_list())
    ]
    return pl.Series("content_hash", out, dtype=pl.Utf8)


def strip_code_expr(text: pl.Expr) -> pl.Expr:
    """Text with fenced code blocks (closed or left open at the end) replaced by a newline."""
    return text.str.replace_all(CLOSED_FENCE_BLOCK, "\n").str.replace(OPEN_FENCE_TAIL, "\n")


# A verse line may end on a letter or a comma: songs and poems leave most lines open (a semicolon ends code).
_OPEN_LINE_END = re.compile(r"[^\W\d_]$|,$")


# A song's section labels: "(Chorus)", "[Verse 2]", "Chorus:", "Refrain", "Outro".
_SECTION_LABEL = re.compile(
    r"^\W*(?:pre-?chorus|chorus|verse|refrain|bridge|hook|intro|outro|stanza|coda)\b[\w\s]{0,12}\W*$", re.IGNORECASE
)


def is_verse(text: str) -> bool:
    """Song- or poem-like: 4+ non-empty lines, at most 12 words a line on average, and half of the
    lines open or a song section label ("(Chorus)", "[Verse 2]") among them.

    filter.repetition gives verse its own limits (a chorus repeats by design) and
    filter.failed_response never reads an open last line of verse as a cut.
    """
    lines = [ln.rstrip() for ln in text.split("\n") if ln.strip()]
    if len(lines) < 4:
        return False
    words = sum(len(ln.split()) for ln in lines)
    if words > 12 * len(lines):
        return False
    open_lines = sum(1 for ln in lines if _OPEN_LINE_END.search(ln))
    return 2 * open_lines >= len(lines) or any(_SECTION_LABEL.match(ln) for ln in lines)
