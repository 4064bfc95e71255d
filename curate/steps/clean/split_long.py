"""Split conversations longer than a token budget into several at turn boundaries (clean.split_long)."""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl
from pydantic import Field

from curate.errors import MissingResourceError
from curate.schema import ERROR_COLUMN, TURN, content_hash
from curate.steps.base import StepParams, Transform, map_records
from curate.steps.registry import register

# Loaded tokenizers per process (never pickled with the step).
_TOKENIZERS: dict[str, Any] = {}


def part_id(parent_id: str, part: int) -> str:
    """Stable id of piece ``part`` of a split conversation (blake2b, 16 hex chars like record_id)."""
    key = f"{parent_id}\x1fsplit\x1f{part}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def load_tokenizer(name: str) -> Any:
    """A Hugging Face tokenizer from a local path or the local cache only (never the network)."""
    if name not in _TOKENIZERS:
        try:
            from transformers import AutoTokenizer
        except ImportError as e:
            raise MissingResourceError(
                "clean.split_long: `tokenizer` needs transformers; install curate[train]"
            ) from e
        try:
            _TOKENIZERS[name] = AutoTokenizer.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as e:
            raise MissingResourceError(
                f"clean.split_long: tokenizer {name!r} is not a local folder or in the local Hugging Face "
                f"cache ({type(e).__name__}: {e}). Pass a folder with tokenizer.json/tokenizer_config.json, "
                "or leave `tokenizer` unset to count whitespace tokens."
            ) from e
    return _TOKENIZERS[name]


def split_turns(
    turns: list[dict[str, str]], lengths: list[int], max_tokens: int
) -> list[list[dict[str, str]]]:
    """Pieces of a conversation, each within ``max_tokens`` where possible (Vicuna-style).

    Leading system turns are repeated at the start of every piece. The rest is cut into exchanges:
    a user turn with the non-user turns after it (turns before the first user turn form their
    own exchange). Exchanges are packed greedily in order and never cut, so a piece starts with a
    user turn and ends with its answer; an exchange longer than the budget is a piece of its own.
    """
    n_sys = 0
    while n_sys < len(turns) and turns[n_sys]["role"] == "system":
        n_sys += 1
    system, sys_len = turns[:n_sys], sum(lengths[:n_sys])
    exchanges: list[tuple[int, int]] = []  # [start, end) over turns
    start = n_sys
    for i in range(n_sys + 1, len(turns) + 1):
        if i == len(turns) or turns[i]["role"] == "user":
            if start < i:
                exchanges.append((start, i))
            start = i
    pieces: list[list[dict[str, str]]] = []
    cur: list[dict[str, str]] = []
    cur_len = sys_len
    for s, e in exchanges:
        ex_len = sum(lengths[s:e])
        if cur and cur_len + ex_len > max_tokens:
            pieces.append(system + cur)
            cur, cur_len = [], sys_len
        cur.extend(turns[s:e])
        cur_len += ex_len
    if cur or not pieces:
        pieces.append(system + cur)
    return pieces


