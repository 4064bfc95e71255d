"""Gopher repetition metrics and degenerate-loop detection on assistant text (filter.repetition)."""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate.schema import ERROR_COLUMN
from curate.steps.base import Filter, FilterParams, map_records, with_errors
from curate.steps.clean._text import is_verse, strip_code_expr
from curate.steps.registry import register

TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
# A repeated passage is a run of words each inside a 10-gram that occurs again in the same text.
SPAN_N = 10
METRICS: tuple[str, ...] = (
    "dup_line_frac",
    "dup_para_frac",
    "dup_line_char_frac",
    "dup_para_char_frac",
    *(f"top_{n}gram_char_frac" for n in TOP_NS),
    *(f"dup_{n}gram_char_frac" for n in DUP_NS),
    "dup_span_words",
    "dup_span_frac",
)
# Measured on every text, whatever its length (see ``structure``).
STRUCTURE: tuple[str, ...] = (
    "verse", "line_run", "line_repeats", "para_repeats", "para_dup_pct", "verse_line_run", "verse_para_repeats"
)
_RESULT = pl.Struct(
    {
        "words": pl.Int32,
        "degenerate_repeats": pl.Int32,
        **{m: pl.Int32 for m in STRUCTURE},
        **{m: pl.Float64 for m in METRICS},
    }
)
_PARA_SPLIT = re.compile(r"\n\s*\n")
# A line or loop unit counts only if it holds something besides digits and punctuation:
# "}" / "});" / "----" / "0, 0, 0" repeat legitimately in code, tables and data.
_CONTENT = re.compile(r"[^\W\d_]|[^\x00-\x7f\w\s]")


def _dup_fracs(parts: list[str]) -> tuple[float, float]:
    """(fraction of parts that repeat an earlier part, fraction of their characters)."""
    if not parts:
        return 0.0, 0.0
    seen: set[str] = set()
    dup = dup_chars = total_chars = 0
    for p in parts:
        total_chars += len(p)
        if p in seen:
            dup += 1
            dup_chars += len(p)
        else:
            seen.add(p)
    return dup / len(parts), (dup_chars / total_chars if total_chars else 0.0)


def _windows(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse index and counts of the distinct word n-grams (exact, no hashing)."""
    win = np.lib.stride_tricks.sliding_window_view(ids, n)
    keys = np.ascontiguousarray(win).view(np.dtype((np.void, ids.itemsize * n))).ravel()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return inverse.ravel(), counts


def gopher_metrics(text: str) -> dict[str, float]:
    """Gopher (Rae et al. 2021, table A1) repetition fractions of one text.

    Lines are non-empty lines holding a letter (so ``}`` and rulers never count); paragraphs are
    split on blank lines. Character fractions count word characters (whitespace excluded): top
    n-gram = characters of the most frequent n-gram times its count; duplicate n-gram = characters
    of words covered by any n-gram that occurs more than once (overlaps counted once).
    """
    out = _lines_paras(text)
    words = text.split()
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), dtype=np.int64, count=len(words))
    lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    total = float(lens.sum()) or 1.0
    for n in TOP_NS:
        if len(words) < n:
            out[f"top_{n}gram_char_frac"] = 0.0
            continue
        inverse, counts = _windows(ids, n)
        best = int(np.argmax(counts))
        if counts[best] < 2:
            out[f"top_{n}gram_char_frac"] = 0.0
            continue
        first = int(np.argmax(inverse == best))
        out[f"top_{n}gram_char_frac"] = float(lens[first : first + n].sum() * counts[best]) / total
    for n in DUP_NS:
        if len(words) < n:
            out[f"dup_{n}gram_char_frac"] = 0.0
            continue
        inverse, counts = _windows(ids, n)
        starts = np.nonzero(counts[inverse] > 1)[0]
        cover = np.zeros(len(words) + 1, dtype=np.int64)
        np.add.at(cover, starts, 1)
        np.add.at(cover, starts + n, -1)
        covered = np.cumsum(cover[:-1]) > 0
        out[f"dup_{n}gram_char_frac"] = float(lens[covered].sum()) / total
        if n == SPAN_N:
            out["dup_span_words"] = float(_longest_run(covered))
    out.setdefault("dup_span_words", 0.0)
    out["dup_span_frac"] = out["dup_span_words"] / len(words) if words else 0.0
    return out


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True."""
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return int((np.nonzero(edges == -1)[0] - np.nonzero(edges == 1)[0]).max())


