"""Exported Hub dataset -> tokenised training sequences with loss only on assistant tokens.

Supervised spans are found by rendering the conversation prefix by prefix: for assistant turn ``i``,
``render(turns[:i], add_generation_prompt=True)`` must be a prefix of ``render(turns[:i+1])``, and what
lies between them (minus trailing whitespace) is exactly what the model must produce: the content and
the end marker. This works for any template (a model's own need not have ``{% generation %}`` markers)
and doubles as the template check: a template that is not prefix-consistent, drops a role or rejects a
conversation is reported, never trained on. The full text is then tokenised once, and a token is
supervised when its character span overlaps a supervised span.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import CurateError, MissingResourceError
from curate.schema import SchemaError, validate_turns

IGNORE = -100
_SHARD = re.compile(r"^(?P<split>.+)-(?P<i>\d+)-of-(?P<n>\d+)\.parquet$")


class DatasetError(CurateError):
    """The exported dataset folder is malformed (bad shard set, wrong column, unknown role)."""


class TemplateMismatch(CurateError):
    """The chat template cannot render a conversation consistently."""


@dataclass
class Conversation:
    id: str
    turns: list[dict[str, str]]


def split_files(dataset_dir: str | Path, split: str) -> list[Path]:
    """The parquet shards of one split, checked to be complete (``-0000i-of-0000n``)."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise MissingResourceError(
            f"dataset folder {root} not found; export a run first: curate export RUN_DIR {root} --format hub"
        )
    data = root / "data"
    shards = []
    for p in sorted(data.glob(f"{split}-*-of-*.parquet")) if data.is_dir() else []:
        m = _SHARD.match(p.name)
        if m and m["split"] == split:
            shards.append((int(m["i"]), int(m["n"]), p))
    if not shards:
        have = sorted({m["split"] for p in data.glob("*.parquet") if (m := _SHARD.match(p.name))}) if data.is_dir() else []
        raise MissingResourceError(
            f"dataset {root}: no {split!r} split (expected {data}/{split}-00000-of-0000N.parquet; "
            f"splits present: {', '.join(have) or 'none'}). Choose one with --set data.train_split=... / "
            "data.eval_split=... (data.eval_split=null skips evaluation)"
        )
    counts = {n for _, n, _ in shards}
    idx = sorted(i for i, _, _ in shards)
    if len(counts) != 1 or idx != list(range(counts.pop())):
        raise DatasetError(
            f"dataset {root}: split {split!r} has an incomplete shard set: "
            f"{', '.join(p.name for _, _, p in shards)}; re-export the dataset"
        )
    return [p for _, _, p in sorted(shards)]


def load_split(dataset_dir: str | Path, split: str, limit: int | None = None) -> list[Conversation]:
    """Read the ``messages`` column (and ``id``) of a split; every turn is validated against the schema."""
    import pyarrow.parquet as pq

    convs: list[Conversation] = []
    for path in split_files(dataset_dir, split):
        table = pq.read_table(path)
        if "messages" not in table.column_names:
            raise DatasetError(f"{path}: no 'messages' column (columns: {', '.join(table.column_names)})")
        ids = table.column("id").to_pylist() if "id" in table.column_names else None
        for row, msgs in enumerate(table.column("messages").to_pylist()):
            cid = str(ids[row]) if ids else f"{path.name}:{row}"
            try:
                turns = validate_turns(msgs or [])
            except SchemaError as e:
                raise DatasetError(f"{path} row {row} (id {cid}): {e}") from None
            convs.append(Conversation(cid, turns))
            if limit is not None and len(convs) >= limit:
                return convs
    return convs


@dataclass
class Rendered:
    text: str
    spans: list[tuple[int, int]]  # supervised character spans, one per assistant turn
    span_turns: list[int]  # index of the assistant turn each span belongs to
    turn_ends: list[int]  # character offset where each turn's rendering ends


def _apply(tokenizer: Any, template: str, turns: Sequence[dict[str, str]], gen: bool) -> str:
    out = tokenizer.apply_chat_template(
        list(turns), chat_template=template, tokenize=False, add_generation_prompt=gen
    )
    return str(out)


