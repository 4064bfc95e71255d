"""``score.diversity`` on the Ray executor, in this process with many shards: the local step's figures and scores.

The groups' samples are drawn in the driver and gathered from the shards, the k-means is trained in one
task and assigned per shard, nn_dist computed in one task and sliced per shard, the response lengths
and cluster spreads added up from per-shard histograms: ``diversity.json``, the report's figures and the
``<id>.cluster`` / ``<id>.nn_dist`` columns of the kept rows must equal the local run's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from ray_recipes import LOCAL, assert_same_run
from test_ray_shards import in_process  # noqa: F401  (the fixture)

from curate import layout as L
from curate.analysis.diversity import length_figures, length_figures_from_counts
from curate.layout import RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan
from curate.steps.score.diversity import DiversityScorer

pytest.importorskip("ray", reason="ray is not installed: pip install 'curate[ray]'")
pytestmark = pytest.mark.ray

SID = "score_diversity"


def _write_sources(tmp_path: Path) -> list[dict[str, Any]]:
    """Three sources: two Dolly files whose categories are subsets (two of them the same size, some records
    without one), one Alpaca file without subsets; a few exact duplicates for near_dup_rate."""
    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(200)]

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(words, size=int(rng.integers(lo, hi))))

    sizes = {"a": {"open_qa": 90, "brainstorming": 60, "summarization": 60, "classification": 45, "": 40,
                   "creative_writing": 12},
             "b": {"open_qa": 60, "closed_qa": 60, "": 30}}
    out = []
    for src, cats in sizes.items():
        lines = []
        for cat, m in cats.items():
            for j in range(m):
                answer = "yes" if cat == "classification" and j % 3 else text(0, 60)
                if j % 17 == 5:
                    answer = ""  # an empty response: 0 words
                rec = {"instruction": f"{cat} {j}: {text(3, 14)}", "context": "", "response": answer or "ok",
                       "category": cat}
                lines.append(json.dumps(rec))
                if j % 23 == 0:
                    lines.append(json.dumps(rec))  # an exact duplicate
        order = rng.permutation(len(lines))  # subsets interleaved in record order
        (tmp_path / f"{src}.jsonl").write_text("\n".join(lines[k] for k in order) + "\n")
        out.append({"id": src, "format": "dolly", "path": str(tmp_path / f"{src}.jsonl")})
    lines = [json.dumps({"instruction": f"plain {i} {text(2, 9)}", "input": "", "output": text(1, 30)})
             for i in range(150)]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    out.append({"id": "c", "format": "alpaca", "path": str(tmp_path / "c.jsonl")})
    return out


def _recipe(tmp_path: Path, executor: dict[str, Any], *, embed: bool = True, **params: Any) -> dict[str, Any]:
    if not (tmp_path / "a.jsonl").exists():
        _write_sources(tmp_path)
    sources = [{"id": s, "format": "dolly" if s != "c" else "alpaca", "path": str(tmp_path / f"{s}.jsonl")}
               for s in ("a", "b", "c")]
    steps: list[dict[str, Any]] = [{"use": "clean.normalize"}, {"use": "dedup.exact"}]
    if embed:
        steps.append({"use": "embed.hashing", "params": {"dim": 24, "text": "user"}})
    div = {"nn_sample": 50, "vendi_sample": 30, "text_sample": 40, "max_subsets": 4, **params}
    steps.append({"use": "score.diversity", "params": div})
    return {"name": "ray_diversity", "seed": 5, "sources": sources, "steps": steps, "executor": executor}


def _ray(shard_rows: int) -> dict[str, Any]:
    return {"kind": "ray", "batch_size": 64, "shard_rows": shard_rows}


def _files(run: Path) -> dict[str, Any]:
    step = RunLayout(run).step_named(SID)
    return {"json": json.loads((step.path / L.DIVERSITY.name).read_text()),
            "scores": pl.scan_parquet(step.kept_files()).select("id", f"^{SID}\\..*$").collect()}


def _never_in_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, ds: Any, ctx: Any) -> Any:
        raise AssertionError("score.diversity ran in the driver")

    monkeypatch.setattr(DiversityScorer, "run", refuse)


def _run_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shard_rows: int, **kw: Any) -> tuple[dict, dict]:
    run_pipeline(build_plan(_recipe(tmp_path, LOCAL, **kw)), tmp_path / "local", progress=False)
    _never_in_the_driver(monkeypatch)
    run_pipeline(build_plan(_recipe(tmp_path, _ray(shard_rows), **kw)), tmp_path / "ray", progress=False)
    assert len(RunLayout(tmp_path / "ray").step_named(SID).kept_files()) >= 10
    a, b = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert b["json"] == a["json"]  # floats to the bit
    assert b["scores"].equals(a["scores"])
    assert_same_run(tmp_path / "local", tmp_path / "ray")  # kept rows, ledger and the report's figures too
    return a, b


def test_diversity_in_many_shards_equals_local(tmp_path, in_process, monkeypatch):  # noqa: F811
    a, _ = _run_both(tmp_path, monkeypatch, 23)
    doc = a["json"]
    assert set(doc["per_source"]) == {"a", "b", "c"} and doc["embeddings"] is True
    # the four largest subsets: four of 60 records tie for three places, by source, then subset
    assert list(doc["per_subset"]) == ["a/open_qa", "a/brainstorming", "a/summarization", "b/closed_qa"]
    assert doc["per_source"]["a"]["count"] > doc["samples"]["nn"]  # samples drawn across shards
    assert doc["per_source"]["a"]["near_dup_rate"] > 0 and doc["per_source"]["c"]["near_dup_rate"] == 0
    assert a["scores"].columns == ["id", f"{SID}.cluster", f"{SID}.nn_dist"]
    assert a["scores"][f"{SID}.cluster"].n_unique() >= 5
    rounds = dict(in_process)
    assert rounds[f"{SID}_shards"] >= 10 and rounds[f"{SID}_figures"] == 3 + 4 + 1
    assert rounds[f"{SID}_fit"] == 2 and rounds[f"{SID}_duplicates"] == 1


def test_diversity_above_knn_max_has_clusters_only(tmp_path, in_process, monkeypatch):  # noqa: F811
    a, _ = _run_both(tmp_path, monkeypatch, 31, knn_max=100, clusters=6, max_subsets=0)
    assert a["scores"].columns == ["id", f"{SID}.cluster"]
    assert a["json"]["clusters"] == 6 and a["json"]["per_subset"] == {}
    assert dict(in_process)[f"{SID}_fit"] == 1


def test_diversity_without_embeddings(tmp_path, in_process, monkeypatch):  # noqa: F811
    a, _ = _run_both(tmp_path, monkeypatch, 29, embed=False)
    assert a["scores"].columns == ["id"]
    overall = a["json"]["overall"]
    assert a["json"]["embeddings"] is False and "vendi" not in overall and "cluster_entropy" not in overall
    assert overall["distinct_1"] > 0 and overall["response_words_p90"] > overall["response_words_p10"]
    assert f"{SID}_fit" not in dict(in_process)


def test_length_figures_from_histograms_equal_numpy():
    """Mean, numpy's linear percentiles and the short share from added-up histograms, to the bit."""
    rng = np.random.default_rng(3)
    for t in range(300):
        n = int(rng.integers(1, 3000))
        words = rng.integers(0, int(rng.choice([4, 40, 5000])), size=n).astype(np.uint32)
        p10, p50, p90 = np.percentile(words, [10, 50, 90])
        want = {"response_words_mean": float(words.mean()), "response_words_p10": float(p10),
                "response_words_p50": float(p50), "response_words_p90": float(p90),
                "short_response_share": float((words <= 3).mean())}
        assert length_figures(words) == want
        cut = int(rng.integers(0, n + 1))  # two parts of the group, their histograms added up
        hist: dict[int, int] = {}
        for part in (words[:cut], words[cut:]):
            for v, c in zip(*np.unique(part, return_counts=True), strict=True):
                hist[int(v)] = hist.get(int(v), 0) + int(c)
        values = np.array(list(hist), dtype=np.int64)[::-1]  # any order
        counts = np.array([hist[int(v)] for v in values], dtype=np.int64)
        assert length_figures_from_counts(values, counts) == want, t
    empty = length_figures_from_counts(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert all(np.isnan(v) for v in empty.values())
