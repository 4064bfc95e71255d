"""Executors: where a step's work runs.

The local executor (``executor.kind: local``) runs the batches of a batch step; one interface, two kinds:

* :class:`InProcess` runs every batch in the driver (always possible; steps with state from
  ``prepare()`` and small inputs run here);
* :class:`ProcessPool` runs batches in ``executor.workers`` spawned processes.

:class:`Executors` picks, per step, the first that takes it. Each yields :class:`BatchOutcome` s in
input order, so the runner's books, and the files they write, are the same whichever ran the batches.

``executor.kind: ray`` hands whole steps to a :class:`StepExecutor`
(:class:`curate.pipeline.ray_executor.RayExecutor`): the ingest and every step run where the data is,
on sharded step outputs, and the driver only sequences them and reads the per-shard counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor as _Pool
from typing import Any, Protocol

import polars as pl

from curate.errors import ConfigError
from curate.layout import StepFolder
from curate.pipeline.batches import BatchOutcome, process_batch, runs_in_workers, worker_run, worker_spec
from curate.pipeline.spec import ExecutorSpec, Plan
from curate.steps.base import Step, StepContext, StepReport


class BatchExecutor(Protocol):
    def takes(self, step: Step, n_rows: int) -> bool:
        """Whether this executor runs ``step`` over an input of ``n_rows`` records."""
        ...

    def outcomes(self, step: Step, batches: Iterator[pl.DataFrame], *, dry_run: bool,
                 protected: frozenset[str]) -> Iterator[BatchOutcome]:
        """``process_batch(step, batch)`` for every batch, yielded in input order."""
        ...

    def close(self) -> None: ...


class StepExecutor(Protocol):
    """Runs whole steps where the data lives; the runner keeps the cache, the checks and the report."""

    def ingest(self, plan: Plan, inputs: dict[str, list[str]], folder: StepFolder, *, limit: int | None,
               batch_size: int, progress: bool) -> tuple[StepReport, dict[str, dict[str, Any]]]:
        """Read every source into ``folder``; the ingest's report and the per-source counts."""
        ...

    def run_step(self, step: Step, prev: StepFolder, folder: StepFolder, ctx: StepContext, rep: StepReport, *,
                 dry_run: bool, protected: frozenset[str]) -> None:
        """Run ``step`` over ``prev``'s kept rows into ``folder``, filling ``rep`` (n_in, n_out, reasons...)."""
        ...

    def close(self) -> None: ...


class InProcess:
    """Every batch in the driver, one after the other."""

    def takes(self, step: Step, n_rows: int) -> bool:
        return True

    def outcomes(self, step: Step, batches: Iterator[pl.DataFrame], *, dry_run: bool,
                 protected: frozenset[str]) -> Iterator[BatchOutcome]:
        for batch in batches:
            yield process_batch(step, batch, dry_run=dry_run, protected=protected)

    def close(self) -> None:
        pass


class ProcessPool:
    """Batches in ``workers`` spawned processes, at most ``2 x workers`` in flight; started on first use."""

    def __init__(self, workers: int, batch_size: int) -> None:
        self.workers = workers
        self.batch_size = batch_size
        self._pool: _Pool | None = None

    def takes(self, step: Step, n_rows: int) -> bool:
        return self.workers > 1 and n_rows > 2 * self.batch_size and runs_in_workers(step)

    def outcomes(self, step: Step, batches: Iterator[pl.DataFrame], *, dry_run: bool,
                 protected: frozenset[str]) -> Iterator[BatchOutcome]:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = _Pool(self.workers, mp_context=mp.get_context("spawn"))
        spec = worker_spec(step)
        window: list[Future[BatchOutcome]] = []
        for batch in batches:
            window.append(self._pool.submit(worker_run, spec, batch, dry_run, protected))
            if len(window) >= 2 * self.workers:
                yield window.pop(0).result()
        for fut in window:
            yield fut.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class Executors:
    """The executors of one run, in order of preference; :meth:`for_step` picks the first that takes a step."""

    def __init__(self, spec: ExecutorSpec, ray_address: str | None = None) -> None:
        self.chain: list[BatchExecutor] = []
        self.whole_steps: StepExecutor | None = None  # set: every step runs there, not in this process
        if spec.kind == "ray":
            from curate.pipeline.ray_executor import RayExecutor

            # fails at once if Ray is not installed
            self.whole_steps = RayExecutor(ray_address or spec.address, spec)
        elif ray_address is not None or spec.address is not None:
            raise ConfigError(f"a Ray address ({ray_address or spec.address}) was given but executor.kind is "
                              f"{spec.kind!r}; set executor.kind=ray")
        self.chain += [ProcessPool(spec.workers, spec.batch_size), InProcess()]

    def for_step(self, step: Step, n_rows: int) -> BatchExecutor:
        return next(ex for ex in self.chain if ex.takes(step, n_rows))

    def close(self) -> None:
        for ex in self.chain:
            ex.close()
        if self.whole_steps is not None:
            self.whole_steps.close()