def longest_loop(words: list[str], max_unit: int) -> int:
    """Most consecutive repetitions of any unit of 1..max_unit words ("the the the" -> 3).

    Only units that contain a letter or a symbol such as an emoji count (see ``_CONTENT``).
    """
    if len(words) < 2:
        return 1 if words else 0
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), dtype=np.int64, count=len(words))
    best = 1
    for p in range(1, min(max_unit, len(words) // 2) + 1):
        eq = ids[p:] == ids[:-p]
        if not eq.any():
            continue
        # Runs of equal positions: a run of length L repeats the unit L // p + 1 times.
        padded = np.concatenate(([0], eq.astype(np.int8), [0]))
        edges = np.diff(padded)
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        for s, e in zip(starts, ends):
            reps = (e - s) // p + 1
            if reps <= best:
                continue
            if any(_CONTENT.search(w) for w in words[s : s + p]):
                best = int(reps)
    return best


# Python's str.split() also splits on U+001C..U+001F (information separators), which are not
# Unicode White_Space and so not split by polars' \s: texts holding them take the per-record path.
_PY_ONLY_SPACE = r"[\x1c-\x1f]"


def _lines_paras(text: str) -> dict[str, float]:
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln and _CONTENT.search(ln)]
    paras = [p.strip() for p in _PARA_SPLIT.split(text) if p.strip()]
    out: dict[str, float] = {}
    out["dup_line_frac"], out["dup_line_char_frac"] = _dup_fracs(lines)
    out["dup_para_frac"], out["dup_para_char_frac"] = _dup_fracs(paras)
    return out


# List markers, numbering and headings marks are not part of what a line says: "1. Go" and "2. Go"
# repeat the same line. Trailing punctuation is dropped too.
_LINE_MARKER = re.compile(r"^(?:[-*+\u2022>#]+|\(?\d{1,3}[.):]|\(?[a-zA-Z][.)])\s+")
_TRAILING_PUNCT = re.compile(r"[\s.,;:!?\u3002]+$")
_SPACES = re.compile(r"\s+")
# A repeated line must say something: at least this many words (shorter ones are refrains, labels, "Yes.").
LINE_MIN_WORDS = 3


def _norm_line(line: str) -> str:
    line = _LINE_MARKER.sub("", line.strip())
    return _SPACES.sub(" ", _TRAILING_PUNCT.sub("", line)).lower()


# Code outside fences repeats its lines by design ("} catch (SQLException e) {", "break;"): not counted.
_CODE_LINE = re.compile(r"[;{}]\s*$|^\s*[})\]]|^\s*(?:import|from|def|class|return|case|#include|@\w)\b")


def structure(text: str, min_para_words: int = 15) -> dict[str, int]:
    """Line and paragraph repetition of one text, as counts.

    ``verse`` is 1 for song- or poem-like text (``is_verse``): choruses and refrains repeat
    there by design, so its repeats are counted apart (``verse_line_run``, ``verse_para_repeats``).
    Content lines are lines of at least ``LINE_MIN_WORDS`` words with list markers stripped, blank
    and code-like lines ignored. ``line_run`` is the most times one content line occurs in a row;
    ``line_repeats`` the most times one pair of consecutive content lines occurs (a loop repeats a
    sequence, while structured text repeats a stem such as "id (Primary Key)" under different
    headings). ``para_repeats`` is the most times one paragraph of at least ``min_para_words`` words
    occurs, and ``para_dup_pct`` the percentage of the text's words in the later copies of repeated
    paragraphs (a list item said twice in a long answer is a slip; half of the answer said again is not).
    """
    raw_lines = [ln for ln in text.split("\n") if ln.strip() and not _CODE_LINE.search(ln)]
    lines = [_norm_line(ln) for ln in raw_lines]
    lines = [ln for ln in lines if len(ln.split()) >= LINE_MIN_WORDS and _CONTENT.search(ln)]
    run = best_run = 0
    prev: str | None = None
    pairs: dict[tuple[str, str], int] = {}
    for ln in lines:
        run = run + 1 if ln == prev else 1
        if prev is not None and ln != prev:
            pairs[(prev, ln)] = pairs.get((prev, ln), 0) + 1
        prev = ln
        best_run = max(best_run, run)
    paras: dict[str, int] = {}
    dup_words = 0
    for p in _PARA_SPLIT.split(text):
        words = p.split()
        if len(words) >= min_para_words:
            key = " ".join(words).lower()
            paras[key] = paras.get(key, 0) + 1
            if paras[key] > 1:
                dup_words += len(words)
    verse = int(is_verse(text))
    line_repeats = max(pairs.values(), default=0)
    para_repeats = max(paras.values(), default=0)
    para_dup_pct = round(100 * dup_words / max(1, len(text.split())))
    return {
        "verse": verse,
        "line_run": 0 if verse else best_run,
        "line_repeats": 0 if verse else line_repeats,
        "para_repeats": 0 if verse else para_repeats,
        "para_dup_pct": 0 if verse else para_dup_pct,
        "verse_line_run": best_run if verse else 0,
        "verse_para_repeats": para_repeats if verse else 0,
    }


def batch_metrics(texts: pl.Series, min_words: int, max_unit: int, min_para_words: int = 15) -> pl.DataFrame:
    """``words``, ``degenerate_repeats`` and the Gopher metrics of many texts at once.

    Gives exactly what ``longest_loop`` and ``gopher_metrics`` give text by text (including
    which of several equally frequent top n-grams counts, i.e. ``np.unique``'s byte order of the
    n-gram's first-appearance word ids), but the word n-grams of the whole batch are counted in a
    few numpy/polars passes instead of about 20 numpy calls per text. Texts must not contain
    U+001C..U+001F (see ``_PY_ONLY_SPACE``).
    """
    b = len(texts)
    words_list = texts.fill_null("").str.extract_all(r"\S+")
    nw = words_list.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = pl.DataFrame({"w": words_list}).select(pl.col("w").explode()).drop_nulls()["w"]
    n_pos = len(flat)
    doc = np.repeat(np.arange(b, dtype=np.int64), nw)
    start = np.concatenate(([0], np.cumsum(nw)[:-1])) if b else np.zeros(0, dtype=np.int64)
    gid = flat.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    wlen = flat.str.len_chars().to_numpy().astype(np.int64)
    uniq = flat.unique()
    has_content = pl.Series([_CONTENT.search(w) is not None for w in uniq.to_list()], dtype=pl.Boolean)
    content = flat.is_in(uniq.filter(has_content)).to_numpy()

    # degenerate loops: positions i where word i == word i+p, runs of them repeat a p-word unit
    best = (nw > 0).astype(np.int64)
    ccum = np.concatenate(([0], np.cumsum(content, dtype=np.int64)))
    half = nw // 2
    for p in range(1, max_unit + 1):
        if n_pos <= p:
            break
        eq = (gid[p:] == gid[:-p]) & (doc[p:] == doc[:-p]) & (p <= half[doc[:-p]])
        if not eq.any():
            continue
        edges = np.diff(np.concatenate(([0], eq.astype(np.int8), [0])))
        s, e = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        reps = (e - s) // p + 1
        ok = ccum[s + p] - ccum[s] > 0
        np.maximum.at(best, doc[s[ok]], reps[ok])

    cols: dict[str, Any] = {"words": pl.Series(nw, dtype=pl.Int32), "degenerate_repeats": pl.Series(best, dtype=pl.Int32)}
    txt = texts.fill_null("").to_list()
    shape = [structure(t, min_para_words) for t in txt]
    for m in STRUCTURE:
        cols[m] = pl.Series(m, [r[m] for r in shape], dtype=pl.Int32)
    judged = nw >= min_words
    metrics: dict[str, np.ndarray] = {m: np.full(b, np.nan) for m in METRICS}
    if judged.any():
        for r in np.nonzero(judged)[0].tolist():
            for k, v in _lines_paras(txt[r]).items():
                metrics[k][r] = v
        _ngram_metrics(metrics, judged, doc, start, nw, gid, wlen)
        verse = cols["verse"].to_numpy().astype(bool) & judged
        metrics["dup_span_words"][verse] = 0.0  # a chorus is a repeated passage by design
        metrics["dup_span_frac"][verse] = 0.0
    for m in METRICS:  # NaN marks "not judged" here; no metric is ever NaN itself
        cols[m] = pl.Series(m, metrics[m], dtype=pl.Float64).fill_nan(None)
    return pl.DataFrame(cols)


def _ngram_metrics(
    metrics: dict[str, np.ndarray],
    judged: np.ndarray,
    doc: np.ndarray,
    start: np.ndarray,
    nw: np.ndarray,
    gid: np.ndarray,
    wlen: np.ndarray,
) -> None:
    b = len(nw)
    metrics["dup_span_words"][judged] = 0.0
    metrics["dup_span_frac"][judged] = 0.0
    keep = judged[doc]
    pos = np.nonzero(keep)[0]
    d, g, ln = doc[pos], gid[pos], wlen[pos]
    # positions are renumbered over judged texts only; `first` indexes this sub-array
    new_start = np.full(b, -1, dtype=np.int64)
    sub_start = np.concatenate(([0], np.cumsum(nw[judged])[:-1]))
    new_start[judged] = sub_start
    local_pos = np.arange(len(pos), dtype=np.int64) - new_start[d]
    total = np.bincount(d, weights=ln, minlength=b)
    total[total == 0] = 1.0
    # `first`: index of the first occurrence of the same word in the same text, an exact id of
    # (text, word); each word's id within its text = order of first appearance (gopher_metrics' vocab)
    idx = np.arange(len(pos), dtype=np.int64)
    key1 = (d.astype(np.uint64) << np.uint64(32)) | g.astype(np.uint64)
    first = _first_index(key1, idx)
    is_first = (first == idx).astype(np.int64)
    before = np.cumsum(is_first) - is_first
    local = (before[first] - before[new_start[d]]).astype(np.uint64)
    swapped = local.byteswap()  # np.unique sorts the int64 ids as little-endian bytes
    first_u = first.astype(np.uint64)
    n_sub = len(pos)
    win = np.zeros(0, dtype=np.int64)
    fo = np.zeros(0, dtype=np.uint64)
    for n in (*TOP_NS, *DUP_NS):
        name_top, name_dup = f"top_{n}gram_char_frac", f"dup_{n}gram_char_frac"
        metrics.get(name_top, metrics.get(name_dup))[judged] = 0.0  # type: ignore[index]
        # An n-gram repeats only if its (n-1)-gram prefix repeats: only those windows are keyed,
        # by (first index of the prefix, first index of the last word), exact and per text.
        if n == 2:
            win = np.nonzero(local_pos <= nw[d] - 2)[0]
            key = (first_u[win] << np.uint64(32)) | first_u[win + 1]
        else:
            ok = local_pos[win] <= nw[d[win]] - n
            win, fo = win[ok], fo[ok]
            key = (fo << np.uint64(32)) | first_u[win + n - 1]
        if not len(win):
            continue
        res = pl.DataFrame({"k": key, "i": win}).select(
            pl.len().over("k").alias("c"), pl.col("i").min().over("k").alias("f")
        )
        cnt = res["c"].to_numpy().astype(np.int64)
        rep = cnt > 1
        if n in TOP_NS:
            wd = d[win]
            dmax = np.zeros(b, dtype=np.int64)
            np.maximum.at(dmax, wd, cnt)
            cand = np.nonzero((cnt == dmax[wd]) & rep)[0]
            if len(cand):
                ci = win[cand]
                order = np.lexsort([*(swapped[ci + k] for k in reversed(range(n))), d[ci]])
                cd = d[ci][order]
                w0 = ci[order[np.r_[True, cd[1:] != cd[:-1]]]]
                chars = sum(ln[w0 + k] for k in range(n))
                dd = d[w0]
                metrics[name_top][dd] = (chars * dmax[dd]).astype(np.float64) / total[dd]
        else:
            starts = win[rep]
            if len(starts):
                cover = np.zeros(n_sub + 1, dtype=np.int64)
                np.add.at(cover, starts, 1)
                np.add.at(cover, starts + n, -1)
                covered = np.cumsum(cover[:-1]) > 0
                cov_chars = np.bincount(d, weights=ln * covered, minlength=b)
                metrics[name_dup][judged] = cov_chars[judged] / total[judged]
                if n == SPAN_N:
                    # runs of covered positions, broken at every uncovered word and every text start
                    brk = ~covered | np.r_[True, d[1:] != d[:-1]]
                    rid = np.cumsum(brk)
                    run_len = np.bincount(rid[covered], minlength=int(rid[-1]) + 1)
                    run_doc = np.zeros(int(rid[-1]) + 1, dtype=np.int64)
                    run_doc[rid] = d
                    span = np.zeros(b, dtype=np.int64)
                    np.maximum.at(span, run_doc, run_len)
                    metrics["dup_span_words"][judged] = span[judged]
                    metrics["dup_span_frac"][judged] = span[judged] / np.maximum(nw[judged], 1)
        win, fo = win[rep], res["f"].to_numpy().astype(np.uint64)[rep]


def _first_index(key: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """For each position, the smallest index holding the same key."""
    out = pl.DataFrame({"k": key, "i": idx}).select(pl.col("i").min().over("k")).to_series().to_numpy()
    return np.asarray(out, dtype=np.int64)


def text_metrics(text: str, min_words: int, max_unit: int, min_para_words: int = 15) -> dict[str, Any]:
    """Everything ``batch_metrics`` gives for one text, computed text by text (the reference)."""
    words = text.split()
    out: dict[str, Any] = {m: None for m in METRICS}
    out["words"] = len(words)
    out["degenerate_repeats"] = longest_loop(words, max_unit)
    out.update(structure(text, min_para_words))
    if len(words) >= min_words:
        out.update(gopher_metrics(text))
        if out["verse"]:
            out["dup_span_words"] = out["dup_span_frac"] = 0.0
    return out


def _norm_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def prompt_copies(turns: list[dict[str, Any]] | None, roles: tuple[str, ...], min_words: int) -> bool:
    """True when a measured turn repeats the user turn before it instead of answering it.

    The turn is the prompt again (case, spacing and punctuation aside), or the prompt followed by
    at most a tenth more words. Prompts shorter than ``min_words`` words are not judged: "Hi" / "Hi"
    is a greeting, not a copy.
    """
    prompt: str | None = None
    for t in turns or []:
        role, content = t.get("role"), t.get("content") or ""
        if role == "user":
            prompt = _norm_text(content)
            continue
        if role in roles and prompt:
            resp = _norm_text(content)
            n_prompt = len(prompt.split())
            if n_prompt >= min_words and resp.startswith(prompt) and len(resp.split()) <= n_prompt * 1.1:
                return True
    return False


@register("filter.repetition")
class RepetitionFilter(Filter):
    """Reject assistant turns broken by repetition: loops, a line or paragraph again and again, a passage
    said twice, or a copy of the prompt.

    What a chat answer may repeat and still be good: a chorus or refrain, list stems, repeated
    headings, table rows, code, restated key terms. So the rules look for what broken output looks
    like, judged on each turn of ``roles`` (``per_turn``), and the conversation goes if any turn fails:

    * ``degenerate_output``: one unit of 1..``max_loop_unit_words`` words repeated
      ``degenerate_min_repeats`` or more times in a row ("no no no ...", "I'm sorry. I'm sorry. ...").
    * ``repeated_lines``: one content line (list markers and numbering stripped, at least three
      words, code-like lines ignored) ``line_run`` times in a row, or one pair of consecutive lines
      ``line_repeats`` times in all (a repeated stem under different headings is structure, not a
      loop). Song- and poem-like turns (``<id>.verse``, including lyrics with "(Chorus)" labels) have
      their own, higher limits (``verse_line_run``).
    * ``repeated_paragraphs``: one paragraph of at least ``min_para_words`` words ``para_repeats``
      times, its later copies holding at least ``para_min_pct`` percent of the turn's words
      (``verse_para_repeats`` in verse).
    * ``repeated_ngrams``: one passage of at least ``span_words`` words said again in the same turn,
      covering at least ``span_frac`` of it (``<id>.dup_span_words``: the longest run of words that
      each sit in a 10-gram occurring twice). Not applied to verse.
    * ``prompt_copy``: a turn that is the user's prompt again, or the prompt plus a tenth more words.

    Gopher's document rules (Rae et al. 2021, table A1: duplicate line/paragraph fractions, top
    2/3/4-gram and duplicate 5..10-gram character fractions) are always measured on turns of at
    least ``min_words`` words, but their thresholds are off by default: they were made for web
    pages of hundreds of words, and on labelled real answers they removed more good records than
    bad ones (structured answers restate their terms). Set e.g. ``dup_10gram: 0.1`` to apply one.
    Fenced code is removed first (``skip_code``); lines and units of only digits and punctuation
    never count.

    Reasons: degenerate_output, repeated_lines, repeated_paragraphs, repeated_ngrams, prompt_copy
    (checked in this order).
    """

    class Params(FilterParams):
        roles: list[Literal["user", "assistant", "system", "tool"]] = Field(
            ["assistant"], min_length=1, description="Roles whose turns are measured."
        )
        per_turn: bool = Field(
            True,
            description="Judge each turn on its own (reject if any turn fails); false joins the turns.",
        )
        skip_code: bool = Field(True, description="Remove fenced code blocks before measuring.")
        min_words: int = Field(50, ge=1, description="Gopher metrics and repeated passages are measured from this many words.")
        max_chars: int = Field(
            100_000, gt=0, description="Only this prefix of the text is measured (characters)."
        )
        degenerate_min_repeats: int = Field(
            10, ge=2, description="A unit repeated this many times in a row is a degenerate loop."
        )
        max_loop_unit_words: int = Field(8, ge=1, description="Longest loop unit checked (words).")
        line_run: int = Field(3, ge=2, description="A content line this many times in a row is a loop.")
        line_repeats: int = Field(
            6, ge=2, description="A pair of consecutive content lines this many times in one turn is a loop."
        )
        verse_line_run: int = Field(6, ge=2, description="line_run for song- and poem-like turns.")
        min_para_words: int = Field(15, ge=1, description="Shorter paragraphs never count as repeated.")
        para_repeats: int = Field(2, ge=2, description="A paragraph this many times in one turn is repeated text.")
        para_min_pct: int = Field(
            20, ge=0, le=100,
            description="... when its later copies hold at least this percentage of the turn's words.",
        )
        verse_para_repeats: int = Field(5, ge=2, description="para_repeats for song- and poem-like turns.")
        span_words: int = Field(50, ge=10, description="A repeated passage must be at least this long (words).")
        span_frac: float = Field(
            0.3, ge=0, le=1, description="... and cover at least this share of the turn's words."
        )
        prompt_copy: bool = Field(True, description="Reject turns that repeat the prompt instead of answering.")
        prompt_copy_min_words: int = Field(4, ge=1, description="Prompts shorter than this are not judged.")
        dup_line_frac: float | None = Field(None, ge=0, le=1, description="Gopher: max fraction of duplicate lines (0.30).")
        dup_para_frac: float | None = Field(None, ge=0, le=1, description="Gopher: max fraction of duplicate paragraphs (0.30).")
        dup_line_char_frac: float | None = Field(
            None, ge=0, le=1, description="Gopher: max fraction of characters in duplicate lines (0.20)."
        )
        dup_para_char_frac: float | None = Field(
            None, ge=0, le=1, description="Gopher: max fraction of characters in duplicate paragraphs (0.20)."
        )
        top_2gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction of the top 2-gram (0.20).")
        top_3gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction of the top 3-gram (0.18).")
        top_4gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction of the top 4-gram (0.16).")
        dup_5gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction in duplicate 5-grams (0.15).")
        dup_6gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction in duplicate 6-grams (0.14).")
        dup_7gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction in duplicate 7-grams (0.13).")
        dup_8gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction in duplicate 8-grams (0.12).")
        dup_9gram: float | None = Field(None, ge=0, le=1, description="Gopher: max character fraction in duplicate 9-grams (0.11).")
        dup_10gram: float | None = Field(
            None, ge=0, le=1, description="Gopher: max character fraction in duplicate 10-grams (0.10)."
        )

    params: Params

    def _turns_expr(self) -> pl.Expr:
        return pl.col("turns").list.eval(
            pl.element()
            .filter(pl.element().struct.field("role").is_in(list(self.params.roles)))
            .struct.field("content")
        )

    def _prepare(self, text: pl.Expr) -> pl.Expr:
        text = text.fill_null("").str.slice(0, self.params.max_chars)
        return strip_code_expr(text) if self.params.skip_code else text

    def _record(self, row: dict[str, Any]) -> dict[str, Any]:
        p = self.params
        return text_metrics(row["text"], p.min_words, p.max_loop_unit_words, p.min_para_words)

    def _metrics(self, texts: pl.Series) -> tuple[pl.DataFrame, pl.Series]:
        """Metrics of each text (``words``, ``degenerate_repeats``, STRUCTURE, METRICS) and per-text errors."""
        p = self.params
        py_only = texts.str.contains(_PY_ONLY_SPACE).fill_null(False)
        if not py_only.any():
            res = batch_metrics(texts, p.min_words, p.max_loop_unit_words, p.min_para_words)
            return res, pl.Series(ERROR_COLUMN, [None] * len(texts), dtype=pl.Utf8)
        # Rare texts with U+001C..U+001F: per record; the rest at once, then put back in order.
        rows = pl.Series(range(len(texts)), dtype=pl.Int64)
        values, slow_err = map_records(pl.DataFrame({"text": texts.filter(py_only)}), self._record, _RESULT)
        fast = batch_metrics(texts.filter(~py_only), p.min_words, p.max_loop_unit_words, p.min_para_words)
        merged = pl.concat(
            [
                fast.with_columns(rows.filter(~py_only).alias("_i")),
                values.struct.unnest().with_columns(rows.filter(py_only).alias("_i")),
            ],
            how="vertical_relaxed",
        ).sort("_i")
        errors = pl.Series(ERROR_COLUMN, [None] * len(texts), dtype=pl.Utf8).scatter(
            rows.filter(py_only), slow_err
        )
        return merged.select(fast.columns), errors

    def measure(self, batch: pl.DataFrame) -> pl.DataFrame:
        if not self.params.per_turn:
            texts = batch.select(self._prepare(self._turns_expr().list.join("\n\n")).alias("text"))["text"]
            res, errors = self._metrics(texts)
        else:
            # One row per measured turn, then the worst turn per conversation: max of each metric.
            # A conversation without such a turn reads as one empty text (0 words), as when joined.
            turns = batch.select(pl.int_range(pl.len()).alias("_c"), self._turns_expr().alias("text"))
            turns = turns.explode("text").drop_nulls("text").with_columns(self._prepare(pl.col("text")))
            per_turn, turn_errors = self._metrics(turns["text"])
            agg = (
                per_turn.with_columns(turns["_c"], turn_errors)
                .group_by("_c")
                .agg(*(pl.col(c).max() for c in per_turn.columns), pl.col(ERROR_COLUMN).drop_nulls().first())
            )
            agg = (
                pl.DataFrame({"_c": pl.int_range(batch.height, eager=True)})
                .join(agg, on="_c", how="left")
                .sort("_c")
                .with_columns(pl.col("words", "degenerate_repeats", *STRUCTURE).fill_null(0))
            )
            res, errors = agg.select(per_turn.columns), agg[ERROR_COLUMN]
        out = batch.with_columns(*(res[c].alias(f"{self.id}.{c}") for c in res.columns))
        if self.params.prompt_copy:
            roles = tuple(self.params.roles)
            n = self.params.prompt_copy_min_words
            copies = [prompt_copies(t, roles, n) for t in batch["turns"].to_list()]
            out = out.with_columns(pl.Series(f"{self.id}.prompt_copy", copies, dtype=pl.Boolean))
        return with_errors(out, errors)

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        p, i = self.params, self.id

        def over(metric: str, limit: float | None) -> pl.Expr:
            if limit is None:
                return pl.lit(False)
            return (pl.col(f"{i}.{metric}") > limit).fill_null(False)

        def at_least(metric: str, limit: float) -> pl.Expr:
            return (pl.col(f"{i}.{metric}") >= limit).fill_null(False)

        lines = at_least("line_run", p.line_run) | at_least("line_repeats", p.line_repeats)
        lines = lines | at_least("verse_line_run", p.verse_line_run)
        lines = lines | over("dup_line_frac", p.dup_line_frac) | over("dup_line_char_frac", p.dup_line_char_frac)
        paras = at_least("para_repeats", p.para_repeats) & at_least("para_dup_pct", p.para_min_pct)
        paras = paras | at_least("verse_para_repeats", p.verse_para_repeats)
        paras = paras | over("dup_para_frac", p.dup_para_frac) | over("dup_para_char_frac", p.dup_para_char_frac)
        ngram = at_least("dup_span_words", p.span_words) & at_least("dup_span_frac", p.span_frac)
        ngram = ngram | over("top_2gram_char_frac", p.top_2gram) | over("top_3gram_char_frac", p.top_3gram)
        ngram = ngram | over("top_4gram_char_frac", p.top_4gram)
        for n in DUP_NS:
            ngram = ngram | over(f"dup_{n}gram_char_frac", getattr(p, f"dup_{n}gram"))
        copy = pl.col(f"{i}.prompt_copy").fill_null(False) if p.prompt_copy else pl.lit(False)
        return batch.select(
            pl.when((pl.col(f"{i}.degenerate_repeats") >= p.degenerate_min_repeats).fill_null(False))
            .then(pl.lit("degenerate_output"))
            .when(lines)
            .then(pl.lit("repeated_lines"))
            .when(paras)
            .then(pl.lit("repeated_paragraphs"))
            .when(ngram)
            .then(pl.lit("repeated_ngrams"))
            .when(copy)
            .then(pl.lit("prompt_copy"))
            .otherwise(pl.lit(None, dtype=pl.Utf8))
            .alias("reason")
        ).to_series()
