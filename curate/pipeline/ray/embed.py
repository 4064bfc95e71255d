"""The embed steps on the cluster: one model per actor, each distinct text embedded once.

1. One task per shard takes each row's text (the step's ``text`` scope) and its key (the text's hash,
   :func:`curate.steps.embed.cache.text_key`), keeps the shard's rows as ``(id, key)`` and scatters its
   distinct texts by key.
2. A pool of actors (``map_batches`` with ``concurrency``; ``num_gpus=1`` each where the cluster has
   GPUs, one CPU each otherwise, with torch held to that CPU) loads the model once per actor and takes
   one key bucket at a time: the bucket's distinct texts are looked up in the shared vector cache,
   the missing ones embedded longest first in ``batch_size`` batches (a failing batch is retried text
   by text, as locally, so only failing texts are quarantined), the new vectors added to the cache,
   and each vector sent back to the shards whose rows hold that text.
3. One task per shard puts its rows' vectors in row order (rows whose text failed: quarantine).
4. One task writes ``embeddings.npy`` and ``embedding_ids.parquet`` (the shards in order, so rows are
   aligned as locally). The FAISS index is the local one (:func:`curate.index.vectors.build_index`):
   an exact index up to ``exact_max`` vectors is built in that task; above, the IVF lists are trained on
   the seeded sample in one task, the vectors added per slice of 100K in parallel tasks and the slices
   merged in order (and nprobe tuned) in one task, which holds the index: 1.5 GB per million 384-d
   vectors.

The vector cache (:class:`VectorCache`) is sharded Parquet keyed by text hash under the cache folder,
``parquet/<model key digest>/p<first key byte>/<uuid>.parquet``: a bucket's task reads only its own
prefix folders, new vectors are new files (no locks, any number of writers), so every node shares it
when the cache folder is on a shared filesystem. It is not the local executor's SQLite cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from curate import layout as L
from curate.index import vectors as vx
from curate.pipeline.batches import importable, worker_spec
from curate.pipeline.ray.shards import InputShard, Staged, save_npy, save_parquet
from curate.pipeline.ray.shuffle import gather, scatter
from curate.steps.base import GlobalResult, GlobalStep, StepContext
from curate.steps.embed.base import Embedder
from curate.steps.embed.cache import cache_dir, text_key
from curate.steps.embed.texts import text_expr

if TYPE_CHECKING:
    from curate.layout import StepFolder
    from curate.pipeline.ray_executor import RayExecutor

_PREFIXES = 256  # cache partitions: the first byte of the text key


class VectorCache:
    """Vectors of one model key, as Parquet files partitioned by the first byte of the text key."""

    def __init__(self, folder: Path, model_key: str) -> None:
        self.root = folder / "parquet" / hashlib.sha256(model_key.encode()).hexdigest()[:16]

    def _part(self, prefix: int) -> Path:
        return self.root / f"p{prefix:02x}"

    def get(self, keys: pl.Series) -> pl.DataFrame:
        """``(key, v)`` for the keys found (``v``: float32 bytes)."""
        if not len(keys):
            return pl.DataFrame(schema={"key": pl.Binary, "v": pl.Binary})
        prefixes = sorted({k[0] for k in keys.to_list()})
        files = [f for p in prefixes if self._part(p).is_dir() for f in sorted(self._part(p).glob("*.parquet"))]
        if not files:
            return pl.DataFrame(schema={"key": pl.Binary, "v": pl.Binary})
        return (pl.scan_parquet(files).filter(pl.col("key").is_in(keys.implode()))
                .unique("key", keep="first", maintain_order=True).collect())

    def put(self, new: pl.DataFrame) -> None:
        """Add ``(key, v)`` rows: one new file per prefix, written under a temporary name and renamed."""
        if not new.height:
            return
        tagged = new.with_columns(pl.col("key").bin.slice(0, 1).bin.encode("hex").alias("_p"))
        for (p,), part in tagged.group_by("_p"):
            folder = self._part(int(str(p), 16))
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{os.getpid()}-{secrets.token_hex(8)}.parquet"
            tmp = folder / f".{name}.tmp"
            part.drop("_p").write_parquet(tmp)
            os.replace(tmp, folder / name)


def _key_bucket(keys: pl.Series, n_buckets: int) -> pl.Series:
    return keys.bin.slice(0, 1).bin.encode("hex").str.to_integer(base=16).cast(pl.Int64) % n_buckets


def rebuild(step: Embedder) -> Callable[[], Embedder]:
    """How an actor gets its own copy of the step (registry key and params, or the pickled step)."""
    if importable(type(step)) and step.key:
        module, key, params_json, step_id, seed = worker_spec(step)

        def make() -> Embedder:
            import importlib

            from curate.steps.registry import get_step

            importlib.import_module(module)
            cls = get_step(key)
            return cast(Embedder, cls(cls.Params.model_validate_json(params_json), step_id=step_id, seed=seed))

        return make
    return lambda: step


def run_embed(step: GlobalStep, shards: list[InputShard], folder: StepFolder, ctx: StepContext,
              ex: RayExecutor) -> tuple[GlobalResult, pl.DataFrame]:
    assert isinstance(step, Embedder)
    p = step.params
    n_shards = len(shards)
    # a model that can use a GPU (a `device` parameter that is not pinned to the CPU) gets one GPU per actor
    gpus = ex.cluster.gpus() if getattr(p, "device", "cpu") in ("auto", "cuda") else 0
    actors = gpus if gpus else ex.cluster.cpus()
    buckets = max(1, min(_PREFIXES, max(n_shards, 2 * actors)))
    root, work = folder.work / "embed", folder.work
    text = text_expr(p.text)

    def keys(i: int) -> dict[str, Any]:
        rows = shards[i].scan().select("id", text).collect()
        k = pl.Series("key", [text_key(t) for t in rows["_text"].to_list()], dtype=pl.Binary)
        rows = rows.with_columns(k)
        _write(rows.select("id", "key"), root / "rows" / f"s{i:05d}.parquet", work)
        uniq = rows.select("key", "_text").unique("key", keep="first", maintain_order=True)
        scatter(uniq, _key_bucket(uniq["key"], buckets), buckets, root / "texts", i, work)
        return {"rows": rows.height}

    make = rebuild(step)
    use_cache, cache_folder = p.use_cache, cache_dir(p.cache_dir)
    per_actor_cpus = 1

    def actor() -> Callable[[int], dict[str, Any]]:
        emb = make()
        if hasattr(emb, "load"):
            emb.load()  # once per actor; a missing model fails here, before any text
        if "torch" in sys.modules and not gpus:
            import torch

            torch.set_num_threads(per_actor_cpus)  # one actor per CPU: no oversubscription
        actx = StepContext(run_dir=ctx.run_dir, work_dir=folder.path, seed=ctx.seed, progress=False)

        def embed_bucket(b: int) -> dict[str, Any]:
            texts = gather(root / "texts", b, {"key": pl.Binary, "_text": pl.Utf8})
            uniq = texts.unique("key", keep="first", maintain_order=True)
            model_key = emb.model_key()
            cache = VectorCache(cache_folder, model_key) if use_cache else None
            found = cache.get(uniq["key"]) if cache is not None else pl.DataFrame(
                schema={"key": pl.Binary, "v": pl.Binary})
            todo_rows = uniq.join(found.select("key"), on="key", how="anti", maintain_order="left")
            tx, kx = todo_rows["_text"].to_list(), todo_rows["key"].to_list()
            vecs: list[np.ndarray | None] = [None] * len(tx)
            errors: dict[int, str] = {}
            t0 = time.perf_counter()
            if tx:
                emb._embed_missing(tx, kx, list(range(len(tx))), vecs, errors, None, actx)
            seconds = time.perf_counter() - t0
            ok = [i for i in range(len(tx)) if vecs[i] is not None]
            new = pl.DataFrame({"key": pl.Series([kx[i] for i in ok], dtype=pl.Binary),
                                "v": pl.Series([cast(np.ndarray, vecs[i]).astype(np.float32).tobytes() for i in ok],
                                               dtype=pl.Binary)})
            if cache is not None:
                cache.put(new)
            failed = pl.DataFrame({"key": pl.Series([kx[i] for i in errors], dtype=pl.Binary),
                                   "error": pl.Series(list(errors.values()), dtype=pl.Utf8)})
            out = pl.concat([found.with_columns(pl.lit(None, dtype=pl.Utf8).alias("error")),
                             new.with_columns(pl.lit(None, dtype=pl.Utf8).alias("error")),
                             failed.with_columns(pl.lit(None, dtype=pl.Binary).alias("v")).select("key", "v", "error")])
            wanted = texts.select("key", "_shard").unique(maintain_order=True).join(out, on="key", how="inner")
            scatter(wanted.drop("_shard"), wanted["_shard"], n_shards, root / "byshard", b, work)
            dim = len(new["v"][0]) // 4 if new.height else (len(found["v"][0]) // 4 if found.height else 0)
            return {"unique": uniq.height, "hits": found.height, "todo": len(tx), "errors": len(errors),
                    "seconds": seconds, "dim": dim, "describe": emb.describe() if tx else None}

        return embed_bucket

    def place(i: int) -> dict[str, Any]:
        rows = pl.read_parquet(root / "rows" / f"s{i:05d}.parquet")
        got = gather(root / "byshard", i, {"key": pl.Binary, "v": pl.Binary, "error": pl.Utf8}).drop("_shard")
        got = got.unique("key", keep="first")
        rows = rows.join(got, on="key", how="left", maintain_order="left")
        ok = rows.filter(pl.col("error").is_null())
        bad = rows.filter(pl.col("error").is_not_null()).select("id", "error")
        dim = len(ok["v"][0]) // 4 if ok.height else 0
        mat = np.frombuffer(b"".join(ok["v"].to_list()), dtype=np.float32).reshape(ok.height, dim) if dim else \
            np.zeros((ok.height, 0), np.float32)
        _save_npy(vx.normalize_rows(mat) if dim else mat, root / "emb" / f"s{i:05d}.npy", work)
        _write(ok.select("id"), root / "ids" / f"s{i:05d}.parquet", work)
        _write(bad.with_columns(pl.lit(i, dtype=pl.Int64).alias("_shard")), root / "failed" / f"s{i:05d}.parquet", work)
        return {"ok": ok.height, "dim": dim}

    ex.run(f"{step.id}_texts", keys, range(n_shards))
    done = ex.run(f"{step.id}_embed", lambda b: {}, range(buckets), actor_factory=actor,
                  actors=min(actors, buckets), num_cpus=per_actor_cpus, num_gpus=1 if gpus else 0)
    placed = ex.run(f"{step.id}_place", place, range(n_shards))
    count = sum(c["ok"] for c in placed)
    dim = max([c["dim"] for c in placed] + [0])
    exact_max, recall, seed = p.exact_max, p.index_recall, ctx.seed

    def assemble(_: int) -> dict[str, Any]:
        mat = np.lib.format.open_memmap(folder.file(L.EMBEDDINGS), mode="w+", dtype=np.float32, shape=(count, dim))
        at = 0
        for i in range(n_shards):
            part = np.load(root / "emb" / f"s{i:05d}.npy")
            if part.shape[0]:
                mat[at : at + part.shape[0]] = part
            at += part.shape[0]
        mat.flush()
        pl.scan_parquet([root / "ids" / f"s{i:05d}.parquet" for i in range(n_shards)]).sink_parquet(
            folder.file(L.EMBEDDING_IDS))
        info = None
        if dim and count and count <= exact_max:  # an exact index: one copy of the vectors, built here
            index, built = vx.build_index(np.asarray(mat), exact_max=exact_max, seed=seed, target_recall=recall)
            vx.save_index(index, pl.read_parquet(folder.file(L.EMBEDDING_IDS))["id"], folder.path)
            info = built.to_json()
        return {"index": info}

    index_info = ex.run(f"{step.id}_matrix", assemble, [0])[0]["index"]
    if dim and count > exact_max:
        index_info = _ivf_in_parts(ex, step.id, folder, count, seed=seed, recall=recall)
    describe = next((d["describe"] for d in done if d["describe"] is not None), None)
    if describe is None:  # nothing was embedded (all cached, or no text): ask one actor-like task
        describe = ex.run(f"{step.id}_describe", lambda _: {"d": make().describe()}, [0])[0]["d"]
    todo = sum(d["todo"] for d in done)
    errors = sum(d["errors"] for d in done)
    # the embed round's wall time: actors run several buckets each, in parallel
    seconds = next((sec for name, _, sec in reversed(ex.rounds) if name == f"{step.id}_embed"), 0.0)
    failed = pl.concat([pl.read_parquet(f) for f in sorted((root / "failed").glob("*.parquet"))])
    step.report_extra.update({
        "texts": float(count + failed.height),
        "unique_texts": float(sum(d["unique"] for d in done)),
        "cache_hits": float(sum(d["hits"] for d in done)),
        "embedded": float(todo - errors),
        "embed_texts_per_s": float(todo / seconds if todo and seconds > 0 else 0.0),
    })
    if index_info is not None:
        step.report_extra["index_recall_at_10"] = index_info["recall_at_10"]
    meta = {**describe, "dim": dim, "text": p.text, "count": count, "index": index_info}
    ctx.artifact(L.EMBEDDING_INFO).write_text(json.dumps(meta, indent=2))
    quarantined = failed.select("id", "error") if failed.height else None
    return GlobalResult(quarantined=quarantined), failed.select("id", "_shard")


_write = save_parquet


_save_npy = save_npy


IVF_ADD_ROWS = 100_000  # vectors added to the IVF index per task


def _ivf_in_parts(ex: RayExecutor, sid: str, folder: StepFolder, count: int, *, seed: int,
                  recall: float) -> dict[str, Any]:
    """The local IVF index (:func:`curate.index.vectors.build_index`) built in parts: lists trained on the
    seeded sample in one task, vectors added per slice in parallel, the slices merged in order and nprobe
    tuned in one task. Adding is the part that grows as n^1.5 (every vector against ~4*sqrt(n) lists)."""
    root, work = folder.work / "ivf", folder.work
    slices = max(1, min(256, -(-count // IVF_ADD_ROWS)))
    cuts = [round(c * count / slices) for c in range(slices + 1)]
    t0 = time.perf_counter()

    def train(_: int) -> dict[str, Any]:
        import faiss

        mat = np.load(folder.file(L.EMBEDDINGS), mmap_mode="r")
        nlist, rows = vx.ivf_plan(count, seed=seed)
        index = vx.ivf_trained(np.asarray(mat[rows]), nlist, seed=seed)
        root.mkdir(parents=True, exist_ok=True)
        staged = Staged(root / "trained.faiss", work)
        faiss.write_index(index, str(staged.tmp))
        staged.commit()
        return {}

    def add(c: int) -> dict[str, Any]:
        import faiss

        index = faiss.read_index(str(root / "trained.faiss"))
        mat = np.load(folder.file(L.EMBEDDINGS), mmap_mode="r")
        index.add(np.ascontiguousarray(mat[cuts[c] : cuts[c + 1]], dtype=np.float32))
        staged = Staged(root / f"part{c:05d}.faiss", work)
        faiss.write_index(index, str(staged.tmp))
        staged.commit()
        return {}

    def merge(_: int) -> dict[str, Any]:
        import faiss

        index = faiss.read_index(str(root / "trained.faiss"))
        for c in range(slices):
            index.merge_from(faiss.read_index(str(root / f"part{c:05d}.faiss")), cuts[c])
        mat = np.load(folder.file(L.EMBEDDINGS), mmap_mode="r")
        info = vx.finish_ivf(index, mat, target_recall=recall, seed=seed)
        vx.save_index(index, pl.read_parquet(folder.file(L.EMBEDDING_IDS))["id"], folder.path)
        return info.to_json()

    ex.run(f"{sid}_index_train", train, [0], whole_node=True)
    ex.run(f"{sid}_index_add", add, range(slices))
    info = ex.run(f"{sid}_index_merge", merge, [0], whole_node=True)[0]
    info["seconds"] = time.perf_counter() - t0
    return info
