import numpy as np
import polars as pl
import pytest

from curate.errors import ConfigError
from curate.index import vectors as vx
from curate.steps.base import StepContext
from curate.steps.dedup.semantic import SemanticDedup

TABLE = {
    "cat on mat": [1.0, 0.0, 0.0],
    "a cat sits on the mat": [0.96, 0.28, 0.0],  # cos 0.96 with "cat on mat"
    "cat near the mat": [0.94, -0.3412, 0.0],  # cos 0.94 with "cat on mat", 0.81 with the second
    "stock prices fell": [0.0, 0.0, 1.0],
    "shares dropped": [0.0, 0.05, 0.99875],  # cos 0.99875
}


def write_run(tmp_path, ds, fake_embedder):
    """An embed step's folder (01_embed) with FakeEmbedder vectors and a real FAISS index."""
    emb = fake_embedder(TABLE)
    folder = tmp_path / "01_embed"
    texts = ds.select(pl.col("turns").list.first().struct.field("content"))["content"].to_list()
    x = emb.embed(texts)
    mat = vx.write_embeddings(folder, ds["id"], len(texts), 3)
    mat[:] = x
    mat.flush()
    index, _ = vx.build_index(x)
    vx.save_index(index, ds["id"], folder)
    return StepContext(run_dir=tmp_path, work_dir=tmp_path / "02_dedup.semantic")


@pytest.mark.parametrize("mode", ["kmeans", "knn"])
def test_threshold_is_exact(batch_of, tmp_path, fake_embedder, mode):
    ds = batch_of(*(f"user: {t} || assistant: {'x' * i}" for i, t in enumerate(TABLE)))
    ctx = write_run(tmp_path, ds, fake_embedder)
    ids = ds["id"].to_list()
    step = SemanticDedup.from_params(mode=mode, cluster_size=5, keep="first")
    d = step.run(ds.lazy(), ctx).decisions.sort("id")
    assert sorted(d.select("id", "duplicate_of").rows()) == sorted([(ids[1], ids[0]), (ids[4], ids[3])])
    sims = dict(zip(d["id"], d["similarity"]))
    assert abs(sims[ids[1]] - 0.96) < 1e-4 and abs(sims[ids[4]] - 0.99875) < 1e-4
    assert set(d["reason"]) == {"semantic_dup"}
    # at 0.93 "cat near the mat" (0.94 to the first) joins the group too
    d = SemanticDedup.from_params(mode=mode, threshold_cosine=0.93, cluster_size=5, keep="first").run(ds.lazy(), ctx).decisions
    assert sorted(d["id"]) == sorted([ids[1], ids[2], ids[4]])
    g = pl.read_parquet(ctx.work_dir / "groups.parquet")
    assert g.filter(pl.col("member") == ids[0])["survivor"].to_list() == [ids[0]]


def test_longest_response_survives_and_removed_rows_are_ignored(batch_of, tmp_path, fake_embedder):
    ds = batch_of("user: cat on mat || assistant: a", "user: a cat sits on the mat || assistant: a longer one",
                  "user: stock prices fell", "user: shares dropped")
    ctx = write_run(tmp_path, ds, fake_embedder)
    ids = ds["id"].to_list()
    # an earlier step removed "stock prices fell": its vector must not be used
    d = SemanticDedup.from_params(cluster_size=4).run(ds.filter(pl.col("id") != ids[2]).lazy(), ctx).decisions
    assert d.select("id", "duplicate_of").rows() == [(ids[0], ids[1])]


def test_missing_embed_step_is_a_config_error(batch_of, tmp_path):
    ctx = StepContext(run_dir=tmp_path, work_dir=tmp_path / "02_dedup.semantic")
    with pytest.raises(ConfigError, match="add `embed.sentence_transformer` before"):
        SemanticDedup.from_params().run(batch_of("user: a").lazy(), ctx)


def test_clustered_vectors_at_scale_find_planted_copies(batch_of, tmp_path):
    rng = np.random.default_rng(0)
    n = 2000
    x = vx.normalize_rows(rng.normal(size=(n, 32)))
    dup_of = rng.choice(n - 100, 100, replace=False)
    x[n - 100 :] = vx.normalize_rows(x[dup_of] + 0.02 * rng.normal(size=(100, 32)))  # cos ~0.99
    ds = batch_of(*(f"user: t{i}" for i in range(n)))
    folder = tmp_path / "01_embed"
    mat = vx.write_embeddings(folder, ds["id"], n, 32)
    mat[:] = x
    mat.flush()
    ctx = StepContext(run_dir=tmp_path, work_dir=tmp_path / "02_dedup.semantic")
    d = SemanticDedup.from_params(cluster_size=200).run(ds.lazy(), ctx).decisions
    ids = ds["id"].to_list()
    truth = {frozenset((ids[n - 100 + k], ids[j])) for k, j in enumerate(dup_of)}
    found = {frozenset(p) for p in d.select("id", "duplicate_of").rows()}
    assert len(found & truth) / len(truth) >= 0.9 and found <= truth
