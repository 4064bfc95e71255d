"""Curation decisions measured against records labelled by a person (a "gold" file).

A gold file is JSONL, one labelled conversation a line::

    {"uid": "dev-0001", "label": "keep|failed|refusal|degenerate|non_english|other_bad",
     "flags": [...], "note": "...", "turns": [{"role": "user", "content": "..."}, ...]}

(``file``, ``record`` and ``format`` say where the record came from and are optional.) The labels
follow a written policy (for the shared set, ``shared/gold/POLICY.md``). :func:`evaluate` runs the
batch steps of a recipe (its transforms and filters, in recipe order, with the recipe's parameters)
over the labelled conversations and reports what each filter removed or flagged; :func:`summarize`
turns that into precision per reason, recall per bad class and the share of good records removed.

The records are never written anywhere: this is a measurement, not a run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate.errors import ConfigError
from curate.schema import ERROR_COLUMN, make_batch, record_id, validate_turns
from curate.steps.base import Filter, Step, Transform

LABELS = ("keep", "failed", "refusal", "degenerate", "non_english", "other_bad")
# The classes a cleaning filter is meant to catch; ``other_bad`` needs a reader or a model.
FILTER_CLASSES = ("failed", "refusal", "degenerate", "non_english")
GOLD_ROW = "_gold_row"
# Steps that need the whole set, a source's figures or people's labels, not one record: not measured here.
# Generators call a model and write new text: the filters are measured on the labelled records' own answers.
_NOT_PER_RECORD = ("label.", "filter.source", "generate.")


@dataclass(frozen=True)
class GoldRecord:
    uid: str
    label: str
    flags: tuple[str, ...]
    note: str
    turns: list[dict[str, str]]
    file: str | None = None
    record: int | None = None
    format: str | None = None


def load_gold(path: str | Path) -> list[GoldRecord]:
    """Read a gold file; a malformed line raises ConfigError naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: gold file not found")
    out: list[GoldRecord] = []
    seen: set[str] = set()
    with p.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{p}:{n}"
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ConfigError(f"{where}: not a JSON line ({e})") from None
            if not isinstance(obj, dict):
                raise ConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            label = obj.get("label")
            if label not in LABELS:
                raise ConfigError(f"{where}: label {label!r} is not one of {', '.join(LABELS)}")
            uid = str(obj.get("uid") or f"line-{n}")
            if uid in seen:
                raise ConfigError(f"{where}: uid {uid!r} appears twice")
            seen.add(uid)
            try:
                turns = validate_turns(obj.get("turns") or [])
            except Exception as e:  # noqa: BLE001 - reported with the line, never a traceback
                raise ConfigError(f"{where}: bad turns ({e})") from None
            if not turns:
                raise ConfigError(f"{where}: no turns")
            flags = obj.get("flags") or []
            if not isinstance(flags, list):
                raise ConfigError(f"{where}: flags must be a list")
            rec = obj.get("record")
            out.append(
                GoldRecord(
                    uid=uid,
                    label=label,
                    flags=tuple(str(f) for f in flags),
                    note=str(obj.get("note") or ""),
                    turns=turns,
                    file=obj.get("file"),
                    record=rec if isinstance(rec, int) else None,
                    format=obj.get("format"),
                )
            )
    if not out:
        raise ConfigError(f"{p}: no labelled records")
    return out


def gold_batch(records: Sequence[GoldRecord]) -> pl.DataFrame:
    """The labelled conversations as one batch in the conversation schema, with their row number."""
    rows: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        rows.append(
            {
                "id": record_id("gold", r.file or "gold", r.record if r.record is not None else i, i),
                "source": r.format or "gold",
                "subset": None,
                "turns": r.turns,
                "meta": None,
                "provenance": {"file": r.file or "gold", "record": r.record if r.record is not None else i},
            }
        )
    return make_batch(rows).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(GOLD_ROW))


@dataclass
class StepOutcome:
    """What one filter decided for each gold record (None = kept without a flag)."""

    step_id: str
    key: str
    removed: list[str | None]
    flagged: list[str | None]


@dataclass
class Evaluation:
    recipe: str
    records: list[GoldRecord]
    steps: list[StepOutcome] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # gold row -> error a step raised

    def first_removal(self) -> list[tuple[str, str] | None]:
        """Per record: (step id, reason) of the first filter that removes it, in recipe order."""
        out: list[tuple[str, str] | None] = [None] * len(self.records)
        for so in self.steps:
            for i, r in enumerate(so.removed):
                if r is not None and out[i] is None:
                    out[i] = (so.step_id, r)
        return out


def batch_steps(steps: Iterable[Step]) -> list[Step]:
    """The recipe's per-record steps (transforms and filters) in order; global steps are left out."""
    return [
        s
        for s in steps
        if s.scope == "batch" and isinstance(s, (Filter, Transform)) and not s.key.startswith(_NOT_PER_RECORD)
    ]