@register("clean.split_long")
class SplitLongClean(Transform):
    """Split a conversation longer than ``max_tokens`` into several conversations at turn boundaries.

    Follows FastChat's ``split_long_conversation`` (Vicuna): pieces are packed from whole
    user->assistant exchanges, so each starts with a user turn and ends with the assistant's
    answer; a leading system turn is repeated in every piece (and counted in its budget); an
    exchange longer than ``max_tokens`` stays whole in a piece of its own (it may exceed the budget).
    Unlike FastChat, a trailing odd turn is kept, not dropped. Length is whitespace tokens, or the
    tokens of ``tokenizer`` (local HF tokenizer, loaded lazily), plus ``turn_overhead_tokens`` per
    turn (FastChat adds 6 for role markers). Pieces replace the original row: their ids are
    ``blake2b(parent id, part)`` (16 hex), ``<id>.parent_id`` holds the original id and
    ``<id>.part`` the 0-based piece index (both null for unsplit rows); ``content_hash`` is
    recomputed. A row split into k pieces adds k-1 rows (the runner's ``n_added``).

    Reasons: none (a transform never rejects).
    """

    class Params(StepParams):
        max_tokens: int = Field(2048, gt=0, description="Token budget per piece (FastChat used 2048).")
        tokenizer: str | None = Field(
            None, description="Local HF tokenizer folder or cached name; null counts whitespace tokens."
        )
        turn_overhead_tokens: int = Field(0, ge=0, description="Tokens added per turn for role markers.")

    def _lengths(self, turns: list[dict[str, str]]) -> list[int]:
        oh = self.params.turn_overhead_tokens
        if self.params.tokenizer is None:
            return [len((t["content"] or "").split()) + oh for t in turns]
        tok = load_tokenizer(self.params.tokenizer)
        return [len(tok(t["content"] or "", add_special_tokens=False)["input_ids"]) + oh for t in turns]

    def _split(self, row: dict[str, Any]) -> list[list[dict[str, str]]] | None:
        turns = row["turns"] or []
        lengths = self._lengths(turns)
        if sum(lengths) <= self.params.max_tokens:
            return None
        pieces = split_turns(turns, lengths, self.params.max_tokens)
        return pieces if len(pieces) > 1 else None

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        parent_col, part_col = f"{self.id}.parent_id", f"{self.id}.part"
        batch = batch.with_columns(
            pl.lit(None, dtype=pl.Utf8).alias(parent_col), pl.lit(None, dtype=pl.Int32).alias(part_col)
        )
        if batch.height == 0:
            return batch
        if self.params.tokenizer is None:
            # Only rows over budget by whitespace count can need a split.
            tokens = pl.col("turns").list.eval(
                pl.element().struct.field("content").fill_null("").str.count_matches(r"\S+")
                + self.params.turn_overhead_tokens
            )
            cand = batch.select((tokens.list.sum() > self.params.max_tokens).fill_null(False)).to_series()
        else:
            load_tokenizer(self.params.tokenizer)  # a missing tokenizer is a config error, raised once
            cand = pl.Series([True] * batch.height)
        idx = cand.arg_true()
        if len(idx) == 0:
            return batch
        sub = batch[idx]
        values, errors = map_records(sub, self._split, pl.List(pl.List(TURN)))
        out_rows: list[pl.DataFrame] = []
        pos = "__split_pos"
        batch = batch.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(pos))
        sub = batch[idx]
        split_mask = [False] * batch.height
        n_added = 0
        for j, (pieces, err) in enumerate(zip(values.to_list(), errors.to_list())):
            r = int(idx[j])
            if err is not None:
                row = sub[j].with_columns(pl.lit(err).alias(ERROR_COLUMN))
                out_rows.append(row)
                split_mask[r] = True
                continue
            if not pieces:
                continue
            split_mask[r] = True
            parent = sub[j]
            pid = parent["id"][0]
            rows = pl.concat([parent] * len(pieces), how="vertical")
            rows = rows.with_columns(
                pl.Series("id", [part_id(pid, k) for k in range(len(pieces))], dtype=pl.Utf8),
                pl.Series("turns", pieces, dtype=pl.List(TURN)),
                pl.Series("content_hash", [content_hash(p) for p in pieces], dtype=pl.Utf8),
                pl.lit(pid, dtype=pl.Utf8).alias(parent_col),
                pl.Series(part_col, range(len(pieces)), dtype=pl.Int32),
            )
            n_added += len(pieces) - 1
            out_rows.append(rows)
        if not out_rows:
            return batch.drop(pos)
        self.report_extra["split_records"] = self.report_extra.get("split_records", 0) + sum(
            1 for r in out_rows if ERROR_COLUMN not in r.columns
        )
        self.report_extra["split_added_rows"] = self.report_extra.get("split_added_rows", 0) + n_added
        keep = batch.filter(~pl.Series(split_mask))
        out = pl.concat([keep, *out_rows], how="diagonal_relaxed")
        return out.sort(pos, part_col, nulls_last=False, maintain_order=True).drop(pos)
