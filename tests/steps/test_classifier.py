"""score.classifier (ClassifierScorer): training from labels and gold files, out-of-fold scores, features."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from curate.errors import ConfigError
from curate.index import vectors as vx
from curate.labels import LabelStore
from curate.steps.base import StepContext
from curate.steps.score.classifier import ClassifierScorer, cross_validated_proba, make_model

GOOD = ["The capital of {x} is listed in every atlas; here is a clear, complete answer with an example.",
        "Here is a step-by-step explanation of {x}, with a short summary at the end.",
        "Sure: {x} works like this, and the example below shows the result."]
BAD = ["error error null undefined {x} undefined",
       "I cannot help with {x}. I cannot. I cannot.",
       "asdf qwer {x} zxcv asdf qwer zxcv"]


def convs(kind, n, tag):
    temps = GOOD if kind == "good" else BAD
    return [f"user: tell me about {tag}{i} || assistant: " + temps[i % 3].format(x=f"{tag}{i}") for i in range(n)]


def ctx_for(tmp_path, **extra):
    run = tmp_path / "runs" / "r" / "1"
    run.mkdir(parents=True, exist_ok=True)
    return StepContext(run_dir=run, work_dir=run / "02_score_classifier", progress=False, extra=extra)


def write_gold(path, n_good=12, n_bad=12):
    lines = []
    for label, kind, n in (("keep", "good", n_good), ("other_bad", "bad", n_bad)):
        for i, c in enumerate(convs(kind, n, f"g{kind}")):
            user, _, answer = c.partition(" || assistant: ")
            lines.append(json.dumps({"uid": f"{kind}-{i}", "label": label, "note": "", "turns": [
                {"role": "user", "content": user.removeprefix("user: ")}, {"role": "assistant", "content": answer}]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gold_trained_tfidf_scores_bad_records_higher(tmp_path, batch_of):
    gold = write_gold(tmp_path / "gold.jsonl")
    step = ClassifierScorer.from_params(gold=[str(gold)], use_labels=False, folds=3)
    ds = batch_of(*convs("good", 4, "new"), *convs("bad", 4, "new"))
    res = step.run(ds.lazy(), ctx_for(tmp_path))
    assert res.scores is not None and res.decisions is None
    score = res.scores["score.classifier.score"].to_numpy()
    assert score[4:].min() > score[:4].max()
    assert not res.scores["score.classifier.trained_on"].any()
    ex = step.report_extra
    assert ex["cv_auc"] > 0.9 and (ex["train_bad"], ex["train_good"], ex["features_embeddings"]) == (12, 12, 0)


def test_labelled_records_get_out_of_fold_scores(tmp_path, batch_of):
    ds = batch_of(*convs("good", 8, "a"), *convs("bad", 8, "b"), *convs("good", 2, "c"))
    ids = ds["id"].to_list()
    ctx = ctx_for(tmp_path)
    # a record labelled drop and already removed by label.apply is read back from the run's ledger
    (ctx.run_dir / "spec.yaml").write_text("{}\n")
    (ctx.run_dir / "ledger").mkdir()
    gone = batch_of(*convs("bad", 1, "gone"), source="ledger")
    gone.with_columns(pl.lit("label_apply").alias("step"), pl.lit("manual_drop").alias("reason"),
                      pl.lit(None, dtype=pl.Utf8).alias("duplicate_of"),
                      pl.lit(None, dtype=pl.Float64).alias("similarity")).write_parquet(
        ctx.run_dir / "ledger" / "01_label_apply.parquet")
    store = LabelStore(tmp_path / "labels.sqlite")
    store.add(ids[:8], "keep")
    store.add(ids[8:16] + gone["id"].to_list() + ["no-such-id"], "drop")
    step = ClassifierScorer.from_params(labels_path=str(tmp_path / "labels.sqlite"), folds=3, min_per_class=5)
    res = step.run(ds.lazy(), ctx)
    assert res.scores is not None
    s = res.scores
    assert s["score.classifier.trained_on"].to_list() == [True] * 16 + [False] * 2
    assert step.report_extra["labels_used"] == 17 and step.report_extra["labels_unmatched"] == 1
    assert 0.0 <= s["score.classifier.score"].min() and s["score.classifier.score"].max() <= 1.0
    assert s["score.classifier.score"][8:16].mean() > s["score.classifier.score"][:8].mean()


def test_too_few_labels_is_a_clear_error(tmp_path, batch_of):
    step = ClassifierScorer.from_params(use_labels=True)
    with pytest.raises(ConfigError, match=r"0 bad and 0 good labelled records.*curate browse"):
        step.run(batch_of("user: a || assistant: b").lazy(), ctx_for(tmp_path))


def test_malformed_gold_file_is_a_clear_error(tmp_path, batch_of):
    bad = tmp_path / "gold.jsonl"
    bad.write_text('{"uid": "x", "label": "meh", "turns": []}\n')
    step = ClassifierScorer.from_params(gold=[str(bad)], use_labels=False)
    with pytest.raises(ConfigError, match=r"gold.jsonl:1: label 'meh'"):
        step.run(batch_of("user: a || assistant: b").lazy(), ctx_for(tmp_path))


def test_cross_validated_proba_never_scores_a_row_with_its_own_model():
    # one row per class is unlike its class: a model trained on it would score it right, out-of-fold cannot
    x = np.array([[1.0, 0]] * 10 + [[0, 1.0]] * 10 + [[0, 1.0], [1.0, 0]])
    y = np.array([0] * 10 + [1] * 10 + [0, 1])
    oof = cross_validated_proba(x, y, make_model("embeddings"), folds=4)
    assert oof[20] > 0.5 and oof[21] < 0.5


def test_run_embeddings_that_include_the_answer_are_used(tmp_path, batch_of):
    ds = batch_of(*convs("good", 6, "a"), *convs("bad", 6, "b"))
    ctx = ctx_for(tmp_path)
    emb_dir = ctx.run_dir / "01_embed_sentence_transformer"
    vecs = np.array([[1.0, 0.1 * i, 0] for i in range(6)] + [[0, 0.1 * i, 1.0] for i in range(6)], dtype=np.float32)
    mat = vx.write_embeddings(emb_dir, ds["id"], len(ds), 3)
    mat[:] = vx.normalize_rows(vecs)
    mat.flush()
    (emb_dir / vx.EMBEDDING_INFO).write_text(json.dumps({"model": "fake", "text": "conversation", "dim": 3}))
    store = LabelStore(tmp_path / "labels.sqlite")
    store.add(ds["id"].to_list()[:6], "keep")
    store.add(ds["id"].to_list()[6:], "drop")
    step = ClassifierScorer.from_params(labels_path=str(tmp_path / "labels.sqlite"), folds=3)
    res = step.run(ds.lazy(), ctx)
    assert step.report_extra["features_embeddings"] == 1 and step.report_extra["cv_auc"] == 1.0
    assert res.scores is not None and res.scores["score.classifier.score"][6:].min() > 0.5
    # prompt-only embeddings say nothing about the answer: auto falls back to TF-IDF
    (emb_dir / vx.EMBEDDING_INFO).write_text(json.dumps({"model": "fake", "text": "first_user", "dim": 3}))
    step.run(ds.lazy(), ctx)
    assert step.report_extra["features_embeddings"] == 0
