"""The Ray executor's shard logic, in this process (no cluster): shards, id fix-ups, shuffles, dedup, embed.

``in_process`` replaces the cluster with a loop: every round of tasks runs here, one item after the
other, through the same functions the tasks run (results pass through JSON as they do from a task).
So the decomposition itself (shards, record ranges, buckets, the distributed MinHash and exact dedup,
the embedding buckets) is checked against the local executor with many small shards, in seconds;
test_ray_executor.py checks the same on a real two-node cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ray_recipes import LOCAL, assert_same_run, demo_recipe, small_recipe

from curate.layout import RunLayout, StepFolder
from curate.pipeline import ray_executor as rex
from curate.pipeline.ingest import input_files, read_sources
from curate.pipeline.ray import ingest as ring
from curate.pipeline.ray.cluster import Cluster
from curate.pipeline.ray.shards import (
    InputShard,
    ShardCounts,
    add_up,
    conform_shard,
    input_shards,
    target_schema,
)
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan
from curate.steps.base import StepReport

pytest.importorskip("ray", reason="ray is not installed: pip install 'curate[ray]'")
pytestmark = pytest.mark.ray


class _Identity:
    """``ray.put`` / ``ray.get`` in one process."""

    @staticmethod
    def put(obj: Any) -> Any:
        return obj

    @staticmethod
    def get(ref: Any) -> Any:
        return ref


@pytest.fixture
def in_process(monkeypatch):
    """Run every round of Ray tasks in this process; returns the rounds run (name, items)."""
    seen: list[tuple[str, int]] = []

    def for_each(name: str, fn: Any, items: list[int], *, actor_factory: Any = None, **kw: Any) -> Iterator[Any]:
        seen.append((name, len(items)))
        f = actor_factory() if actor_factory is not None else fn
        for i in items:
            yield i, json.loads(json.dumps(f(i)))

    monkeypatch.setattr(rex, "for_each", for_each)
    monkeypatch.setattr(Cluster, "ensure", lambda self, progress: _Identity())
    monkeypatch.setattr(Cluster, "cpus", lambda self: 2)
    monkeypatch.setattr(Cluster, "gpus", lambda self: 0)
    monkeypatch.setattr(Cluster, "node_cpus", lambda self: 2)
    monkeypatch.setattr(rex.RayExecutor, "ray", property(lambda self: _Identity()))
    return seen


def _ray(**kw: Any) -> dict[str, Any]:
    return {"kind": "ray", "batch_size": 64, **kw}


def test_small_recipe_in_many_shards_equals_local(tmp_path, in_process):
    run_pipeline(build_plan(small_recipe(tmp_path, LOCAL)), tmp_path / "local", progress=False)
    run_pipeline(build_plan(small_recipe(tmp_path, _ray(shard_rows=37))), tmp_path / "ray", progress=False)
    assert_same_run(tmp_path / "local", tmp_path / "ray")
    assert len(RunLayout(tmp_path / "ray").ingest.kept_files()) >= 25
    rounds = dict(in_process)
    assert rounds["ingest_fix_ids"] >= 5 and rounds["dedup_minhash_verify"] >= 25
    # `curate export` streams a sharded run's records like a local run's
    from curate.export.run import ExportOptions, export_run

    for run in ("local", "ray"):
        export_run(tmp_path / run, tmp_path / f"export_{run}", ExportOptions())
    files = {run: sorted((tmp_path / f"export_{run}").rglob("*.parquet")) for run in ("local", "ray")}
    assert [f.name for f in files["ray"]] == [f.name for f in files["local"]] and files["local"]
    for a, b in zip(files["local"], files["ray"], strict=True):
        assert pl.read_parquet(b).equals(pl.read_parquet(a))


def test_embedding_and_semantic_dedup_in_many_shards_equal_local(tmp_path, in_process):
    def recipe(executor: dict[str, Any]) -> dict[str, Any]:
        rec = small_recipe(tmp_path, executor)
        return {**rec, "steps": [*rec["steps"][:4], {"use": "embed.hashing", "params": {"dim": 24, "text": "user"}},
                                 {"use": "dedup.semantic", "params": {"threshold_cosine": 0.9, "cluster_size": 40}}]}

    run_pipeline(build_plan(recipe(LOCAL)), tmp_path / "local", progress=False)
    res = run_pipeline(build_plan(recipe(_ray(shard_rows=45))), tmp_path / "ray", progress=False)
    assert_same_run(tmp_path / "local", tmp_path / "ray")
    sem = {r.step_id: r for r in res.reports}["dedup_semantic"]
    assert sem.rejected["semantic_dup"] >= 20 and sem.extra["clusters"] >= 15
    assert {"dedup_semantic_kmeans", "dedup_semantic_pairs", "embed_hashing_embed"} <= set(dict(in_process))
    a = RunLayout(tmp_path / "local").step_named("embed_hashing").path / "embeddings.npy"
    b = RunLayout(tmp_path / "ray").step_named("embed_hashing").path / "embeddings.npy"
    assert a.read_bytes() == b.read_bytes()


def test_demo_recipe_in_many_shards_equals_local(tmp_path, in_process):
    from curate.demo.truth import generate

    raw = tmp_path / "raw"
    generate(raw, 800, seed=1)
    run_pipeline(build_plan(demo_recipe(raw, tmp_path / "xl", LOCAL)), tmp_path / "local", progress=False)
    run_pipeline(build_plan(demo_recipe(raw, tmp_path / "xr", _ray(shard_rows=50))), tmp_path / "ray",
                 progress=False)
    assert_same_run(tmp_path / "local", tmp_path / "ray")


def test_dry_run_in_many_shards_equals_local(tmp_path, in_process):
    run_pipeline(build_plan(small_recipe(tmp_path, LOCAL)), tmp_path / "local", progress=False, dry_run=True)
    run_pipeline(build_plan(small_recipe(tmp_path, _ray(shard_rows=100))), tmp_path / "ray", progress=False,
                 dry_run=True)
    assert_same_run(tmp_path / "local", tmp_path / "ray")


def test_ray_steps_read_a_local_steps_single_file_as_row_group_shards(tmp_path, in_process):
    """A Ray run reusing a local run's ingest (same fingerprint) cuts its one kept.parquet by row groups."""
    run_pipeline(build_plan(small_recipe(tmp_path, LOCAL)), tmp_path / "local", progress=False)
    rec = small_recipe(tmp_path, _ray(shard_rows=1))
    run_pipeline(build_plan(rec), tmp_path / "mixed", progress=False, reuse_from=tmp_path / "local",
                 force=False)
    assert_same_run(tmp_path / "local", tmp_path / "mixed")


