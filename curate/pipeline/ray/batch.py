"""A batch step (filter, transform) over every shard: each task books its own shard.

A task reads its input shard as Arrow record batches of ``executor.batch_size`` rows
(``pl.from_arrow``, zero-copy), runs :func:`curate.pipeline.batches.process_batch` on each (through
``worker_run``, which rebuilds the step from its registry key and params once per worker process, as
the local process pool does), and writes the kept rows, the ledger rows and the quarantine entries
of its shard with the runner's own :class:`curate.pipeline.books.BatchBooks`, then its counts. The
driver adds the counts up and applies the same checks as the local runner
(:func:`curate.pipeline.books.settle_batch_step`, then ``check_step``).

Steps that must see every batch in one process (``parallel = False``: state from ``prepare()``) and
steps whose class a worker cannot import run in the driver, one shard after the other, through the
same function: the driver then holds one batch at a time.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from curate.layout import StepFolder
from curate.pipeline.batches import WorkerSpec, process_batch, runs_in_workers, worker_run, worker_spec
from curate.pipeline.books import BatchBooks
from curate.pipeline.ray.shards import InputShard, ShardCounts, ShardFiles
from curate.schema import conform
from curate.steps.base import Step, StepReport


def run_batch_shard(i: int, shard: InputShard, folder: StepFolder, step: Step | WorkerSpec, *, batch_size: int,
                    dry_run: bool, protected: frozenset[str]) -> dict[str, Any]:
    """Process input shard ``i`` into output shard ``i`` of ``folder``; returns its counts (also saved)."""
    files = ShardFiles.of(folder, i)
    rep = StepReport(step_id="", kind="")
    books = BatchBooks(files, rep)
    empty = pl.from_arrow(shard.schema().empty_table())
    try:
        for rb in shard.batches(batch_size):
            batch = conform(pl.from_arrow(rb))  # type: ignore[arg-type]
            rep.n_in += len(batch)
            if isinstance(step, Step):
                oc = process_batch(step, batch, dry_run=dry_run, protected=protected)
            else:
                oc = worker_run(step, batch, dry_run, protected)
            books.add(oc)
    finally:
        books.close(empty_like=empty)  # type: ignore[arg-type]
    files.commit()
    counts = ShardCounts.of_report(i, rep, Counter(books.extra), books.overridden)
    counts.save(folder)
    return counts.to_json()


def step_for_workers(step: Step) -> WorkerSpec | None:
    """How a worker rebuilds ``step`` (registry key and params), or None when it must run in the driver."""
    return worker_spec(step) if runs_in_workers(step) else None
