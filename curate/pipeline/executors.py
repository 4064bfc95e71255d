"""Executors: where a batch step's batches run. One interface, three kinds.

* :class:`InProcess` runs every batch in the driver (always possible; steps with state from
  ``prepare()`` and small inputs run here);
* :class:`ProcessPool` runs batches in ``executor.workers`` spawned processes (local executor);
* :class:`curate.pipeline.ray_executor.RayExecutor` runs them as Ray tasks (``executor.kind: ray``).

:class:`Executors` picks, per step, the first that takes it. Each yields :class:`BatchOutcome` s in
input order, so the runner's books, and the files they write, are the same whichever ran the batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor as _Pool
from typing import Protocol

import polars as pl

from curate.errors import ConfigError
from curate.pipeline.batches import BatchOutcome, process_batch, runs_in_workers, worker_run, worker_spec
from curate.pipeline.spec import ExecutorSpec
from curate.steps.base import Step


class BatchExecutor(Protocol):
    def takes(self, step: Step, n_rows: int) -> bool:
        """Whether this executor runs ``step`` over an input of ``n_rows`` records."""
        ...

    def outcomes(self, step: Step, batches: Iterator[pl.DataFrame], *, dry_run: bool,
                 protected: frozenset[str]) -> Iterator[BatchOutcome]:
        """``process_batch(step, batch)`` for every batch, yielded in input order."""
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
        if spec.kind == "ray":
            from curate.pipeline.ray_executor import RayExecutor

            self.chain.append(RayExecutor(ray_address))  # fails at once if Ray is not installed
        elif ray_address is not None:
            raise ConfigError(f"a Ray address ({ray_address}) was given but executor.kind is "
                              f"{spec.kind!r}; set executor.kind=ray")
        self.chain += [ProcessPool(spec.workers, spec.batch_size), InProcess()]

    def for_step(self, step: Step, n_rows: int) -> BatchExecutor:
        return next(ex for ex in self.chain if ex.takes(step, n_rows))

    def close(self) -> None:
        for ex in self.chain:
            ex.close()