def test_sharded_ingest_gives_the_local_ids_and_quarantine(tmp_path):
    """Record ranges of one JSONL file, exact copies spread over them: ids, rows and quarantine as one pass."""
    lines = []
    for i in range(230):
        q = f"question {i % 17}" if i % 3 else "the same question"
        lines.append(json.dumps({"instruction": q, "input": "", "output": f"answer {i % 17}"}))
        if i % 41 == 0:
            lines.append("{not json")
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    rec = {"name": "ids", "sources": [{"id": "a", "format": "alpaca", "path": str(tmp_path / "a.jsonl")}],
           "limits": {"max_quarantine_frac": 0.1}}
    plan = build_plan(rec)
    inputs = input_files(plan)
    whole = RunLayout(tmp_path / "whole").ingest
    whole.path.mkdir(parents=True)
    whole.run.quarantine_dir.mkdir()
    read_sources(plan, inputs, whole, limit=None, batch_size=16, bar=lambda d: None)

    folder = RunLayout(tmp_path / "sharded").ingest
    folder.path.mkdir(parents=True)
    folder.run.quarantine_dir.mkdir()
    readers = [(src.id, src.subset, reader) for src, reader in plan.readers]
    shards = ring.plan_shards(readers, inputs, 20, None)  # type: ignore[arg-type]
    assert len(shards) >= 10 and shards[1].start == shards[0].stop and shards[-1].stop is None
    assert [s.first for s in shards[:3]] == [0, 20, 40]  # lines before each shard: provenance counts from the top
    for i, sh in enumerate(shards):
        ring.read_shard(i, sh, readers[sh.source][2], folder, batch_size=16, limit=None, n_buckets=3)
    for b in range(3):
        ring.offsets_of_bucket(b, folder)
    fixed = ring.shards_to_fix(folder)
    assert fixed  # "the same question" is in every shard
    for i in fixed:
        ring.fix_shard(i, folder)
    assert pl.read_parquet(folder.kept).equals(pl.read_parquet(whole.kept))
    q_whole = whole.quarantine.read_text().splitlines()
    q_shards = [line for p in folder.quarantine_paths() for line in p.read_text().splitlines()]
    assert q_shards == q_whole and len(q_whole) == 6


