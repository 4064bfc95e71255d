"""The Ray executor: the same plan, with batch steps run as Ray tasks, and byte-for-byte the same outputs.

``executor: {kind: ray}`` in a recipe (or ``curate run --set executor.kind=ray``) makes the runner hand
every parallel batch step to :class:`RayExecutor`; ``curate run --ray-address ADDR`` joins an existing
cluster instead of starting a local one (``RAY_ADDRESS`` in the environment works too). Everything else
stays in the driver, exactly as with the local executor:

* **Batch steps** (filters, transforms): the driver reads the previous step's ``kept.parquet`` in the
  very batches the local executor uses (``pq.ParquetFile.iter_batches(batch_size)``), submits each as
  one Ray task that runs the module-level :func:`curate.pipeline.batches.process_batch` (through
  ``worker_run``, which rebuilds the step from its registry key and params once per worker process,
  as the local process pool does), and takes the :class:`BatchOutcome` s back **in submission order**.
  The runner then writes kept rows, ledger, quarantine and ``report_extra`` with the same sinks and
  checks the same invariants. At most ``2 x cluster CPUs`` batches are in flight, so driver and object
  store memory stay bounded.
* **Steps with** ``parallel = False`` (state from ``prepare()``, e.g. ``filter.source`` with
  ``drop_if``) and steps whose class a worker cannot import (defined in ``__main__`` or inside a
  function) run in the driver, in-process, as with the local executor.
* **Global steps** (dedup, embed, scorers, label.apply) run in the driver on a LazyFrame over the
  previous step's Parquet, unchanged: they need the whole dataset (an index, a matrix) at once, and
  their FAISS/MinHash/BLAS work already uses every core of the machine they run on.
* Ingest (readers) runs in the driver too: it enforces unique ids across sources in one pass.

Why Ray tasks over the runner's own batches, and not ``ray.data.read_parquet(...).map_batches(fn,
batch_format="pyarrow")``:

1. *Same batches, same bytes.* Ray Data cuts its own blocks and batches (by file, row group and
   its target block size) and may coalesce or split them. The local executor's batch boundaries
   decide the row groups of every ``kept.parquet`` (one ``write_table`` per batch), which 50 records
   ``process_batch``'s per-record retry looks at (``FAIL_FAST``), and the per-batch
   ``report_extra`` totals. Reusing the runner's batches makes equality hold by construction rather
   than by tuning ``batch_size`` and ``preserve_order`` and hoping the block layout matches.
2. *Exact accounting without smuggling.* ``map_batches`` returns one table per batch; the ledger,
   the quarantine entries and the step's ``report_extra`` would have to ride along in extra columns
   or a side channel. A task returns the whole ``BatchOutcome``, and the driver counts it exactly as
   the local executor does.
3. *No shared filesystem.* Batches travel through the object store and results come back to the
   driver, which owns the run directory; workers on other nodes never read or write it.

The cost: every batch passes through the driver twice (read, then write), so throughput is bounded
by one process's Parquet I/O (hundreds of thousands of records/s), which pays off for per-record
Python steps (language ID, repetition, PII, HTML) where the CPU time is in the step. Cluster nodes
need the same ``curate`` (and the steps' extras) installed; steps are looked up by registry key.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import Any

import polars as pl

from curate.errors import MissingResourceError
from curate.pipeline.batches import BatchOutcome, runs_in_workers, worker_run, worker_spec
from curate.steps.base import Step

INSTALL_HINT = "pip install 'curate[ray]'"
_MAX_IN_FLIGHT = 256  # batches held in the object store at once, whatever the cluster size


def require_ray() -> Any:
    """Import ray, or fail at once with the install command."""
    try:
        import ray
    except ImportError as e:
        raise MissingResourceError(
            f"executor.kind is 'ray' but Ray is not installed ({e}); install it with: {INSTALL_HINT} "
            "(or run with --set executor.kind=local)"
        ) from e
    return ray


class RayExecutor:
    """Runs batch steps as Ray tasks; started lazily on the first batch step that needs it.

    ``address=None`` reuses a Ray session this process already has (a notebook, a test fixture) or
    starts a local cluster, shut down again by :meth:`close`; an address joins that cluster.
    """

    def __init__(self, address: str | None = None) -> None:
        self.ray = require_ray()
        self.address = address
        self._started = False
        self._task: Any = None
        self.in_flight = 0

    def _ensure(self) -> Any:
        ray = self.ray
        if not ray.is_initialized():
            if self.address is None and not os.environ.get("RAY_ADDRESS"):
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # local-first: no usage reports
            ray.init(address=self.address, include_dashboard=False)
            self._started = True
        if self._task is None:
            self._task = ray.remote(num_cpus=1)(worker_run)
            cpus = int(ray.cluster_resources().get("CPU", 1))
            self.in_flight = max(2, min(2 * cpus, _MAX_IN_FLIGHT))
        return ray

    def takes(self, step: Step, n_rows: int) -> bool:
        """Every step that may run in another process; the rest run in the driver."""
        return runs_in_workers(step)

    def outcomes(self, step: Step, batches: Iterator[pl.DataFrame], *, dry_run: bool,
                 protected: frozenset[str]) -> Iterator[BatchOutcome]:
        """``process_batch(step, batch)`` for every batch on the cluster, yielded in input order."""
        ray = self._ensure()
        spec = worker_spec(step)
        prot = ray.put(protected) if protected else protected  # one copy per step, not per task
        window: deque[Any] = deque()
        try:
            for batch in batches:
                window.append(self._task.remote(spec, batch, dry_run, prot))
                if len(window) >= self.in_flight:
                    yield self._get(window.popleft())
            while window:
                yield self._get(window.popleft())
        finally:
            for ref in window:  # a failed batch or an abandoned generator: stop the rest
                ray.cancel(ref)

    def _get(self, ref: Any) -> BatchOutcome:
        try:
            out: BatchOutcome = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:
            # The step's own exception (e.g. AccountingError), as the local executor raises it;
            # Ray's remote traceback stays attached as the cause.
            if isinstance(e.cause, Exception):
                raise e.cause from e
            raise
        return out

    def close(self) -> None:
        """Shut down the local cluster this executor started; a joined or reused session stays up."""
        if self._started:
            self.ray.shutdown()
            self._started = False
        self._task = None
