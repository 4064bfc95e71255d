"""Diversity figures on planted groups: a homogeneous group must score low on every figure."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from curate import layout as L
from curate.analysis.diversity import cluster_entropy, distinct_n, mean_nn_distance, unique_share, vendi_score
from curate.index.vectors import write_embeddings
from curate.layout import RunLayout
from curate.pipeline.batches import ledger_frame
from curate.schema import make_batch, record_id
from curate.steps.base import StepContext
from curate.steps.score.diversity import DiversityScorer


def test_vendi_bounds():
    same = np.tile(np.array([[1.0, 0, 0]], dtype=np.float32), (50, 1))
    assert vendi_score(same) == pytest.approx(1.0)
    assert vendi_score(np.eye(8, dtype=np.float32)) == pytest.approx(8.0)


def test_nn_distance_and_entropy_and_distinct():
    x = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    assert mean_nn_distance(x) == pytest.approx(0.0)
    assert mean_nn_distance(np.eye(3, dtype=np.float32)) == pytest.approx(1.0)
    assert cluster_entropy(np.array([0, 0, 0, 0]), 4) == 0.0
    assert cluster_entropy(np.array([0, 1, 2, 3]), 4) == pytest.approx(1.0)
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b c", "a b c"], 2) == 0.5
    assert unique_share(["Positive", " positive", "negative", "A  long\nanswer", "a long answer"]) == 0.6


def _ds_and_vectors(rng: np.random.Generator):
    rows, vecs = [], []
    centers = rng.normal(size=(12, 16))
    words = [f"word{i}" for i in range(400)]
    for i in range(240):  # a diverse source: 12 topics, long varied answers
        c = centers[i % 12]
        prompt = " ".join(rng.choice(words, size=8))
        answer = " ".join(rng.choice(words, size=30))
        rows.append(("rich", prompt, answer))
        vecs.append(c + 0.3 * rng.normal(size=16))
    for i in range(240):  # a homogeneous source: one template, one-word answers
        prompt = f"Is this review positive or negative? Review {i % 5}"
        rows.append(("flat", prompt, "positive" if i % 2 else "negative"))
        vecs.append(centers[0] * 0.1 + np.array([5.0] + [0.0] * 15) + 0.01 * rng.normal(size=16))
    batch = make_batch([
        {"id": record_id(s, "f", i), "source": s, "subset": "t1" if s == "flat" else None,
         "turns": [{"role": "user", "content": p}, {"role": "assistant", "content": a}],
         "provenance": {"file": "f", "record": i}}
        for i, (s, p, a) in enumerate(rows)
    ])
    v = np.asarray(vecs, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return batch, v


def test_diversity_scorer_separates_a_homogeneous_source(tmp_path):
    batch, v = _ds_and_vectors(np.random.default_rng(0))
    run = tmp_path / "run"
    lay = RunLayout(run)
    emb = write_embeddings(lay.step(3, "embed").path, batch["id"], len(v), v.shape[1])
    emb[:] = v
    emb.flush()
    # two removed duplicates of the flat source in an earlier dedup step
    lay.ledger_dir.mkdir(parents=True)
    dups = batch.head(2).with_columns(source=pl.lit("flat"))
    ledger_frame(dups, "dedup_exact", "exact_dup", pl.Series(["x", "x"]), pl.Series([1.0, 1.0])).write_parquet(
        lay.step(4, "dedup_exact").ledger)
    ctx = StepContext(run_dir=run, work_dir=lay.step(5, "score_diversity").path, seed=3)
    step = DiversityScorer.from_params(step_id="score_diversity", vendi_sample=200, nn_sample=200, text_sample=100)
    res = step.run(batch.lazy(), ctx)
    out = json.loads(ctx.folder.file(L.DIVERSITY).read_text())
    rich, flat = out["per_source"]["rich"], out["per_source"]["flat"]
    assert flat["short_response_share"] == 1.0 and rich["short_response_share"] == 0.0
    # response homogeneity, on a seeded sample of text_sample=100 records: two labels in 100 answers
    assert flat["unique_response_share"] == pytest.approx(0.02) and rich["unique_response_share"] == 1.0
    assert flat["response_distinct_1"] == pytest.approx(0.02) and rich["response_distinct_1"] > 0.08
    assert set(out["metrics"]) >= {"unique_response_share", "response_distinct_1"}
    assert rich["vendi"] > 4 * flat["vendi"]
    assert rich["nn_dist"] > flat["nn_dist"]
    assert rich["distinct_2"] > flat["distinct_2"]
    assert rich["cluster_entropy"] > flat["cluster_entropy"]
    assert flat["near_dup_rate"] == pytest.approx(2 / 242)
    assert out["per_subset"]["flat/t1"]["count"] == 240
    assert out["overall"]["count"] == 480
    assert set(res.scores.columns) == {"id", "score_diversity.cluster", "score_diversity.nn_dist"}
    # deterministic for a seed
    step.run(batch.lazy(), ctx)
    assert json.loads(ctx.folder.file(L.DIVERSITY).read_text()) == out


def test_diversity_without_embeddings_gives_text_figures(tmp_path, batch_of):
    batch = batch_of("user: write a poem || assistant: roses are red and violets are blue", "user: list primes || assistant: 2 3 5")
    ctx = StepContext(run_dir=tmp_path, work_dir=RunLayout(tmp_path).step(1, "score_diversity").path)
    res = DiversityScorer.from_params().run(batch.lazy(), ctx)
    out = json.loads(ctx.folder.file(L.DIVERSITY).read_text())
    assert out["embeddings"] is False and "vendi" not in out["overall"]
    assert out["overall"]["short_response_share"] == 0.5
    assert out["overall"]["unique_response_share"] == 1.0
    assert out["overall"]["response_distinct_1"] == pytest.approx(9 / 10)  # "are" twice in 10 words
    assert res.scores is None
