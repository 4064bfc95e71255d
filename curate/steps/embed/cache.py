"""A persistent embedding cache keyed by (model key, text hash): one SQLite file with vector BLOBs.

Why SQLite: one file, safe under concurrent readers, a primary-key lookup per text with no index to
load in RAM, and it scales to millions of rows (1M x 384 float32 is about 1.6 GB on disk). Lookups go
through a temporary key table joined against the store, so 1M keys cost one query, not 1M.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

DEFAULT_DIR = "~/.cache/curate/embeddings"
ENV_VAR = "CURATE_CACHE_DIR"


def cache_dir(param: str | None) -> Path:
    """The cache folder: the ``CURATE_CACHE_DIR`` environment variable wins, then the step's param."""
    env = os.environ.get(ENV_VAR)
    return Path(env or param or DEFAULT_DIR).expanduser()


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    """``get``/``put`` vectors of one model key; vectors are stored as float32 bytes."""

    def __init__(self, folder: Path, model_key: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "embeddings.sqlite"
        self.model_key = model_key
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vec (model TEXT NOT NULL, key BLOB NOT NULL, dim INTEGER NOT NULL, "
            "v BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID"
        )

    def get(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        """Vectors found for ``keys`` (missing keys are absent from the result)."""
        if not keys:
            return {}
        cur = self.db.cursor()
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS want (key BLOB PRIMARY KEY) WITHOUT ROWID")
        cur.execute("DELETE FROM want")
        cur.executemany("INSERT OR IGNORE INTO want VALUES (?)", ((k,) for k in keys))
        rows = cur.execute(
            "SELECT vec.key, vec.v FROM want JOIN vec ON vec.model = ? AND vec.key = want.key", (self.model_key,)
        ).fetchall()
        cur.execute("DELETE FROM want")
        return {k: np.frombuffer(v, dtype=np.float32) for k, v in rows}

    def put(self, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO vec VALUES (?, ?, ?, ?)",
            (
                (self.model_key, k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                for k, v in items
            ),
        )
        self.db.commit()

    def close(self) -> None:
        self.db.close()