def render(tokenizer: Any, template: str, turns: Sequence[dict[str, str]]) -> Rendered:
    """Render prefix by prefix and locate supervised spans. Raises TemplateMismatch."""
    from jinja2.exceptions import TemplateError

    prev = ""
    spans: list[tuple[int, int]] = []
    span_turns: list[int] = []
    ends: list[int] = []
    for i, turn in enumerate(turns):
        role = turn["role"]
        try:
            gen = _apply(tokenizer, template, turns[:i], gen=True) if role == "assistant" else ""
            full = _apply(tokenizer, template, turns[: i + 1], gen=False)
        except TemplateError as e:
            raise TemplateMismatch(f"turn {i} ({role}): the chat template rejects it: {e}") from None
        if not full.startswith(prev):
            raise TemplateMismatch(
                f"turn {i} ({role}): rendering is not prefix-consistent (adding a turn changes the text "
                "before it), so training text would differ from what the model sees at inference"
            )
        content = turn["content"].strip()
        if role == "assistant":
            if not gen.startswith(prev) or not full.startswith(gen):
                raise TemplateMismatch(
                    f"turn {i} (assistant): the rendered turn does not start with the template's generation "
                    "prompt (the template drops or rewrites assistant turns)"
                )
            body = full[len(gen) :]
            sup = body.rstrip()
            if not sup or (content and content not in sup):
                raise TemplateMismatch(
                    f"turn {i} (assistant): the template drops the assistant content, so it has no supervised tokens"
                )
            spans.append((len(gen), len(gen) + len(sup)))
            span_turns.append(i)
        elif content and content not in full[len(prev) :]:
            raise TemplateMismatch(f"turn {i} ({role}): the template drops the {role} turn's content")
        ends.append(len(full))
        prev = full
    return Rendered(prev, spans, span_turns, ends)


@dataclass
class Example:
    id: str
    input_ids: list[int]
    labels: list[int]
    spans: list[tuple[int, int]]  # supervised token ranges [start, end), one per kept assistant turn
    span_turns: list[int]  # the assistant turn index of each span
    n_turns_kept: int
    truncated: bool = False


@dataclass
class Encoded:
    examples: list[Example]
    n_convs: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    problems: list[str] = field(default_factory=list)  # failures --check reports
    rendered: dict[str, Rendered] = field(default_factory=dict)  # id -> rendering, for the first few

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def n_tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)

    @property
    def n_supervised(self) -> int:
        return sum(sum(1 for x in e.labels if x != IGNORE) for e in self.examples)