def test_input_shards_of_a_single_file_follow_row_groups(tmp_path):
    path = tmp_path / "00_x" / "kept.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"id": [str(i) for i in range(100)]}), path, row_group_size=10)
    shards = input_shards(RunLayout(tmp_path).folder("00_x"), 25)
    assert [s.row_groups for s in shards] == [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9,)]
    assert sum(s.num_rows() for s in shards) == 100
    assert shards[1].scan().collect()["id"].to_list() == [str(i) for i in range(30, 60)]
    assert input_shards(RunLayout(tmp_path).folder("00_x"), 1000) == [InputShard(str(path), None)]


def test_shard_schemas_are_unified(tmp_path):
    """An empty shard lacks a step's score columns, a column all null in one shard is typed Null there."""
    folder = StepFolder(RunLayout(tmp_path), "01_x")
    folder.kept.mkdir(parents=True)
    pl.DataFrame({"id": ["a"], "s": [1.5], "f": ["x"]}).write_parquet(folder.kept_shard(0))
    pl.DataFrame({"id": ["b"], "s": [None], "f": [None]}, schema={"id": pl.Utf8, "s": pl.Float64, "f": pl.Null}
                 ).write_parquet(folder.kept_shard(1))
    pl.DataFrame(schema={"id": pl.Utf8}).write_parquet(folder.kept_shard(2))
    schemas = [pq.read_schema(folder.kept_shard(i)) for i in range(3)]
    target = target_schema(schemas, [1, 1, 0])
    assert target.names == ["id", "s", "f"] and target.field("f").type == pa.large_string()
    for i in (1, 2):
        conform_shard(folder, i, target)
    df = pl.read_parquet(folder.kept)
    assert df["id"].to_list() == ["a", "b"] and df.schema["f"] == pl.Utf8


def test_shard_counts_add_up_in_shard_order():
    a = ShardCounts(0, n_in=5, n_out=3, flag_examples={"r": [f"a{i}" for i in range(15)]})
    b = ShardCounts(1, n_in=4, n_out=4, flag_examples={"r": [f"b{i}" for i in range(15)]})
    a.rejected["x"] = 2
    a.extra["k"] = 1.0
    b.extra["k"] = 2.0
    rep = StepReport(step_id="s")
    extra, _ = add_up([ShardCounts.from_json(a.to_json()), b], rep)
    assert (rep.n_in, rep.n_out, rep.rejected["x"], extra["k"]) == (9, 7, 2, 3.0)
    assert rep.flag_examples["r"] == [f"a{i}" for i in range(15)] + [f"b{i}" for i in range(5)]


def test_layout_names_shards(tmp_path):
    f = RunLayout(tmp_path).step(3, "dedup_exact")
    assert f.kept_shard(2) == tmp_path / "03_dedup_exact" / "kept.parquet" / "part-00002.parquet"
    assert f.ledger_shard(2) == tmp_path / "ledger" / "03_dedup_exact.part-00002.parquet"
    assert f.quarantine_shard(0) == tmp_path / "quarantine" / "03_dedup_exact.part-00000.jsonl"
    (tmp_path / "ledger").mkdir()
    for i in (1, 0):
        f.ledger_shard(i).write_bytes(b"")
    assert f.ledger_paths() == [f.ledger_shard(0), f.ledger_shard(1)]
    assert RunLayout(tmp_path).ledger_files() == [f.ledger_shard(0), f.ledger_shard(1)]


def test_missing_shard_counts_fail_the_step(tmp_path):
    from curate.errors import AccountingError
    from curate.pipeline.ray.shards import read_counts

    folder = StepFolder(RunLayout(tmp_path), "01_x")
    ShardCounts(0, n_in=1, n_out=1).save(folder)
    with pytest.raises(AccountingError, match="shard 1 has no counts"):
        read_counts(folder, 2)


def test_ranged_reader_must_read_through_raw_records(tmp_path):
    from curate.errors import AccountingError

    class Whole(ring.RecordReader):
        format = "alpaca"

        def parse(self, obj: Any) -> Any:
            raise NotImplementedError

        def records(self, path: str, source: str) -> Iterator[Any]:
            yield from ()

    folder = RunLayout(tmp_path).ingest
    shard = ring.SourceShard(0, "a", None, (str(tmp_path / "a.jsonl"),), 10, 20)
    (tmp_path / "a.jsonl").write_text("{}\n")
    with pytest.raises(AccountingError, match="record ranges"):
        ring.read_shard(0, shard, Whole(), folder, batch_size=10, limit=None, n_buckets=1)

