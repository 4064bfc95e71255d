"""Embedding without a model: a signed feature-hashing bag of words."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from curate.index.minhash import TOKEN_PATTERN
from curate.steps.embed.base import Embedder, EmbedParams
from curate.steps.registry import register


@register("embed.hashing")
class HashingEmbedder(Embedder):
    """Embed each record's text as a signed feature-hashing bag of its words: no model, fast, deterministic.

    Each lowercased word token adds +1 or -1 to one of ``dim`` slots, both picked by a seeded hash of the
    word (the hashing trick, Weinberger et al. 2009), and the vector is normalised; a text without words
    gets the zero vector, which matches nothing. The cosine of two texts then measures the words they
    share, not their meaning, so ``dedup.semantic`` on these vectors finds reworded copies only when the
    words are the same. It is for the pipeline's plumbing (tests, benchmarks of a recipe at scale, quick
    maps without a model); ``embed.sentence_transformer`` is the embedder for meaning. Each text's vector
    depends on that text alone, whatever the batch it is embedded in.

    Reasons: none (embedders never reject).
    """

    class Params(EmbedParams):
        dim: int = Field(64, ge=2, le=4096, description="Vector size (slots words are hashed into).")
        use_cache: bool = Field(False, description="Read and write the embedding cache (recomputing is as fast).")

    def model_key(self) -> str:
        return f"hashing|dim={self.params.dim}|seed={self.seed}"

    def describe(self) -> dict[str, Any]:
        return {"model": "hashing", "model_id": self.model_key(), "device": "cpu", "dim": int(self.params.dim)}

    def embed(self, texts: list[str]) -> np.ndarray:
        dim = int(self.params.dim)
        words = pl.DataFrame({"t": pl.Series(texts, dtype=pl.Utf8)}).with_row_index("row").select(
            "row", pl.col("t").fill_null("").str.to_lowercase().str.extract_all(TOKEN_PATTERN).alias("w")
        ).explode("w").drop_nulls("w")
        out = np.zeros((len(texts), dim), dtype=np.float32)
        if words.height:
            h = words["w"].hash(self.seed).to_numpy()
            slot = (h % np.uint64(dim)).astype(np.int64)
            sign = np.where((h >> np.uint64(63)) == 0, 1.0, -1.0).astype(np.float32)
            np.add.at(out, (words["row"].to_numpy().astype(np.int64), slot), sign)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.asarray(out / norms, dtype=np.float32)