def _token_spans(
    offsets: Sequence[tuple[int, int]], char_spans: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Map each character span to the token range whose tokens overlap it."""
    starts = [s for s, _ in offsets]
    ends = [e for _, e in offsets]
    out = []
    for a, b in char_spans:
        first = bisect.bisect_right(ends, a)  # first token ending after a
        last = bisect.bisect_left(starts, b)  # tokens before this start before b
        out.append((first, last) if first < last else (0, 0))
    return out


def encode(
    convs: Sequence[Conversation],
    tokenizer: Any,
    template: str,
    max_seq_len: int,
    over_length: str = "drop_turns",
    keep_rendered: int = 0,
    batch_size: int = 256,
) -> Encoded:
    """Tokenise conversations; labels are the input ids on assistant spans and IGNORE elsewhere.

    Problems (template mismatch, no supervised tokens, an assistant turn cut when ``over_length=fail``)
    are collected, not raised, so ``--check`` can report them all at once.
    """
    enc = Encoded([], len(convs))
    for start in range(0, len(convs), batch_size):
        chunk = convs[start : start + batch_size]
        rendered: list[tuple[Conversation, Rendered]] = []
        for conv in chunk:
            try:
                r = render(tokenizer, template, conv.turns)
            except TemplateMismatch as e:
                enc.problems.append(f"conversation {conv.id}: template does not match: {e}")
                continue
            if not r.spans:
                enc.problems.append(
                    f"conversation {conv.id}: no supervised tokens (it has no assistant turn); "
                    "remove it in the recipe (e.g. a filter on roles) and re-export"
                )
                continue
            rendered.append((conv, r))
            if len(enc.rendered) < keep_rendered:
                enc.rendered[conv.id] = r
        if not rendered:
            continue
        toks = tokenizer(
            [r.text for _, r in rendered], add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )  # verbose=False: long conversations are expected here; truncation is ours to decide
        for (conv, r), ids, offsets in zip(rendered, toks["input_ids"], toks["offset_mapping"]):
            ex = _one(conv, r, list(ids), [tuple(o) for o in offsets], max_seq_len, over_length, enc)
            if ex is not None:
                enc.examples.append(ex)
    return enc


def _one(
    conv: Conversation,
    r: Rendered,
    ids: list[int],
    offsets: list[tuple[int, int]],
    max_len: int,
    over_length: str,
    enc: Encoded,
) -> Example | None:
    spans = _token_spans(offsets, r.spans)
    if any(a == b for a, b in spans):
        enc.problems.append(f"conversation {conv.id}: an assistant turn produced no tokens")
        return None
    n_turns = len(conv.turns)
    span_turns = list(r.span_turns)
    truncated = False
    if len(ids) > max_len:
        truncated = True
        cut = [k for k, (a, b) in enumerate(spans) if b > max_len]
        if over_length == "fail" and cut:
            k = cut[0]
            enc.problems.append(
                f"conversation {conv.id}: assistant turn {r.span_turns[k]} is cut by truncation "
                f"(tokens {spans[k][0]}-{spans[k][1]}, data.max_seq_len={max_len}, conversation has "
                f"{len(ids)} tokens); raise data.max_seq_len or set data.over_length=drop_turns/drop"
            )
            return None
        if over_length == "drop" and cut:
            enc.dropped["too_long"] = enc.dropped.get("too_long", 0) + 1
            return None
        fit = [k for k, (a, b) in enumerate(spans) if b <= max_len]
        if not fit:
            enc.dropped["first_answer_too_long"] = enc.dropped.get("first_answer_too_long", 0) + 1
            return None
        last = fit[-1]
        # End at the turn boundary after the last whole assistant turn, if it fits; else right after it.
        turn_end_char = r.turn_ends[r.span_turns[last]]
        end_tok = bisect.bisect_left([s for s, _ in offsets], turn_end_char)
        end = min(max(end_tok, spans[last][1]), max_len)
        ids = ids[:end]
        spans = spans[: last + 1]
        span_turns = span_turns[: last + 1]
        n_turns = r.span_turns[last] + 1
    labels = [IGNORE] * len(ids)
    for a, b in spans:
        labels[a:b] = ids[a:b]
    return Example(conv.id, ids, labels, spans, span_turns, n_turns, truncated)


# --- batching -------------------------------------------------------------------------------------


def pack_units(lengths: Sequence[int], order: Sequence[int], max_len: int, packing: bool) -> list[list[int]]:
    """Group example indices (in ``order``) into rows: one per row, or greedily packed up to ``max_len``."""
    if not packing:
        return [[i] for i in order]
    rows: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i in order:
        if cur and used + lengths[i] > max_len:
            rows.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += lengths[i]
    if cur:
        rows.append(cur)
    return rows


def collate(examples: Sequence[Sequence[Example]], pad_id: int, packing: bool) -> dict[str, Any]:
    """Pad rows to the longest. Packed rows get restarting position ids and no 2-D attention mask, so
    transformers builds a block-diagonal causal mask and conversations never attend to each other."""
    import torch

    rows_ids: list[list[int]] = []
    rows_lab: list[list[int]] = []
    rows_pos: list[list[int]] = []
    for row in examples:
        ids: list[int] = []
        lab: list[int] = []
        pos: list[int] = []
        for ex in row:
            ids += ex.input_ids
            lab += ex.labels
            pos += list(range(len(ex.input_ids)))
        rows_ids.append(ids)
        rows_lab.append(lab)
        rows_pos.append(pos)
    width = max(len(r) for r in rows_ids)
    input_ids = torch.full((len(rows_ids), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows_ids), width), IGNORE, dtype=torch.long)
    attn = torch.zeros((len(rows_ids), width), dtype=torch.long)
    position_ids = torch.zeros((len(rows_ids), width), dtype=torch.long)
    for k, (ids, lab, pos) in enumerate(zip(rows_ids, rows_lab, rows_pos)):
        n = len(ids)
        input_ids[k, :n] = torch.tensor(ids)
        labels[k, :n] = torch.tensor(lab)
        attn[k, :n] = 1
        # padding continues as its own segment starting at 0, so it is a separate block when packed
        position_ids[k, :n] = torch.tensor(pos)
        position_ids[k, n:] = torch.arange(width - n)
    batch: dict[str, Any] = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    if not packing:
        batch["attention_mask"] = attn
    return batch
