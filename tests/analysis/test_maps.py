"""Maps: UMAP layout, k-means clusters and c-TF-IDF topics that recover planted topics."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from curate import layout as L
from curate.analysis.maps import ctfidf_topics, knn_place, shorten, verb_object, verb_table
from curate.index.vectors import write_embeddings
from curate.layout import RunLayout
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
    # statements, greetings and nouns are not verbs; a verb after a greeting or "can you" still counts
    assert verb_object("I've been trying to fix my git history") is None
    assert verb_object("Beginner question: how do I rebase?") is None
    assert verb_object("Hi, quick one.\nCan you explain rebasing to me?") == ("explain", "rebasing")
    assert verb_object("Please summarize this article") == ("summarize", "article")
    table = verb_table(["Write a poem", "Write an essay", "Write a poem about x", "List three fruits"])
    assert table["rows"][0]["verb"] == "write" and table["rows"][0]["objects"][0] == {"object": "poem", "count": 2}


def test_sample_prompts_are_cut_at_a_word():
    assert shorten("short") == "short"
    out = shorten("word " * 100, 50)
    assert len(out) <= 50 and out.endswith("word…")


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
    emb = write_embeddings(RunLayout(tmp_path).step(1, "embed").path, batch["id"], len(v), 8)
    emb[:] = v
    emb.flush()
    ctx = StepContext(run_dir=tmp_path, work_dir=RunLayout(tmp_path).step(2, "score_map").path, seed=7)
    # fit UMAP on 100 of the 120 points: the other 20 are placed by their nearest fitted neighbours
    res = MapScorer.from_params(step_id="score_map", clusters=3, fit_sample=100).run(batch.lazy(), ctx)
    m = pl.read_parquet(ctx.folder.file(L.MAP))
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
    verbs = json.loads(ctx.folder.file(L.VERBS).read_text())
    assert verbs["rows"][0]["verb"] == "explain"
    clusters = json.loads(ctx.folder.file(L.CLUSTERS).read_text())
    assert sum(c["size"] for c in clusters) == 120 and len(clusters[0]["sample_prompts"]) == 3
    assert set(res.scores.columns) == {"id", "score_map.x", "score_map.y", "score_map.cluster", "score_map.topic"}


def _planted(rng: np.random.Generator, drop: frozenset[int] = frozenset()) -> tuple[pl.DataFrame, np.ndarray]:
    rows, vecs = [], []
    centers = np.random.default_rng(1).normal(size=(3, 8)) * 4
    for k, (name, words) in enumerate(TOPICS.items()):
        for i in range(40):
            text = "Explain the " + " ".join(rng.choice(words, size=4))
            v = centers[k] + rng.normal(size=8) * 0.2
            if k * 40 + i in drop:
                continue
            rows.append({"id": record_id(name, "f", i), "source": "s", "provenance": {"file": "f", "record": i},
                         "turns": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]})
            vecs.append(v)
    v = np.asarray(vecs, dtype=np.float32)
    return make_batch(rows), v / np.linalg.norm(v, axis=1, keepdims=True)


def _map_run(run, batch, vectors, ledger: pl.DataFrame | None = None, mapped: pl.DataFrame | None = None,
             **params):
    """Embeddings of ``batch``, then score.map on ``mapped`` (default: all of ``batch``)."""
    from curate import layout as L
    from curate.layout import RunLayout

    lay = RunLayout(run)
    emb = write_embeddings(lay.step(1, "embed").path, batch["id"], len(vectors), vectors.shape[1])
    emb[:] = vectors
    emb.flush()
    if ledger is not None:
        lay.ledger_dir.mkdir(parents=True, exist_ok=True)
        ledger.write_parquet(lay.step(1, "embed").ledger)
    ctx = StepContext(run_dir=run, work_dir=lay.step(2, "score_map").path, seed=7)
    MapScorer.from_params(step_id="score_map", clusters=3, **params).run(
        (batch if mapped is None else mapped).lazy(), ctx)
    return (pl.read_parquet(lay.step(2, "score_map").file(L.MAP)),
            json.loads(lay.step(2, "score_map").file(L.MAP_INFO).read_text()),
            lay.step(2, "score_map").file(L.MAP_REMOVED))


def test_map_stays_put_across_reruns_and_places_removed_records(tmp_path):
    """A rerun without two records keeps every position and cluster id; new records are placed by their
    nearest neighbours; changed embeddings refit and still keep cluster ids by member overlap."""
    recipe = tmp_path / "runs" / "planted"
    batch, vectors = _planted(np.random.default_rng(3))
    first, info1, _ = _map_run(recipe / "t1", batch, vectors)
    assert info1["layout"] == "fitted" and info1["previous_run"] is None

    # the rerun: two records dropped (as label.apply would), everything else as before
    drop = frozenset({5, 50})
    kept, kvec = _planted(np.random.default_rng(3), drop)
    gone = batch.filter(~pl.col("id").is_in(kept["id"].implode()))
    ledger = gone.with_columns(step=pl.lit("label_apply"), reason=pl.lit("manual_drop"),
                               duplicate_of=pl.lit(None, pl.Utf8), similarity=pl.lit(None, pl.Float64))
    second, info2, removed_path = _map_run(recipe / "t2", kept, kvec, ledger)
    assert info2["layout"] == "reused" and info2["placed_points"] == 0 and info2["cluster_ids"] == "carried"
    before = first.join(second, on="id", how="inner", suffix="_2")
    assert before.height == 118
    assert (before["x"] == before["x_2"]).all() and (before["y"] == before["y_2"]).all()
    assert (before["cluster"] == before["cluster_2"]).all() and (before["topic"] == before["topic_2"]).all()
    # the two removed records are placed by their embeddings (kept in the embed step's matrix of t1 only)
    assert pl.read_parquet(removed_path).height == 0  # t2's embeddings never held them

    # a third run that brings the two back and drops one more: placed among their own cluster
    third_batch, tvec = _planted(np.random.default_rng(3), frozenset({7}))
    third, info3, _ = _map_run(recipe / "t3", third_batch, tvec)
    assert info3["layout"] == "reused" and info3["placed_points"] == 2
    back = third.filter(pl.col("id").is_in(gone["id"].implode())).join(first, on="id", suffix="_1")
    assert (back["cluster"] == back["cluster_1"]).all()

    # embeddings changed: the layout is fitted again, and cluster ids are matched to the previous run's
    moved = tvec + np.float32(0.01)
    fourth, info4, _ = _map_run(recipe / "t4", third_batch, moved / np.linalg.norm(moved, axis=1, keepdims=True))
    assert info4["layout"] == "fitted" and info4["why_fitted"] == "embeddings changed"
    assert info4["cluster_ids"] == "matched" and info4["clusters_matched"] == 3
    same = fourth.join(third, on="id", suffix="_3")
    assert (same["cluster"] == same["cluster_3"]).all()


def test_removed_records_are_placed_by_embedding_or_at_their_survivor(tmp_path):
    batch, vectors = _planted(np.random.default_rng(4))
    ids = batch["id"]
    # ids[110:115] were removed after the embed step (they have embeddings); "dup-a" duplicates ids[0] and
    # "dup-b" duplicates "dup-a", both removed before embedding; "too-short" has neither
    late = batch.slice(110, 5).with_columns(step=pl.lit("dedup_semantic"), reason=pl.lit("semantic_dup"),
                                            duplicate_of=pl.lit(ids[0]), similarity=pl.lit(0.97))
    early = batch.slice(115, 3).with_columns(
        pl.Series("id", ["dup-a", "dup-b", "too-short"]), step=pl.lit("dedup_exact"), reason=pl.lit("exact_dup"),
        duplicate_of=pl.Series([ids[0], "dup-a", None]), similarity=pl.lit(1.0))
    m, info, removed_path = _map_run(tmp_path / "runs" / "r" / "t1", batch, vectors, pl.concat([late, early]),
                                     mapped=batch.slice(0, 110), stable=False)
    removed = pl.read_parquet(removed_path)
    assert info["removed_placed"] == {"embedding": 5, "duplicate_of": 2} and info["removed_unplaced"] == 1
    got = {r["id"]: r for r in removed.iter_rows(named=True)}
    survivor = m.filter(pl.col("id") == ids[0]).row(0, named=True)
    for dup in ("dup-a", "dup-b"):
        assert (got[dup]["x"], got[dup]["y"], got[dup]["cluster"]) == (survivor["x"], survivor["y"],
                                                                      survivor["cluster"])
        assert got[dup]["placed"] == "duplicate_of"
    # ids[110:115] belong to the third planted topic: placed on one of its points, with its cluster and topic
    third = m.slice(80, 30)
    for rid in ids[110:115]:
        r = got[rid]
        assert r["placed"] == "embedding" and r["cluster"] == third["cluster"][0] and r["topic"] == third["topic"][0]
        assert (r["x"], r["y"]) in set(third.select("x", "y").iter_rows())  # on its nearest mapped record
