"""One batch through one batch step: split into kept rows, ledger rows and quarantine entries.

Pure functions of (step, batch): no files, no executor. Every executor (in process, process pool, Ray)
runs :func:`process_batch`, or :func:`worker_run` in a worker process, and hands the
:class:`BatchOutcome` back to the runner's books.
"""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from curate.errors import AccountingError, ConfigError
from curate.layout import LEDGER_SCHEMA
from curate.schema import COLUMNS, ERROR_COLUMN
from curate.steps.base import REJECT_COLUMN, Filter, Step, Transform

FAIL_FAST = 50  # a batch whose first 50 records all fail on their own is a step bug: raise

WorkerSpec = tuple[str, str, str, str, int]  # (module, registry key, params JSON, step id, seed)


@dataclass
class BatchOutcome:
    kept: pl.DataFrame
    ledger: pl.DataFrame
    quarantined: list[dict[str, Any]]
    extra: dict[str, float]
    overridden: int = 0
    flagged: dict[str, list[str]] = field(default_factory=dict)  # flag reason -> ids of kept rows


def error_type(err: str) -> str:
    """The exception type at the head of ``"<ExcType>: <msg>"``, the quarantine entry's reason."""
    head = err.split(":", 1)[0].strip()
    return head if head and " " not in head and len(head) < 60 else "error"


def quarantine_entry(step_id: str, row: dict[str, Any], reason: str, error: str) -> dict[str, Any]:
    """One line of ``quarantine/<step>.jsonl`` (layout.QUARANTINE_FIELDS) for a record with a provenance."""
    prov = row.get("provenance") or {}
    return {"step": step_id, "id": row["id"], "source": row["source"], "file": prov.get("file"),
            "record": prov.get("record"), "reason": reason, "error": error}


def empty_ledger() -> pl.DataFrame:
    return pl.DataFrame(schema=LEDGER_SCHEMA)


def ledger_frame(rows: pl.DataFrame, step_id: str, reasons: pl.Series | str,
                 duplicate_of: pl.Series | None = None, similarity: pl.Series | None = None) -> pl.DataFrame:
    """Removed rows in the ledger's schema (layout.LEDGER_SCHEMA): the record, its step and reason."""
    base = rows.select(COLUMNS)
    n = len(base)
    reason = reasons if isinstance(reasons, pl.Series) else pl.Series([reasons] * n, dtype=pl.Utf8)
    return base.with_columns(
        pl.lit(step_id, dtype=pl.Utf8).alias("step"),
        reason.alias("reason").cast(pl.Utf8),
        (duplicate_of if duplicate_of is not None else pl.Series([None] * n, dtype=pl.Utf8))
        .alias("duplicate_of").cast(pl.Utf8),
        (similarity if similarity is not None else pl.Series([None] * n, dtype=pl.Float64))
        .alias("similarity").cast(pl.Float64),
    )


def process_batch(step: Step, batch: pl.DataFrame, *, dry_run: bool = False,
                  protected: frozenset[str] = frozenset()) -> BatchOutcome:
    """Run one batch step on one batch and split the result into kept / ledger / quarantine rows.

    A step that raises on the whole batch is retried record by record, so only failing records
    are quarantined.
    """
    step.report_extra = {}
    try:
        out = _apply(step, batch, dry_run)
    except Exception as exc:
        if len(batch) == 1:
            err = f"{type(exc).__name__}: {exc}"[:500]
            return BatchOutcome(kept=batch.clear(), ledger=empty_ledger(), extra={}, quarantined=[
                quarantine_entry(step.id, batch.row(0, named=True), type(exc).__name__, err)])
        parts = []
        for i in range(len(batch)):
            part = process_batch(step, batch.slice(i, 1), dry_run=dry_run, protected=protected)
            parts.append(part)
            if i + 1 == FAIL_FAST and all(p.quarantined for p in parts):
                raise  # every record fails: a bug in the step, not bad records
        extra: Counter[str] = Counter()
        flagged: dict[str, list[str]] = {}
        for p in parts:
            extra.update(p.extra)
            for reason, ids in p.flagged.items():
                flagged.setdefault(reason, []).extend(ids)
        return BatchOutcome(
            kept=pl.concat([p.kept for p in parts], how="diagonal_relaxed"),
            ledger=pl.concat([p.ledger for p in parts], how="diagonal_relaxed"),
            quarantined=[q for p in parts for q in p.quarantined],
            extra=dict(extra),
            overridden=sum(p.overridden for p in parts),
            flagged=flagged,
        )
    return _split(step, out, protected)


