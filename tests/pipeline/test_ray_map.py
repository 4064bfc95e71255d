"""``score.map`` on the Ray executor, in this process with many shards: the local step's map, to the byte.

The UMAP fit runs in one task on the fit sample, the other rows are placed per shard, the k-means is
trained in one task and assigned per shard, topics and sample prompts are read for the picked rows only;
every file the step writes (map.parquet, map_removed.parquet, clusters.json, verbs.json, map.json) and
the score columns of the kept rows must equal the local run's, on a first run and on a rerun that keeps
the previous layout. The embed step's IVF index, built in parts (trained in one task, vectors added
per slice, slices merged in order), is the local index to the byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from ray_recipes import LOCAL, small_recipe
from test_ray_shards import in_process  # noqa: F401  (the fixture)

from curate.layout import CLUSTERS, MAP, MAP_INFO, MAP_REMOVED, VERBS, RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan
from curate.steps.score.map import MapScorer

pytest.importorskip("ray", reason="ray is not installed: pip install 'curate[ray]'")
pytest.importorskip("umap", reason="umap-learn is not installed: pip install 'curate[analysis]'")
pytestmark = pytest.mark.ray


def _recipe(tmp_path: Path, executor: dict[str, Any], **map_params: Any) -> dict[str, Any]:
    rec = small_recipe(tmp_path, executor)
    steps = [*rec["steps"][:5], {"use": "embed.hashing", "params": {"dim": 24, "text": "user"}},
             {"use": "dedup.semantic", "params": {"threshold_cosine": 0.95, "cluster_size": 40}},
             {"use": "score.map", "params": {"n_neighbors": 8, **map_params}}]
    return {**rec, "steps": steps}


def _files(run: Path) -> dict[str, Any]:
    step = RunLayout(run).step_named("score_map").path
    return {
        "map": pl.read_parquet(step / MAP.name),
        "removed": pl.read_parquet(step / MAP_REMOVED.name),
        "clusters": json.loads((step / CLUSTERS.name).read_text()),
        "verbs": json.loads((step / VERBS.name).read_text()),
        "info": {k: v for k, v in json.loads((step / MAP_INFO.name).read_text()).items() if k != "previous_run"},
        "scores": pl.scan_parquet(RunLayout(run).step_named("score_map").kept_files())
        .select("id", "^score_map\\..*$").collect(),
    }


def _assert_same_map(local: Path, ray_run: Path) -> dict[str, Any]:
    a, b = _files(local), _files(ray_run)
    for key in ("map", "removed", "scores"):
        assert b[key].equals(a[key]), key
    for key in ("clusters", "verbs", "info"):
        assert b[key] == a[key], key
    return b


def _never_in_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, ds: Any, ctx: Any) -> Any:
        raise AssertionError("score.map ran in the driver")

    monkeypatch.setattr(MapScorer, "run", refuse)


@pytest.mark.parametrize("params", [
    {"fit_sample": 150},  # fitted on a sample, the rest placed per shard by their nearest fitted rows
    {"fit_sample": 5000, "method": "hdbscan", "min_cluster_size": 10},  # all fitted; HDBSCAN on every position
])
def test_map_in_many_shards_equals_local(tmp_path, in_process, monkeypatch, params):  # noqa: F811
    run_pipeline(build_plan(_recipe(tmp_path, LOCAL, **params)), tmp_path / "L" / "r1", progress=False)
    _never_in_the_driver(monkeypatch)
    res = run_pipeline(build_plan(_recipe(tmp_path, {"kind": "ray", "batch_size": 64, "shard_rows": 60}, **params)),
                       tmp_path / "R" / "r1", progress=False)
    got = _assert_same_map(tmp_path / "L" / "r1", tmp_path / "R" / "r1")
    assert len(RunLayout(tmp_path / "R" / "r1").step_named("score_map").kept_files()) >= 10
    assert got["map"].height > 600 and got["map"]["cluster"].n_unique() >= 3
    assert got["removed"].height > 0  # the semantic duplicates, at their nearest mapped record
    assert {"score_map_place", "score_map_topics", "score_map_assemble"} <= set(dict(in_process))
    assert {r.step_id: r for r in res.reports}["score_map"].extra["points"] == got["map"].height


def test_rerun_keeps_the_previous_layout_as_locally(tmp_path, in_process, monkeypatch):  # noqa: F811
    ray_exec = {"kind": "ray", "batch_size": 64, "shard_rows": 60}
    for side, ex in (("L", LOCAL), ("R", ray_exec)):
        if side == "R":
            _never_in_the_driver(monkeypatch)
        run_pipeline(build_plan(_recipe(tmp_path, ex, fit_sample=150)), tmp_path / side / "r1", progress=False)
        # a second run with one more filter: the records left keep their places, clusters and topics
        rec = _recipe(tmp_path, ex, fit_sample=150)
        rec["steps"].insert(1, {"use": "filter.length", "id": "shorter", "params": {"min_chars": 20, "max_chars": 118}})
        run_pipeline(build_plan(rec), tmp_path / side / "r2", progress=False)
    got = _assert_same_map(tmp_path / "L" / "r2", tmp_path / "R" / "r2")
    info = json.loads((RunLayout(tmp_path / "R" / "r2").step_named("score_map").path / MAP_INFO.name).read_text())
    assert info["layout"] == "reused" and info["reused_points"] + info["placed_points"] == got["map"].height
    assert info["reused_points"] >= 0.8 * got["map"].height  # new survivors of dedup are placed by neighbours


def test_ivf_index_built_in_parts_equals_the_local_index(tmp_path, in_process, monkeypatch):  # noqa: F811
    from curate.pipeline.ray import embed as ray_embed

    monkeypatch.setattr(ray_embed, "IVF_ADD_ROWS", 70)  # slices of 70 vectors added apart, merged in order

    def recipe(executor: dict[str, Any]) -> dict[str, Any]:
        rec = small_recipe(tmp_path, executor)
        return {**rec, "steps": [*rec["steps"][:5],
                                 {"use": "embed.hashing", "params": {"dim": 24, "text": "user", "exact_max": 100}}]}

    run_pipeline(build_plan(recipe(LOCAL)), tmp_path / "L" / "r", progress=False)
    run_pipeline(build_plan(recipe({"kind": "ray", "batch_size": 64, "shard_rows": 60})), tmp_path / "R" / "r",
                 progress=False)
    a, b = (RunLayout(tmp_path / s / "r").step_named("embed_hashing").path for s in ("L", "R"))
    assert (b / "index.faiss").read_bytes() == (a / "index.faiss").read_bytes()
    ia, ib = (json.loads((f / "embedding.json").read_text())["index"] for f in (a, b))
    assert ia["kind"] == ib["kind"] == "ivf" and ia["count"] > 600
    assert {k: v for k, v in ib.items() if k != "seconds"} == {k: v for k, v in ia.items() if k != "seconds"}
    assert dict(in_process)["embed_hashing_index_add"] == -(-ia["count"] // 70) >= 10
