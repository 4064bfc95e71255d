"""Decisions a distributed dedup step writes per shard: labels and the dry run apply to them as locally.

The keep policy runs in one task and its decisions go to one file per shard, booked by the shard tasks
(the driver holds no decision); records a person labelled keep or "not a duplicate" stay, a drop label
removes, and a dry run removes nothing but marks what it would remove, exactly as the local executor does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from ray_recipes import LOCAL, assert_same_run, ledger, small_recipe
from test_ray_shards import in_process  # noqa: F401  (the fixture)

from curate.labels import LabelStore
from curate.layout import RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan

pytest.importorskip("ray", reason="ray is not installed: pip install 'curate[ray]'")
pytestmark = pytest.mark.ray

RAY = {"kind": "ray", "batch_size": 64, "shard_rows": 40}


def _recipe(tmp_path: Path, executor: dict[str, Any], labels: Path | None) -> dict[str, Any]:
    rec = small_recipe(tmp_path, executor)
    steps = rec["steps"][:-1]  # without filter.source
    if labels is not None:
        steps = [{"use": "label.apply", "params": {"path": str(labels)}}, *steps]
    return {**rec, "steps": steps}


def test_labels_protect_records_from_per_shard_decisions(tmp_path, in_process):  # noqa: F811
    run_pipeline(build_plan(_recipe(tmp_path, LOCAL, None)), tmp_path / "probe", progress=False)
    removed = ledger(tmp_path / "probe")
    exact = removed.filter(pl.col("reason") == "exact_dup")["id"].to_list()
    near = removed.filter(pl.col("reason") == "near_dup")["id"].to_list()
    assert len(exact) >= 2 and len(near) >= 2
    labels = tmp_path / "labels.sqlite"
    store = LabelStore(labels)
    store.add([exact[0], near[0]], "keep")
    store.add([near[1]], "not_duplicate")
    store.add([exact[1]], "drop")
    run_pipeline(build_plan(_recipe(tmp_path, LOCAL, labels)), tmp_path / "local", progress=False)
    run_pipeline(build_plan(_recipe(tmp_path, RAY, labels)), tmp_path / "ray", progress=False)
    assert_same_run(tmp_path / "local", tmp_path / "ray")
    final = pl.scan_parquet(RunLayout(tmp_path / "ray").step_folders()[-1].kept_files()).select("id").collect()
    assert {exact[0], near[0], near[1]} <= set(final["id"]) and exact[1] not in set(final["id"])
    assert {"dedup_exact_resolve", "dedup_minhash_resolve"} <= set(dict(in_process))


def test_dry_run_marks_per_shard_decisions_as_locally(tmp_path, in_process):  # noqa: F811
    run_pipeline(build_plan(_recipe(tmp_path, LOCAL, None)), tmp_path / "local", progress=False, dry_run=True)
    run_pipeline(build_plan(_recipe(tmp_path, RAY, None)), tmp_path / "ray", progress=False, dry_run=True)
    assert_same_run(tmp_path / "local", tmp_path / "ray")
    last = pl.scan_parquet(RunLayout(tmp_path / "ray").step_folders()[-1].kept_files()).collect()
    assert last["dedup_minhash.would_remove"].drop_nulls().len() >= 2
