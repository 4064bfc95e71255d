"""The request cache: one SQLite file of answers, keyed by a hash of everything that decides an answer.

The key covers the endpoint's ``base_url``, the model, the messages and the sampling parameters
(seed included), so a rerun asks the endpoint nothing it already answered, and a run killed halfway
resumes where it stopped: every answer is committed as it arrives (WAL, so a kill loses at most the
requests in flight). Failed requests are never stored, so a rerun retries them.

Default place: ``llm_cache.sqlite`` beside the run directories of a recipe (``runs/<name>/``, like the
labels store), shared by every run of that recipe.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from curate.layout import LLM_CACHE_DB, RunLayout

DEFAULT_NAME = LLM_CACHE_DB
BUSY_TIMEOUT_S = 30.0
_DDL = """
CREATE TABLE IF NOT EXISTS answers (
  key TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  text TEXT NOT NULL,
  finish_reason TEXT,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  created TEXT NOT NULL
) WITHOUT ROWID;
"""


def default_cache_path(run_dir: str | Path) -> Path:
    """``runs/<name>/llm_cache.sqlite`` for the run ``runs/<name>/<ts>``: shared by every run of a recipe."""
    return RunLayout(Path(run_dir).resolve()).recipe.llm_cache


def request_key(base_url: str, model: str, messages: Sequence[Mapping[str, str]], sampling: Mapping[str, Any]) -> str:
    """Hex hash of what decides an answer: endpoint, model, messages, sampling parameters (with the seed)."""
    blob = json.dumps(
        {"v": 1, "base_url": base_url.rstrip("/"), "model": model,
         "messages": [{"role": m["role"], "content": m["content"]} for m in messages], "sampling": dict(sampling)},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


class RequestCache:
    """``get``/``put`` answers by request key. Use from one thread (the client's main thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_DDL)

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        out: dict[str, CachedAnswer] = {}
        uniq = list(dict.fromkeys(keys))
        for start in range(0, len(uniq), 500):  # SQLite's bound-parameter limit
            chunk = uniq[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text, fr, pt, ct in self.db.execute(
                f"SELECT key, text, finish_reason, prompt_tokens, completion_tokens FROM answers WHERE key IN ({marks})",
                chunk,
            ):
                out[key] = CachedAnswer(text, fr, int(pt), int(ct))
        return out

    def put(self, key: str, model: str, answer: CachedAnswer) -> None:
        """Store one answer at once (its own transaction): a kill right after loses nothing."""
        self.db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, model, answer.text, answer.finish_reason, answer.prompt_tokens, answer.completion_tokens,
             datetime.now(timezone.utc).isoformat(timespec="seconds")),
        )

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self.db.close()