def evaluate(steps: Sequence[Step], records: Sequence[GoldRecord], recipe: str = "") -> Evaluation:
    """Run ``steps`` (transforms and filters, in order) over every gold record.

    Every filter sees every record, so each filter's removals are measured on their own; the
    recipe removes a record when any filter does (:meth:`Evaluation.first_removal` is the reason
    the run's ledger would show). Transforms change the text the later filters see, as in a run.
    A transform that splits a conversation (``clean.split_long``) yields several rows for one gold
    record: the record counts as removed when any of its parts is.
    """
    ev = Evaluation(recipe=recipe, records=list(records))
    batch = gold_batch(records)
    n = len(records)
    for step in batch_steps(steps):
        if isinstance(step, Transform):
            batch = _drop_errors(step.apply(batch), step.id, ev.errors)
            continue
        assert isinstance(step, Filter)
        measured = _drop_errors(step.measure(batch), step.id, ev.errors)
        reasons, flags = step.decide(measured)
        removed: list[str | None] = [None] * n
        flagged: list[str | None] = [None] * n
        for row, reason, flag in zip(measured[GOLD_ROW].to_list(), reasons.to_list(), flags.to_list()):
            if reason is not None and removed[row] is None:
                removed[row] = reason
            if flag is not None and flagged[row] is None:
                flagged[row] = flag
        ev.steps.append(StepOutcome(step_id=step.id, key=step.key, removed=removed, flagged=flagged))
        batch = measured.select([c for c in batch.columns if c in measured.columns])
    return ev


def _drop_errors(batch: pl.DataFrame, step_id: str, errors: dict[int, str]) -> pl.DataFrame:
    """Rows a step failed on leave the batch; their error is kept per gold row (as quarantine would)."""
    if ERROR_COLUMN not in batch.columns:
        return batch
    for row, err in batch.select(GOLD_ROW, ERROR_COLUMN).drop_nulls(ERROR_COLUMN).iter_rows():
        errors.setdefault(int(row), f"{step_id}: {err}")
    return batch.filter(pl.col(ERROR_COLUMN).is_null()).drop(ERROR_COLUMN)


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def summarize(ev: Evaluation, examples: int = 5) -> dict[str, Any]:
    """Precision per removal reason, recall per bad class, and the share of good records removed."""
    labels = [r.label for r in ev.records]
    first = ev.first_removal()
    per_reason: dict[str, dict[str, Any]] = {}
    for so in ev.steps:
        for i, reason in enumerate(so.removed):
            if reason is None:
                continue
            key = f"{so.step_id}: {reason}"
            d = per_reason.setdefault(key, {"removed": 0, "bad": 0, "by_label": Counter(), "wrong": []})
            d["removed"] += 1
            d["by_label"][labels[i]] += 1
            if labels[i] != "keep":
                d["bad"] += 1
            elif len(d["wrong"]) < examples:
                d["wrong"].append(ev.records[i].uid)
    for d in per_reason.values():
        d["precision"] = _share(d["bad"], d["removed"])
        d["by_label"] = dict(d["by_label"])
    flagged: dict[str, dict[str, Any]] = {}
    for so in ev.steps:
        for i, flag in enumerate(so.flagged):
            if flag is None:
                continue
            d = flagged.setdefault(f"{so.step_id}: {flag}", {"flagged": 0, "by_label": Counter()})
            d["flagged"] += 1
            d["by_label"][labels[i]] += 1
    for d in flagged.values():
        d["by_label"] = dict(d["by_label"])
    recall: dict[str, dict[str, Any]] = {}
    for cls in (*FILTER_CLASSES, "other_bad"):
        idx = [i for i, lab in enumerate(labels) if lab == cls]
        caught = [i for i in idx if first[i] is not None]
        missed = [ev.records[i].uid for i in idx if first[i] is None]
        recall[cls] = {"n": len(idx), "caught": len(caught), "recall": _share(len(caught), len(idx)),
                       "missed": missed[:examples]}
    keep_idx = [i for i, lab in enumerate(labels) if lab == "keep"]
    good_removed = [i for i in keep_idx if first[i] is not None]
    wrong = Counter(f"{f[0]}: {f[1]}" for f in (first[i] for i in good_removed) if f is not None)
    target = [i for i, lab in enumerate(labels) if lab in FILTER_CLASSES]
    target_caught = [i for i in target if first[i] is not None]
    return {
        "recipe": ev.recipe,
        "records": len(labels),
        "labels": dict(Counter(labels)),
        "per_reason": per_reason,
        "flagged": flagged,
        "recall": recall,
        "good_removed": len(good_removed),
        "good_total": len(keep_idx),
        "good_removed_share": _share(len(good_removed), len(keep_idx)),
        "wrong_reasons": wrong.most_common(5),
        "good_removed_examples": [ev.records[i].uid for i in good_removed[:examples]],
        "bad_caught": len(target_caught),
        "bad_total": len(target),
        "bad_caught_share": _share(len(target_caught), len(target)),
        "errors": {ev.records[i].uid: e for i, e in ev.errors.items()},
    }