def _apply(step: Step, batch: pl.DataFrame, dry_run: bool) -> pl.DataFrame:
    if isinstance(step, Filter):
        measured = step.measure(batch)
        if dry_run:
            return measured
        bad: pl.DataFrame | None = None
        ok = measured
        if ERROR_COLUMN in measured.columns:
            bad = measured.filter(pl.col(ERROR_COLUMN).is_not_null())
            ok = measured.filter(pl.col(ERROR_COLUMN).is_null())
        if len(ok):
            reasons, flags = step.decide(ok)
        else:
            reasons, flags = pl.Series([], dtype=pl.Utf8), pl.Series([], dtype=pl.Utf8)
        if len(reasons) != len(ok) or len(flags) != len(ok):
            raise AccountingError(f"{step.id}: reject_reason returned {len(reasons)} values for {len(ok)} rows")
        ok = ok.with_columns(reasons.cast(pl.Utf8).alias(REJECT_COLUMN), flags.cast(pl.Utf8).alias(step.flag_column))
        if bad is None or not len(bad):
            return ok
        return pl.concat([ok, bad], how="diagonal_relaxed")
    if isinstance(step, Transform):
        out = step.apply(batch)
        if dry_run and REJECT_COLUMN in out.columns:
            out = out.rename({REJECT_COLUMN: f"{step.id}.would_reject"})
        return out
    raise ConfigError(f"{step.id}: {type(step).__name__} is neither a Filter nor a Transform")


def _split(step: Step, out: pl.DataFrame, protected: frozenset[str]) -> BatchOutcome:
    quarantined: list[dict[str, Any]] = []
    if ERROR_COLUMN in out.columns:
        bad = out.filter(pl.col(ERROR_COLUMN).is_not_null())
        for row in bad.select("id", "source", "provenance", ERROR_COLUMN).iter_rows(named=True):
            err = row[ERROR_COLUMN]
            quarantined.append(quarantine_entry(step.id, row, error_type(err), err))
        out = out.filter(pl.col(ERROR_COLUMN).is_null()).drop(ERROR_COLUMN)
    ledger = empty_ledger()
    overridden = 0
    if REJECT_COLUMN in out.columns:
        rej = pl.col(REJECT_COLUMN).is_not_null()
        if protected:
            keep_anyway = rej & pl.col("id").is_in(list(protected))
            overridden = int(out.select(keep_anyway.sum()).item())
            rej = rej & ~pl.col("id").is_in(list(protected))
        removed = out.filter(rej)
        if len(removed):
            ledger = ledger_frame(removed, step.id, removed[REJECT_COLUMN])
        out = out.filter(~rej).drop(REJECT_COLUMN)
    flagged: dict[str, list[str]] = {}
    if isinstance(step, Filter) and step.flag_column in out.columns:
        for reason, ids in out.filter(pl.col(step.flag_column).is_not_null()).group_by(
                step.flag_column, maintain_order=True).agg(pl.col("id")).iter_rows():
            flagged[reason] = list(ids)
    return BatchOutcome(kept=out, ledger=ledger, quarantined=quarantined, extra=dict(step.report_extra),
                        overridden=overridden, flagged=flagged)


# -- the worker side: a process (pool or Ray) rebuilds each step once from its key and params -----------

_WORKER_STEPS: dict[str, Step] = {}


def importable(cls: type) -> bool:
    """A worker process can rebuild the step only from a module-level class."""
    mod = sys.modules.get(cls.__module__)
    return mod is not None and getattr(mod, cls.__name__, None) is cls and cls.__module__ != "__main__"


def runs_in_workers(step: Step) -> bool:
    """The step may run in another process: it keeps no state from prepare() and its class is importable."""
    return getattr(step, "parallel", True) and importable(type(step))


def worker_spec(step: Step) -> WorkerSpec:
    """What a worker process needs to rebuild ``step``: (module, key, params JSON, id, seed)."""
    return (type(step).__module__, step.key, step.params.model_dump_json(), step.id, step.seed)


def worker_run(spec: WorkerSpec, batch: pl.DataFrame, dry_run: bool, protected: frozenset[str]) -> BatchOutcome:
    """:func:`process_batch` in a worker process, with the step rebuilt (once per process) from ``spec``."""
    module, key, params_json, step_id, seed = spec
    cache_key = f"{key}|{step_id}|{params_json}|{seed}"
    step = _WORKER_STEPS.get(cache_key)
    if step is None:
        from curate.steps.registry import get_step

        importlib.import_module(module)  # steps from plugin modules register on import
        cls = get_step(key)
        step = cls(cls.Params.model_validate_json(params_json), step_id=step_id, seed=seed)
        _WORKER_STEPS[cache_key] = step
    return process_batch(step, batch, dry_run=dry_run, protected=protected)
