"""embed.hashing: a feature-hashing bag of words, one text at a time."""

from __future__ import annotations

import numpy as np
import polars as pl

from curate.steps.base import StepContext
from curate.steps.embed.hashing import HashingEmbedder


def test_vectors_are_unit_norm_and_measure_shared_words():
    e = HashingEmbedder.from_params(dim=256)
    v = e.embed(["the cat sat", "The CAT sat!", "a dog ran far", ""])
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0) and not v[3].any()
    assert v[0] @ v[1] > 0.999  # case and punctuation do not matter
    assert abs(v[0] @ v[2]) < 0.5


def test_a_texts_vector_does_not_depend_on_its_batch():
    e = HashingEmbedder.from_params(dim=32, step_id="embed_hashing", seed=4)
    texts = ["one two three", "two three four five", "six"]
    whole = e.embed(texts)
    assert all(np.array_equal(whole[i], e.embed([t])[0]) for i, t in enumerate(texts))
    assert not np.array_equal(whole, HashingEmbedder.from_params(dim=32, seed=5).embed(texts))  # seeded


def test_the_step_writes_the_embedding_artifacts(tmp_path, tiny_ds):
    e = HashingEmbedder.from_params(dim=16)
    work = tmp_path / "01_embed_hashing"
    res = e.run(tiny_ds.lazy(), StepContext(run_dir=tmp_path, work_dir=work, progress=False))
    assert res.quarantined is None
    ids = pl.read_parquet(work / "embedding_ids.parquet")["id"].to_list()
    assert ids == tiny_ds["id"].to_list() and np.load(work / "embeddings.npy").shape == (4, 16)
    assert e.report_extra["cache_hits"] == 0 and e.report_extra["unique_texts"] == 3
