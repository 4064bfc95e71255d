"""The Ray executor: the same plan, every step on a Ray cluster over sharded step outputs.

``executor: {kind: ray}`` in a recipe (or ``curate run --set executor.kind=ray``) starts a local
cluster; ``executor: {kind: ray, address: auto}`` (or ``--ray-address ADDR``, or ``RAY_ADDRESS``)
joins one. The runner keeps what it does for the local executor (the resume cache with ``done.json``
per step, label protection, the balance check after every step, the report) and hands each step to
:class:`RayExecutor`, which runs it where the data is:

* **Ingest** (:mod:`curate.pipeline.ray.ingest`): one task per file, or per record range of a big JSONL
  file; each task writes its shard of ``00_ingest/kept.parquet/``, its quarantine entries and counts.
* **Batch steps** (:mod:`curate.pipeline.ray.batch`): one task per shard runs the step on the shard's
  Arrow batches and writes the kept shard, the ledger shard and the quarantine shard beside it.
* **Global steps**: ``dedup.exact`` and ``dedup.minhash`` (:mod:`curate.pipeline.ray.dedup`), the embed
  steps (:mod:`curate.pipeline.ray.embed`), ``dedup.semantic`` (:mod:`curate.pipeline.ray.semantic`),
  ``score.diversity`` (:mod:`curate.pipeline.ray.diversity`) and ``score.map``
  (:mod:`curate.pipeline.ray.maps`) run distributed and send the driver only their decisions, counts
  and small samples; a scorer's per-record columns are written per shard by its tasks. Any other global
  step (``label.apply``, writers, ``score.llm_judge``, ``dedup.semantic`` in ``knn`` mode) runs in the
  driver on a LazyFrame over the shards, as it does locally. Either way the decisions, scores and
  quarantine are written into every shard by one task per shard (:mod:`curate.pipeline.ray.book`).
  The few tasks that work on the whole set alone (a k-means trained on every vector, the embedding
  index, the per-record nn_dist) ask for every CPU of a node and run faiss and BLAS on that many
  threads; the seeded UMAP fit is single-threaded and takes one.

Shard ``i`` of every step comes from shard ``i`` of the step before, each task writes its files under
temporary names and renames them, and its counts file last; the driver reads one counts file per
shard id and adds them up. So a task that Ray runs again (its worker or node died) leaves no duplicate
rows, and the balance check ``n_in + n_added == n_out + rejected + quarantined`` is exactly the local
one. Reading a step's shards in name order gives its rows in the local executor's order, and the
records' ids are the local ones: a Ray run keeps the same records, with the same ledger and groups.

The run directory must be on a filesystem every node sees (one machine, NFS, a cluster filesystem);
the driver never reads a step's rows, only counts, decisions, samples and the results of the global
steps that still run in it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable
from typing import Any

import polars as pl

from curate.errors import AccountingError
from curate.layout import INGEST_ID, StepFolder
from curate.pipeline.books import settle_batch_step
from curate.pipeline.global_step import settle_result
from curate.pipeline.protection import LABEL_STEP
from curate.pipeline.ray import ingest as ring
from curate.pipeline.ray.batch import run_batch_shard, step_for_workers
from curate.pipeline.ray.book import ShardPart, ShardSettle, book_shard, split_by_shard
from curate.pipeline.ray.cluster import INSTALL_HINT, Cluster, for_each, require_ray
from curate.pipeline.ray.shards import (
    InputShard,
    add_up,
    conform_shard,
    input_shards,
    read_counts,
    target_schema,
    unify_schemas,
)
from curate.pipeline.spec import ExecutorSpec, Plan
from curate.steps.base import GlobalResult, GlobalStep, Step, StepContext, StepReport

__all__ = ["INSTALL_HINT", "RayExecutor", "require_ray"]

log = logging.getLogger(__name__)

# A distributed global step: its result (as step.run returns it) and the shard of every id it names.
Distributed = Callable[[GlobalStep, list[InputShard], StepFolder, StepContext, "RayExecutor"],
                       tuple[GlobalResult, pl.DataFrame | None]]


def distributed_of(step: Step) -> Distributed | None:
    """The distributed implementation of a global step, or None (it then runs in the driver)."""
    from curate.pipeline.ray.dedup import run_exact, run_minhash
    from curate.pipeline.ray.diversity import run_diversity
    from curate.pipeline.ray.embed import run_embed
    from curate.pipeline.ray.maps import run_map
    from curate.pipeline.ray.semantic import run_semantic
    from curate.steps.embed.base import Embedder

    if isinstance(step, Embedder):
        return run_embed
    return {"dedup.exact": run_exact, "dedup.minhash": run_minhash, "dedup.semantic": run_semantic,
            "score.diversity": run_diversity, "score.map": run_map}.get(step.key)


def n_buckets(n_shards: int) -> int:
    """Buckets of a shuffle: about one per shard, at most 256 (a bucket task gathers one file per shard)."""
    return max(1, min(256, n_shards))


class RayExecutor:
    """Runs the ingest and every step of a plan on a Ray cluster (see the module docstring)."""

    def __init__(self, address: str | None = None, spec: ExecutorSpec | None = None) -> None:
        self.cluster = Cluster(address)  # fails at once if Ray is not installed
        self.spec = spec or ExecutorSpec(kind="ray")
        self.progress = False
        self.rounds: list[tuple[str, int, float]] = []  # (name, items, seconds) of every round of tasks

    @property
    def ray(self) -> Any:
        return self.cluster.ray

    def run(self, name: str, fn: Callable[[int], dict[str, Any]], items: Iterable[int], *, whole_node: bool = False,
            **kw: Any) -> list[dict[str, Any]]:
        """``fn(item)`` for every item on the cluster (see :func:`for_each`); results in item order.

        ``whole_node``: each item works on the whole set alone (a k-means over every vector, an index):
        it asks for every CPU of the largest node and runs faiss and BLAS on that many threads."""
        todo = list(items)
        if whole_node:
            kw["num_cpus"] = float(self.cluster.node_cpus())
        t0 = time.perf_counter()
        out = dict(for_each(name, fn, todo, **kw))
        self.rounds.append((name, len(todo), time.perf_counter() - t0))
        log.debug("%s: %d tasks in %.1fs", name, len(todo), time.perf_counter() - t0)
        return [out[k] for k in sorted(out)]

    # -- ingest -------------------------------------------------------------------------------------
    def ingest(self, plan: Plan, inputs: dict[str, list[str]], folder: StepFolder, *, limit: int | None,
               batch_size: int, progress: bool) -> tuple[StepReport, dict[str, dict[str, Any]]]:
        ray = self.cluster.ensure(progress)
        self.progress = progress
        readers = [(src.id, src.subset, reader) for src, reader in plan.readers]
        shards = ring.plan_shards(readers, inputs, self.spec.shard_rows, limit)  # type: ignore[arg-type]
        refs = [ray.put(reader) for _, _, reader in readers]
        buckets = n_buckets(len(shards))

        def read(i: int) -> dict[str, Any]:
            sh = shards[i]
            return ring.read_shard(i, sh, ray.get(refs[sh.source]), folder, batch_size=batch_size, limit=limit,
                                   n_buckets=buckets)

        self.run("ingest", read, range(len(shards)))
        self.run("ingest_ids", lambda b: ring.offsets_of_bucket(b, folder), range(buckets))
        self.run("ingest_fix_ids", lambda i: ring.fix_shard(i, folder), ring.shards_to_fix(folder))
        parts = read_counts(folder, len(shards))
        rep = StepReport(step_id=INGEST_ID, kind="read")
        add_up(parts, rep)
        formats = {src.id: src.format for src, _ in plan.readers}
        stats = ring.source_stats_of(parts, readers, formats)  # type: ignore[arg-type]
        rep.extra = {f"{sid}.read": s["read"] for sid, s in stats.items()}
        ring.write_source_stats(folder, stats)
        self._finish(folder, len(shards))
        return rep, stats

    # -- steps --------------------------------------------------------------------------------------
    def run_step(self, step: Step, prev: StepFolder, folder: StepFolder, ctx: StepContext, rep: StepReport, *,
                 dry_run: bool, protected: frozenset[str]) -> None:
        self.cluster.ensure(ctx.progress)
        self.progress = ctx.progress
        shards = input_shards(prev, self.spec.shard_rows)
        if isinstance(step, GlobalStep):
            self._global(step, shards, prev, folder, ctx, rep, dry_run=dry_run)
        else:
            self._batch(step, shards, folder, ctx, rep, dry_run=dry_run, protected=protected)
        self._finish(folder, len(shards))

    def _batch(self, step: Step, shards: list[InputShard], folder: StepFolder, ctx: StepContext, rep: StepReport,
               *, dry_run: bool, protected: frozenset[str]) -> None:
        step.report_extra = {}
        step.prepare(ctx)
        prepared = dict(step.report_extra)
        spec = step_for_workers(step)
        bs = self.spec.batch_size
        if spec is None:  # state from prepare(), or a class workers cannot import: in the driver, shard by shard
            for i, shard in enumerate(shards):
                run_batch_shard(i, shard, folder, step, batch_size=bs, dry_run=dry_run, protected=protected)
        else:
            ray = self.ray
            prot = ray.put(protected)
            self.run(step.id, lambda i: run_batch_shard(i, shards[i], folder, spec, batch_size=bs, dry_run=dry_run,
                                                        protected=ray.get(prot)), range(len(shards)))
        parts = read_counts(folder, len(shards))
        extra, overridden = add_up(parts, rep)
        settle_batch_step(step, rep, extra, prepared, overridden)

    def _global(self, step: GlobalStep, shards: list[InputShard], prev: StepFolder, folder: StepFolder,
                ctx: StepContext, rep: StepReport, *, dry_run: bool) -> None:
        rep.n_in = sum(s.num_rows() for s in shards)
        step.prepare(ctx)
        step.report_extra = {}
        impl = distributed_of(step)
        if impl is not None:
            result, shard_of = impl(step, shards, folder, ctx, self)
        else:  # in the driver, as the local executor runs it, on a LazyFrame over every shard
            result, shard_of = step.run(pl.scan_parquet(prev.kept), ctx), None
        settled = settle_result(step, result, ctx, rep, dry_run=dry_run)
        ray = self.ray
        split = split_by_shard(settled, shard_of, len(shards))
        if split is None:
            whole = ray.put(ShardPart(settled.decisions, settled.scores, settled.quarantined, settled.decided))
            refs = [whole] * len(shards)
        else:
            refs = [ray.put(p) for p in split]
        sid = step.id  # the closure sent to the cluster carries the id, not the step (a model, an index)
        protected = ctx.protected_ids if step.key != LABEL_STEP else frozenset()
        settle = ray.put(ShardSettle(protected=frozenset(protected), dry_run=dry_run))
        self.run(sid, lambda i: book_shard(i, shards[i], folder, sid, ray.get(refs[i]), ray.get(settle)),
                 range(len(shards)))
        parts = read_counts(folder, len(shards))
        for c in parts:
            rep.n_out += c.n_out
            rep.rejected.update(c.rejected)
            rep.quarantined.update(c.quarantined)
        by_label = sum(int(c.more.get("kept_by_label", 0)) for c in parts)  # decisions the tasks wrote per shard
        if by_label:
            rep.extra["kept_by_label"] = rep.extra.get("kept_by_label", 0) + by_label
        found = sum(int(c.more.get("decided_here", 0)) for c in parts)
        decided = len(settled.decided) + sum(int(c.more.get("decided_total", 0)) for c in parts)
        if found != decided:
            raise AccountingError(f"step {step.id} decided about {decided - found} ids not in its input")
        rep.extra.update(step.report_extra)

    def _finish(self, folder: StepFolder, n_shards: int) -> None:
        """Give every kept shard the step's schema, then drop the step's scratch files."""
        bad = unify_schemas(folder, n_shards)
        if bad:
            import pyarrow.parquet as pq

            target = target_schema([pq.read_schema(folder.kept_shard(i)) for i in range(n_shards)],
                                   [pq.ParquetFile(folder.kept_shard(i)).metadata.num_rows for i in range(n_shards)])
            self.run(f"{folder.step_id}_schema", lambda i: _conform(folder, i, target), bad)
        shutil.rmtree(folder.work, ignore_errors=True)

    def close(self) -> None:
        """Disconnect from (or stop) a cluster this executor started Ray for; a session it found stays up."""
        self.cluster.close()


def _conform(folder: StepFolder, i: int, target: Any) -> dict[str, Any]:
    conform_shard(folder, i, target)
    return {}
