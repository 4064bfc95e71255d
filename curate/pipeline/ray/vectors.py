"""The run's embedding of each record of a sharded step input, for the distributed scorers.

``score.diversity`` and ``score.map`` read the embeddings in record order (``aligned_vectors`` locally).
On Ray each shard task finds the embedding row of each of its records (:func:`save_vector_rows`, a join
of the shard's ids with ``embedding_ids.parquet``) and saves them; later tasks read the vectors of any
records by their global row number (:func:`vectors_at`) or all of them in record order
(:func:`all_vectors`, for the one task that trains a k-means or a k-NN index the way the local step does),
straight from the memory-mapped ``embeddings.npy``. The driver holds none of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from curate import layout as L
from curate.pipeline.ray.shards import InputShard, save_npy


def row_offsets(shards: list[InputShard]) -> list[int]:
    """Global number of each shard's first row (input order), and the total last."""
    out, total = [], 0
    for s in shards:
        out.append(total)
        total += s.num_rows()
    return [*out, total]


def _vec_file(root: Path, i: int) -> Path:
    return root / "vec" / f"s{i:05d}.npy"


def save_vector_rows(ids: pl.Series, emb_folder: Path, root: Path, i: int, work: Path) -> None:
    """Save the embedding row of each of shard ``i``'s ``ids`` (in order); a record without one is an error,
    as it is for the local step."""
    emb_ids = pl.scan_parquet(emb_folder / L.EMBEDDING_IDS.name).select("id").with_row_index("_vec")
    rows = (pl.DataFrame({"id": ids}).lazy().join(emb_ids, on="id", how="left", maintain_order="left")
            .select("_vec").collect()["_vec"])
    if rows.null_count():
        raise ValueError(f"{rows.null_count()} records have no embedding; the embed step must run on every record")
    save_npy(rows.cast(pl.Int64).to_numpy(), _vec_file(root, i), work)


def _matrix(emb_folder: Path) -> np.ndarray:
    from curate.index.vectors import load_embeddings

    return load_embeddings(emb_folder)[1]


def vector_rows(root: Path, n_shards: int) -> np.ndarray:
    """The embedding row of every record, in record order (8 bytes a record)."""
    parts = [np.load(_vec_file(root, i)) for i in range(n_shards)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _read(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``matrix[rows]`` as float32, read in row order (the matrix is memory-mapped)."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), matrix.shape[1]), dtype=np.float32)
    out[order] = np.asarray(matrix[rows[order]], dtype=np.float32)
    return out


def shard_vectors(root: Path, emb_folder: Path, i: int) -> np.ndarray:
    """The vectors of shard ``i``'s records, in order."""
    return _read(_matrix(emb_folder), np.load(_vec_file(root, i)))


def vectors_at(root: Path, emb_folder: Path, n_shards: int, positions: np.ndarray) -> np.ndarray:
    """The vectors of the records at global row numbers ``positions`` (in that order)."""
    return _read(_matrix(emb_folder), vector_rows(root, n_shards)[np.asarray(positions, dtype=np.int64)])


def all_vectors(root: Path, emb_folder: Path, n_shards: int) -> np.ndarray:
    """Every record's vector in record order (what ``aligned_vectors`` gives the local step)."""
    return _read(_matrix(emb_folder), vector_rows(root, n_shards))
