"""Maps: UMAP layout, k-means clusters and c-TF-IDF topics that recover planted topics."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from curate.analysis.maps import ctfidf_topics, knn_place, verb_object, verb_table
from curate.index.vectors import write_embeddings
from curate.schema import make_batch, record_id
from curate.steps.base import StepContext
from curate.steps.score.map import MapScorer

TOPICS = {
    "astronomy": ["telescope", "galaxy", "orbit", "planet", "nebula"],
    "cooking": ["recipe", "oven", "flour", "garlic", "simmer"],
    "chess": ["bishop", "opening", "checkmate", "pawn", "castling"],
}


def test_verb_object_heuristic():
    assert verb_object("Write a short poem about rain") == ("write", "poem")
    assert verb_object("Give me three tips for sleeping") == ("give", "tips")
    assert verb_object("What is the capital of France?") is None
    table = verb_table(["Write a poem", "Write an essay", "Write a poem about x", "List three fruits"])
    assert table["rows"][0]["verb"] == "write" and table["rows"][0]["objects"][0] == {"object": "poem", "count": 2}


def test_ctfidf_recovers_topic_words():
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for k, (_, words) in enumerate(TOPICS.items()):
        for _ in range(20):
            texts.append("please tell me about the " + " ".join(rng.choice(words, size=3)))
            labels.append(k)
    topics = ctfidf_topics(texts, np.array(labels), top_n=3)
    for k, (_, words) in enumerate(TOPICS.items()):
        assert topics[k] and set(topics[k]) <= set(words)


def test_knn_place_puts_rows_among_their_nearest_fitted_rows():
    rng = np.random.default_rng(2)
    centers = np.eye(3, 8, dtype=np.float32)
    labels = np.repeat(np.arange(3), 30)
    x = centers[labels] + 0.05 * rng.normal(size=(90, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fitted = np.arange(0, 90, 2)
    xy = np.column_stack([labels[fitted] * 10.0, rng.normal(size=len(fitted))]).astype(np.float32)
    rows = np.arange(1, 90, 2)
    placed = knn_place(x[fitted], xy, x, rows, k=5)
    assert placed.shape == (45, 2)
    # each row lands inside its own cluster's band, never between clusters
    assert np.abs(placed[:, 0] - labels[rows] * 10.0).max() < 1e-3
    assert np.abs(placed[:, 1]).max() <= np.abs(xy[:, 1]).max()
    # a row equal to a fitted row, with one neighbour, lands exactly on it
    assert np.allclose(knn_place(x[fitted], xy, x, fitted[:4], k=1), xy[:4])


def test_map_step_writes_map_with_topics(tmp_path):
    rng = np.random.default_rng(1)
    rows, vecs = [], []
    centers = rng.normal(size=(3, 8)) * 4
    for k, (name, words) in enumerate(TOPICS.items()):
        for i in range(40):
            rows.append({"id": record_id(name, "f", i), "source": "s", "provenance": {"file": "f", "record": i},
                         "turns": [{"role": "user", "content": "Explain the " + " ".join(rng.choice(words, size=4))},
                                   {"role": "assistant", "content": "ok"}]})
            vecs.append(centers[k] + rng.normal(size=8) * 0.2)
    batch = make_batch(rows)
    v = np.asarray(vecs, dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    emb = write_embeddings(tmp_path / "01_embed", batch["id"], len(v), 8)
    emb[:] = v
    emb.flush()
    ctx = StepContext(run_dir=tmp_path, work_dir=tmp_path / "02_score_map", seed=7)
    # fit UMAP on 100 of the 120 points: the other 20 are placed by their nearest fitted neighbours
    res = MapScorer.from_params(step_id="score_map", clusters=3, fit_sample=100).run(batch.lazy(), ctx)
    m = pl.read_parquet(tmp_path / "02_score_map" / "map.parquet")
    assert m.columns == ["id", "x", "y", "cluster", "topic", "source"] and len(m) == 120
    assert m["cluster"].n_unique() == 3
    # each planted topic lands in one cluster whose keywords are that topic's words
    for k, (name, words) in enumerate(TOPICS.items()):
        part = m.slice(k * 40, 40)
        assert part["cluster"].n_unique() == 1
        assert set(part["topic"][0].split(", ")) <= set(words)
    assert np.isfinite(m["x"].to_numpy()).all()
    # in 2-D, every point's nearest other point belongs to the same planted topic
    xy = m.select("x", "y").to_numpy()
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (d.argmin(axis=1) // 40 == np.arange(120) // 40).all()
    verbs = json.loads((tmp_path / "02_score_map" / "verbs.json").read_text())
    assert verbs["rows"][0]["verb"] == "explain"
    clusters = json.loads((tmp_path / "02_score_map" / "clusters.json").read_text())
    assert sum(c["size"] for c in clusters) == 120 and len(clusters[0]["sample_prompts"]) == 3
    assert set(res.scores.columns) == {"id", "score_map.x", "score_map.y", "score_map.cluster", "score_map.topic"}
