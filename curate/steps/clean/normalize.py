"""Unicode and whitespace normalisation of turn contents (clean.normalize)."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
from pydantic import Field

from curate.schema import ERROR_COLUMN
from curate.steps.base import StepParams, Transform
from curate.steps.clean._text import FENCE_LINE, explode_turns, rebuild_turns, rehash
from curate.steps.registry import register

# Cheap pre-check for mojibake: UTF-8 bytes decoded as Latin-1/cp1252 leave these marks
# ("Ã©" for é, "â€™" for ’, "Â " for NBSP, "ï»¿" for a BOM, "Ð¿" for Cyrillic п) or a U+FFFD.
# Only turns that match go through ftfy, which decides for itself whether the text is broken.
MOJIBAKE_MARKERS = r"Ã|Â|â€|ï»¿|\x{FFFD}|[ÐÑØÙ][\x{80}-\x{BF}]"
# Invisible characters with no meaning in training text. ZWNJ/ZWJ (U+200C/U+200D) are kept:
# Persian and Indic scripts and emoji sequences (family, skin tone) need them.
ZERO_WIDTH = r"[\x{200B}\x{2060}\x{FEFF}\x{180E}]"
# C0 and C1 controls except \t and \n (\r is turned into \n first).
CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\x{80}-\x{9F}]"
# Unicode spaces that become a plain space. U+3000 (ideographic space) is kept: CJK typesetting.
UNICODE_SPACES = r"[\x{00A0}\x{2000}-\x{200A}\x{202F}\x{205F}]"

# Python twins of the polars whitespace rules, used only for turns with fenced code blocks.
_PY_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)
_PY_INNER_RUN = re.compile(r"(\S)[ \t]{2,}")
_PY_FENCE = re.compile(r"^[ \t]*(?:```[^`\n]*|~~~[^\n]*)$")


def _ftfy_config() -> Any:
    import ftfy

    # Only encoding repair: quotes, ligatures, full-width CJK punctuation, HTML entities
    # and line breaks of normal text are left exactly as they are.
    return ftfy.TextFixerConfig(
        unescape_html=False,
        remove_terminal_escapes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        remove_control_chars=False,
        normalization=None,
        explain=False,
    )


_FTFY_CONFIG: Any = None


def fix_mojibake(text: str) -> str:
    """Repair text that was UTF-8 decoded with the wrong codec (ftfy, encoding fixes only)."""
    global _FTFY_CONFIG
    import ftfy

    if _FTFY_CONFIG is None:
        _FTFY_CONFIG = _ftfy_config()
    return str(ftfy.fix_text(text, _FTFY_CONFIG))


def _collapse_blank_lines(text: str, max_blank_lines: int) -> str:
    return re.sub(rf"\n{{{max_blank_lines + 2},}}", "\n" * (max_blank_lines + 1), text)


def normalize_whitespace_fenced(text: str, max_blank_lines: int) -> str:
    """Whitespace rules of clean.normalize for a text with fenced code: code lines stay byte-exact."""
    out: list[str] = []
    prose: list[str] = []
    in_fence = False

    def flush(followed: bool) -> None:
        if prose:
            chunk = "\n".join(prose)
            chunk = _PY_INNER_RUN.sub(r"\1 ", _PY_TRAILING.sub("", chunk))
            # Count the newlines that join this chunk to the fence lines around it.
            pre, post = ("\n" if out else ""), ("\n" if followed else "")
            chunk = _collapse_blank_lines(pre + chunk + post, max_blank_lines)
            out.append(chunk[len(pre) : len(chunk) - len(post)])
            prose.clear()

    for line in text.split("\n"):
        if _PY_FENCE.match(line):
            if not in_fence:
                flush(followed=True)
            out.append(line.rstrip(" \t"))
            in_fence = not in_fence
        elif in_fence:
            out.append(line)
        else:
            prose.append(line)
    flush(followed=False)
    return "\n".join(out).strip()


@register("clean.normalize")
class NormalizeClean(Transform):
    """Normalise turn text: NFC, whitespace, control and zero-width characters, mojibake (ftfy).

    Changes, each switchable: ``\\r\\n``/``\\r`` become ``\\n``; mojibake is repaired with ftfy
    (encoding fixes only) on turns a polars pre-check flags; Unicode NFC; zero-width characters
    U+200B, U+2060, U+FEFF, U+180E are removed (ZWJ/ZWNJ are kept for Indic/Persian scripts and
    emoji sequences); C0/C1 control characters except tab and newline are removed; Unicode spaces
    (NBSP, U+2000..U+200A, U+202F, U+205F) become a space, trailing spaces go, runs of 2+ spaces or
    tabs inside a line become one space (leading indentation is kept), runs of more than
    ``max_blank_lines`` blank lines are collapsed, and each turn is stripped. Lines inside fenced
    code blocks (``` or ~~~) are left byte-exact. ``content_hash`` is recomputed for changed rows.

    Reasons: none (a transform never rejects; a turn that fails to normalise quarantines its record).
    """

    class Params(StepParams):
        unicode_nfc: bool = Field(True, description="Apply Unicode NFC composition.")
        whitespace: bool = Field(
            True, description="Normalise newlines, spaces and blank lines; strip each turn."
        )
        max_blank_lines: int = Field(
            1, ge=0, description="Longest run of blank lines kept outside code blocks (lines)."
        )
        control_chars: bool = Field(True, description="Remove C0/C1 control characters except \\t and \\n.")
        zero_width: bool = Field(True, description="Remove zero-width spaces, word joiners and BOMs.")
        fix_mojibake: bool = Field(True, description="Repair mojibake with ftfy on turns that look broken.")

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        if batch.height == 0:
            return batch
        p = self.params
        flat = explode_turns(batch)
        before = flat["content"]
        c = pl.col("content")
        if p.whitespace:
            flat = flat.with_columns(c.str.replace_all("\r\n?", "\n"))

        errors: list[str | None] = [None] * flat.height
        if p.fix_mojibake:
            suspect = flat.select(c.str.contains(MOJIBAKE_MARKERS).fill_null(False)).to_series()
            idx = suspect.arg_true().to_list()
            if idx:
                contents = flat["content"].to_list()
                fixed = 0
                for i in idx:
                    try:
                        new = fix_mojibake(contents[i])
                    except Exception as e:  # noqa: BLE001 - one bad turn quarantines its record only
                        errors[i] = f"{type(e).__name__}: {e}"[:500]
                        continue
                    fixed += new != contents[i]
                    contents[i] = new
                flat = flat.with_columns(pl.Series("content", contents, dtype=pl.Utf8))
                self._count("mojibake_fixed_turns", fixed)

        if p.unicode_nfc:
            flat = flat.with_columns(c.str.normalize("NFC"))
        if p.zero_width:
            flat = flat.with_columns(c.str.replace_all(ZERO_WIDTH, ""))
        if p.control_chars:
            flat = flat.with_columns(c.str.replace_all(CONTROL, ""))
        if p.whitespace:
            flat = self._whitespace(flat, errors)

        changed_turn = (flat["content"] != before).fill_null(False) | (
            flat["content"].is_null() != before.is_null()
        )
        self._count("normalize_changed_turns", int(changed_turn.sum()))
        row_changed = (
            pl.DataFrame({"r": flat["_row"], "c": changed_turn}).group_by("r").agg(pl.col("c").any())
        )
        changed = pl.Series([False] * batch.height)
        if row_changed.height:
            changed = changed.scatter(row_changed["r"].cast(pl.Int64), row_changed["c"])
        out = batch.with_columns(rebuild_turns(batch, flat))
        out = out.with_columns(rehash(out, changed))
        return self._attach_errors(out, flat["_row"], errors)

    def _whitespace(self, flat: pl.DataFrame, errors: list[str | None]) -> pl.DataFrame:
        c = pl.col("content")
        nb = self.params.max_blank_lines
        flat = flat.with_columns(c.str.replace_all(UNICODE_SPACES, " "))
        fenced = flat.select(c.str.contains(FENCE_LINE).fill_null(False)).to_series()
        prose = (
            c.str.replace_all(r"(?m)[ \t]+$", "")
            .str.replace_all(r"(\S)[ \t]{2,}", "${1} ")
            .str.replace_all(rf"\n{{{nb + 2},}}", "\n" * (nb + 1))
            .str.strip_chars()
        )
        flat = flat.with_columns(pl.when(pl.Series(fenced)).then(c).otherwise(prose).alias("content"))
        idx = fenced.arg_true().to_list()
        if idx:
            contents = flat["content"].to_list()
            for i in idx:
                try:
                    contents[i] = normalize_whitespace_fenced(contents[i], nb)
                except Exception as e:  # noqa: BLE001 - one bad turn quarantines its record only
                    errors[i] = errors[i] or f"{type(e).__name__}: {e}"[:500]
            flat = flat.with_columns(pl.Series("content", contents, dtype=pl.Utf8))
        return flat

    def _count(self, key: str, n: int) -> None:
        self.report_extra[key] = self.report_extra.get(key, 0) + n

    @staticmethod
    def _attach_errors(batch: pl.DataFrame, rows: pl.Series, errors: list[str | None]) -> pl.DataFrame:
        if all(e is None for e in errors):
            return batch
        per_row: list[str | None] = [None] * batch.height
        for r, e in zip(rows.to_list(), errors):
            if e is not None and per_row[r] is None:
                per_row[r] = e
        new = pl.Series(ERROR_COLUMN, per_row, dtype=pl.Utf8)
        if ERROR_COLUMN in batch.columns:
            new = batch[ERROR_COLUMN].fill_null(new)
        return batch.with_columns(new.alias(ERROR_COLUMN))
