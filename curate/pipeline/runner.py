"""The runner: drives a validated plan over a run directory, one step after the other.

It only sequences the parts that do the work:

* :mod:`curate.pipeline.ingest` reads every source into ``00_ingest``;
* :mod:`curate.pipeline.executors` runs a batch step's batches (in process, process pool or Ray) and
  :mod:`curate.pipeline.batches` splits each into kept / ledger / quarantine rows;
* :mod:`curate.pipeline.global_step` runs a global step on the whole previous output;
* :mod:`curate.pipeline.books` writes and counts where every record went and checks that it balances;
* :mod:`curate.pipeline.cache` skips finished steps (``done.json`` fingerprints) and reuses unchanged
  steps of the recipe's latest run; :mod:`curate.pipeline.protection` applies the browser's labels;
* :mod:`curate.pipeline.report` and :mod:`curate.pipeline.manifest` write what the run did.

Every path comes from :class:`curate.layout.RunLayout`. Steps never see the runner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import yaml

from curate import __version__
from curate.errors import ConfigError
from curate.layout import RunLayout, StepFolder
from curate.pipeline.books import BatchBooks, check_step
from curate.pipeline.cache import StepCache, digest
from curate.pipeline.executors import Executors
from curate.pipeline.global_step import run_global
from curate.pipeline.ingest import cached_source_stats, ingest_fingerprint, input_files, read_sources
from curate.pipeline.manifest import write_manifest
from curate.pipeline.protection import Protection, load_protection, report_unmatched
from curate.pipeline.report import build_report, format_line, write_report
from curate.pipeline.spec import Plan, preflight
from curate.rundir import RunLock, write_text_atomic
from curate.schema import conform
from curate.steps.base import REJECT_COLUMN, GlobalStep, Step, StepContext, StepReport
from curate.steps.write.base import TRIAL_EXPORT, Writer

__all__ = ["REJECT_COLUMN", "RunResult", "Runner", "check_limit", "default_run_dir", "run_pipeline", "trial_reason"]


@dataclass
class RunResult:
    run_dir: Path
    reports: list[StepReport]
    report: dict[str, Any]
    seconds: float = 0.0
    cached_steps: list[str] = field(default_factory=list)


class Runner:
    def __init__(self, plan: Plan, run_dir: Path, *, force: bool = False, limit: int | None = None,
                 dry_run: bool = False, progress: bool | None = None, reuse_from: Path | None = None,
                 labels_path: Path | None = None, log: Callable[[str], None] | None = None,
                 ray_address: str | None = None) -> None:
        check_limit(limit)
        self.run_dir = run_dir
        self.layout = RunLayout(run_dir)
        self.limit = limit
        self.dry_run = dry_run
        self.trial = trial_reason(dry_run, limit)
        self.plan = self._redirect_writers(plan) if self.trial else plan
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.labels_path = labels_path
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.batch_size = plan.spec.executor.batch_size
        self.executors = Executors(plan.spec.executor, ray_address)  # fails at once if Ray is missing
        self.cache = StepCache(self.layout, force=force, reuse_from=reuse_from, log=self.log)
        self.reports: list[StepReport] = []
        self.source_stats: dict[str, dict[str, Any]] = {}
        self.protection = Protection()
        self.cached: list[str] = []

    def _folder(self, i: int) -> StepFolder:
        """The folder of step ``i`` (1-based; 0 is the ingest)."""
        return self.layout.step(i, self.plan.steps[i - 1].id if i else "")

    def _redirect_writers(self, plan: Plan) -> Plan:
        """A trial run's writers write into their own step folder of the run, never to the recipe's path."""
        steps: list[Step] = []
        for i, step in enumerate(plan.steps, start=1):
            if isinstance(step, Writer) and step.target() is not None:
                step = step.redirected(self.layout.step(i, step.id).path.absolute() / TRIAL_EXPORT)
            steps.append(step)
        return dataclasses.replace(plan, steps=steps)

    # -- top level ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Check what the run needs, lock the run directory, run every step, write the report."""
        preflight(self.plan, check_writers=not self.trial)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(self.run_dir):
            try:
                return self._run_locked()
            finally:
                self.executors.close()

    def _run_locked(self) -> RunResult:
        t0 = time.perf_counter()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for sub in (self.layout.ledger_dir, self.layout.quarantine_dir):
            sub.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.layout.spec, yaml.safe_dump(self.plan.resolved(), sort_keys=False, allow_unicode=True))
        if self.trial:
            for step in self.plan.steps:
                if isinstance(step, Writer):
                    self.log(f"trial run ({self.trial}): {step.id} writes to {step.target()} inside the run "
                             "directory; the recipe's output folder is left alone")
        inputs = input_files(self.plan)
        write_manifest(self.layout, self.plan, inputs, started)  # input hashes as this run read them
        self.protection = load_protection(self.plan.steps, self.run_dir, self.labels_path)
        fp = self._ingest(inputs)
        for i, step in enumerate(self.plan.steps, start=1):
            fp = self._run_step(i, step, fp)
        self.cache.prune({self._folder(i).name for i in range(len(self.plan.steps) + 1)})
        head = {"name": self.plan.spec.name, "run_dir": str(self.run_dir), "recipe_hash": self.plan.recipe_hash(),
                "started": started, "seconds": round(time.perf_counter() - t0, 2), "dry_run": self.dry_run,
                "limit": self.limit}
        report = build_report(self.layout, self._folder(len(self.plan.steps)), reports=self.reports,
                              source_stats=self.source_stats, head=head)
        write_report(self.layout, report)
        return RunResult(self.run_dir, self.reports, report, time.perf_counter() - t0, self.cached)

    # -- the steps ----------------------------------------------------------------------------------
    def _ingest(self, inputs: dict[str, list[str]]) -> str:
        folder = self.layout.ingest
        fp = ingest_fingerprint(self.plan, inputs, self.limit)
        cached = self.cache.lookup(folder, fp)
        stats = cached_source_stats(folder) if cached is not None else None
        if cached is not None and stats is not None:
            self.source_stats = stats
            self._record(cached, cached=True)
            return fp
        self.cache.clear(folder)
        folder.path.mkdir(parents=True)
        t0 = time.perf_counter()
        whole = self.executors.whole_steps
        if whole is not None:  # executor.kind ray: sharded, on the cluster
            rep, self.source_stats = whole.ingest(self.plan, inputs, folder, limit=self.limit,
                                                  batch_size=self.batch_size, progress=self.progress)
        else:
            rep, self.source_stats = read_sources(self.plan, inputs, folder, limit=self.limit,
                                                  batch_size=self.batch_size, bar=self._bar)
        rep.seconds = time.perf_counter() - t0
        self._finish(folder, fp, rep)
        return fp

    def _run_step(self, i: int, step: Step, prev_fp: str) -> str:
        folder, prev = self._folder(i), self._folder(i - 1).kept
        fp = digest({"prev": prev_fp, "step": step.fingerprint(), "version": __version__, "dry_run": self.dry_run,
                     "labels": self.protection.digest})
        cached = self.cache.lookup(folder, fp)
        if cached is not None:
            self._record(cached, cached=True)
            return fp
        self.cache.clear(folder)
        folder.path.mkdir(parents=True)
        t0 = time.perf_counter()
        rep = StepReport(step_id=step.id, kind=step.kind)
        whole = self.executors.whole_steps
        if whole is not None:  # executor.kind ray: the step runs on the cluster, over shards
            whole.run_step(step, self._folder(i - 1), folder, self._context(step, folder, prev), rep,
                           dry_run=self.dry_run, protected=self.protection.keep)
            if step.scope == "global":
                report_unmatched(step, rep, self.run_dir, pl.scan_parquet(self.layout.ingest.kept), self.labels_path)
        elif step.scope == "global":
            assert isinstance(step, GlobalStep)
            run_global(step, prev, folder, self._context(step, folder, prev), rep, dry_run=self.dry_run)
            report_unmatched(step, rep, self.run_dir, pl.scan_parquet(self.layout.ingest.kept), self.labels_path)
        else:
            self._run_batches(step, prev, folder, rep)
        rep.seconds = time.perf_counter() - t0
        self._finish(folder, fp, rep)
        return fp

    def _run_batches(self, step: Step, prev: Path, folder: StepFolder, rep: StepReport) -> None:
        step.report_extra = {}
        step.prepare(self._context(step, folder, prev))
        prepared = dict(step.report_extra)
        files = self.layout.folder(prev.parent).kept_files()  # one file, or shards from a Ray run it reuses
        rep.n_in = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        books = BatchBooks(folder, rep)
        executor = self.executors.for_step(step, rep.n_in)
        bar = self._bar(step.id, rep.n_in)
        try:
            for oc in executor.outcomes(step, self._batches(files), dry_run=self.dry_run,
                                        protected=self.protection.keep):
                n = books.add(oc)
                if bar is not None:
                    bar.update(n)
        finally:
            if bar is not None:
                bar.close()
            books.close(empty_like=pl.scan_parquet(prev).head(0).collect())
        books.settle(step, prepared)

    def _context(self, step: Step, folder: StepFolder, prev: Path) -> StepContext:
        return StepContext(
            run_dir=self.run_dir, work_dir=folder.path, seed=self.plan.spec.seed,
            extra={"spec": self.plan.resolved(), "reports": [r.to_json() for r in self.reports],
                   "labels_path": str(self.labels_path) if self.labels_path else None,
                   "dry_run": self.dry_run, "trial": self.trial, "source_stats": self.source_stats},
            protected_ids=self.protection.keep, not_duplicate_ids=self.protection.for_step(step),
            progress=self.progress, input_path=prev,
        )

    def _finish(self, folder: StepFolder, fp: str, rep: StepReport) -> None:
        check_step(rep, self.plan.spec.limits.max_quarantine_frac, self.layout.quarantine_dir)
        self.cache.finish(folder, fp, rep)
        self._record(rep)

    def _record(self, rep: StepReport, cached: bool = False) -> None:
        if cached:
            rep.cached = True
            self.cached.append(rep.step_id)
        self.reports.append(rep)
        self.log(format_line(rep))

    def _bar(self, desc: str, total: int | None = None) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="rec", unit_scale=True, leave=False, file=sys.stderr)

    def _batches(self, files: list[Path]) -> Iterator[pl.DataFrame]:
        for path in files:
            for rb in pq.ParquetFile(path).iter_batches(batch_size=self.batch_size):
                yield conform(pl.from_arrow(rb))  # type: ignore[arg-type]


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
