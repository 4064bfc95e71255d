"""The embed kind: an ``Embedder`` turns texts into unit vectors; the base class does the rest.

``run`` picks the text of each conversation, embeds each distinct text once (cache first, then
length-sorted batches with a texts/s progress bar), quarantines only the records whose text fails,
writes the row-aligned memmap + ids, and builds the run's FAISS index.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import layout as L
from curate.index import vectors as vx
from curate.steps.base import GlobalResult, GlobalStep, StepContext, StepParams
from curate.steps.embed.cache import EmbeddingCache, cache_dir, text_key
from curate.steps.embed.texts import text_expr


class EmbedParams(StepParams):
    text: Literal["first_user", "user", "conversation", "assistant"] = Field(
        "first_user",
        description="What is embedded: first_user (the prompt), user (all user turns), conversation, assistant.",
    )
    batch_size: int = Field(64, ge=1, description="Texts per model call (48 texts/s peak at 32-64 on CPU).")
    cache_dir: str | None = Field(
        None, description="Embedding cache folder (default ~/.cache/curate/embeddings; CURATE_CACHE_DIR overrides)."
    )
    use_cache: bool = Field(True, description="Read and write the embedding cache.")
    exact_max: int = Field(
        vx.EXACT_MAX, ge=1, description="Largest set indexed exactly (IndexFlatIP); above it IVF with tuned nprobe."
    )
    index_recall: float = Field(0.95, gt=0, le=1, description="recall@10 the IVF nprobe is tuned to reach.")


class Embedder(GlobalStep):
    """Base of the embed steps: embeddings of every record, a FAISS index over them, and how they were made."""

    kind: ClassVar[str] = "embed"
    provides = (L.EMBEDDINGS, L.EMBEDDING_IDS, L.INDEX, L.INDEX_IDS, L.EMBEDDING_INFO)
    Params: ClassVar[type[StepParams]] = EmbedParams

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), d) float32 vectors for the texts."""

    @abstractmethod
    def model_key(self) -> str:
        """Everything that changes the vectors (model, precision, truncation): the cache namespace."""

    def describe(self) -> dict[str, Any]:
        """Model details for embedding.json (model, device, ...), enough to embed a query the same way."""
        return {"model": self.model_key()}

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        p = self.params
        rows = ds.select(pl.col("id"), text_expr(p.text)).collect()
        uniq = rows["_text"].unique(maintain_order=True)
        texts = uniq.to_list()
        keys = [text_key(t) for t in texts]
        cache = EmbeddingCache(cache_dir(p.cache_dir), self.model_key()) if p.use_cache else None
        found = cache.get(keys) if cache is not None else {}
        vecs: list[np.ndarray | None] = [found.get(k) for k in keys]
        todo = [i for i, v in enumerate(vecs) if v is None]
        errors: dict[int, str] = {}
        t0 = time.perf_counter()
        if todo:
            self._embed_missing(texts, keys, todo, vecs, errors, cache, ctx)
        seconds = time.perf_counter() - t0
        if cache is not None:
            cache.close()
        self.report_extra.update(
            {
                "texts": float(len(rows)),
                "unique_texts": float(len(texts)),
                "cache_hits": float(len(texts) - len(todo)),
                "embedded": float(len(todo) - len(errors)),
                "embed_texts_per_s": float((len(todo) / seconds) if todo and seconds > 0 else 0.0),
            }
        )
        # map rows to their text's vector; rows whose text failed go to quarantine
        text_idx = rows.select(pl.col("_text")).join(
            pl.DataFrame({"_text": uniq, "_u": np.arange(len(uniq), dtype=np.int64)}), on="_text", how="left",
            maintain_order="left",
        )["_u"].to_numpy()
        failed = np.array([i in errors for i in range(len(texts))], dtype=bool)
        ok_rows = ~failed[text_idx] if len(texts) else np.zeros(len(rows), bool)
        ok_ids = rows["id"].filter(pl.Series(ok_rows))
        good = [v for v in vecs if v is not None]
        dim = int(good[0].shape[0]) if good else 0
        mat = vx.write_embeddings(ctx.work_dir, ok_ids, len(ok_ids), dim)
        if dim:
            table = np.zeros((len(texts), dim), dtype=np.float32)
            for i, v in enumerate(vecs):
                if v is not None:
                    table[i] = v
            table = vx.normalize_rows(table)
            mat[:] = table[text_idx[ok_rows]]
            mat.flush()
        index_info = None
        if dim and len(ok_ids):
            index, info = vx.build_index(np.asarray(mat), exact_max=p.exact_max, seed=ctx.seed,
                                         target_recall=p.index_recall)
            vx.save_index(index, ok_ids, ctx.work_dir)
            index_info = info.to_json()
            self.report_extra["index_recall_at_10"] = info.recall_at_10
        meta = {**self.describe(), "dim": dim, "text": p.text, "count": len(ok_ids), "index": index_info}
        ctx.artifact(vx.EMBEDDING_INFO).write_text(json.dumps(meta, indent=2))
        quarantined = None
        if failed.any():
            bad = ~ok_rows
            quarantined = pl.DataFrame(
                {
                    "id": rows["id"].filter(pl.Series(bad)),
                    "error": [errors[int(u)] for u in text_idx[bad]],
                }
            )
        return GlobalResult(quarantined=quarantined)

    def _embed_missing(
        self,
        texts: list[str],
        keys: list[bytes],
        todo: list[int],
        vecs: list[np.ndarray | None],
        errors: dict[int, str],
        cache: EmbeddingCache | None,
        ctx: StepContext,
    ) -> None:
        from tqdm import tqdm

        bs = self.params.batch_size
        # longest first: similar lengths share a batch, so little padding is computed
        order = sorted(todo, key=lambda i: -len(texts[i]))
        with tqdm(total=len(order), unit="text", desc=f"{self.id}", disable=not ctx.progress) as bar:
            for start in range(0, len(order), bs):
                batch = order[start : start + bs]
                new: list[tuple[bytes, np.ndarray]] = []
                try:
                    out = self._checked(self.embed([texts[i] for i in batch]), len(batch))
                    for i, v in zip(batch, out):
                        vecs[i] = v
                        new.append((keys[i], v))
                except Exception:  # noqa: BLE001 - retried one by one so only failing texts are quarantined
                    for i in batch:
                        try:
                            v = self._checked(self.embed([texts[i]]), 1)[0]
                            vecs[i] = v
                            new.append((keys[i], v))
                        except Exception as e:  # noqa: BLE001 - this record is quarantined with the error
                            errors[i] = f"{type(e).__name__}: {e}"[:500]
                if cache is not None and new:
                    cache.put(new)
                bar.update(len(batch))

    @staticmethod
    def _checked(out: np.ndarray, n: int) -> np.ndarray:
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"embedder returned shape {arr.shape} for {n} texts")
        if not np.isfinite(arr).all():
            raise ValueError("embedder returned non-finite values")
        return arr
