"""Embedding steps; ``get_embedder`` embeds a query the way a run embedded its records (browser search)."""

from __future__ import annotations

from typing import Any, cast


def get_embedder(model: str = "all-MiniLM-L6-v2", **params: Any) -> Any:
    """An embedder for ``model`` whose ``embed(texts)`` returns unit float32 vectors.

    Pass the params recorded in a run's embedding.json (``precision``, ``max_seq_length``, ``device``)
    so query vectors match the indexed ones. Raises MissingResourceError when the model cannot load.
    """
    from curate.steps.embed.sentence_transformer import SentenceTransformerEmbedder

    emb = cast("SentenceTransformerEmbedder", SentenceTransformerEmbedder.from_params(model=model, **params))
    emb.load()
    return emb
