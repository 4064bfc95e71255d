"""The labels store: what people decided in the browser, kept beside the recipe so it outlives a run.

One SQLite file (default ``runs/<name>/labels.sqlite``, the run directory's parent) in WAL mode.
Rows are only ever appended: the history of every record is kept, and the latest row per record is
its effective label (``clear`` withdraws a label). Each write is one short ``BEGIN IMMEDIATE``
transaction with a generous ``busy_timeout``, so two browser sessions (or a session and an export)
labelling at once both land. A connection is opened per call: Streamlit serves each session from
its own thread and sqlite3 connections must not cross threads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from curate.errors import ConfigError, MissingResourceError
from curate.layout import LABELS_DB, RecipeLayout, RunLayout

LABELS: tuple[str, ...] = ("keep", "drop", "not_duplicate", "clear")
DEFAULT_NAME = LABELS_DB
BUSY_TIMEOUT_MS = 30_000
LABEL_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "record_id": pl.Utf8(),
    "label": pl.Utf8(),
    "tags": pl.List(pl.Utf8()),
    "note": pl.Utf8(),
    "annotator": pl.Utf8(),
    "ts": pl.Utf8(),
}
_DDL = """
CREATE TABLE IF NOT EXISTS labels (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  record_id TEXT NOT NULL,
  label TEXT NOT NULL CHECK (label IN ('keep', 'drop', 'not_duplicate', 'clear')),
  tags TEXT NOT NULL DEFAULT '[]',
  note TEXT NOT NULL DEFAULT '',
  annotator TEXT NOT NULL DEFAULT '',
  ts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_record ON labels (record_id, seq);
"""


def default_labels_path(run_dir: str | Path) -> Path:
    """``runs/<name>/labels.sqlite`` for the run ``runs/<name>/<ts>``: shared by every run of a recipe."""
    return RunLayout(Path(run_dir).resolve()).recipe.labels


def resolve_labels_path(target: str | Path) -> Path:
    """A labels file from a run dir, a recipe's run folder (``runs/<name>``) or the file itself."""
    p = Path(target)
    if p.is_dir():
        return default_labels_path(p) if RunLayout(p).spec.exists() else RecipeLayout(p).labels
    return p


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class LabelStore:
    """Append-only labels in SQLite; ``effective()`` gives the latest label per record."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise MissingResourceError(f"{self.path}: no labels file (label records in `curate browse` first)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_DDL)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)) as con:
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA synchronous=NORMAL")
            yield con

    def add(
        self,
        record_ids: Iterable[str],
        label: str,
        *,
        tags: Sequence[str] = (),
        note: str = "",
        annotator: str = "",
    ) -> int:
        """Label every id in one transaction; returns how many rows were written."""
        if label not in LABELS:
            raise ConfigError(f"label must be one of {LABELS}, got {label!r}")
        clean_tags = sorted({t.strip() for t in tags if t and t.strip()})
        ts = _now()
        rows = [(rid, label, json.dumps(clean_tags), note or "", annotator or "", ts) for rid in dict.fromkeys(record_ids)]
        if not rows:
            return 0
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(
                    "INSERT INTO labels (record_id, label, tags, note, annotator, ts) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        return len(rows)

    def _frame(self, sql: str, params: Sequence[object] = ()) -> pl.DataFrame:
        with self._connect() as con:
            rows = con.execute(sql, params).fetchall()
        return pl.DataFrame(
            [(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows],
            schema=LABEL_SCHEMA,
            orient="row",
        )

    def history(self, record_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Every row ever written (optionally for some records), oldest first."""
        cols = "seq, record_id, label, tags, note, annotator, ts"
        if record_ids is None:
            return self._frame(f"SELECT {cols} FROM labels ORDER BY seq")
        marks = ",".join("?" * len(record_ids))
        return self._frame(f"SELECT {cols} FROM labels WHERE record_id IN ({marks}) ORDER BY seq", list(record_ids))

    def effective(self, annotators: Sequence[str] | None = None) -> pl.DataFrame:
        """The latest label per record (``clear`` removes it), optionally counting only some annotators."""
        where, params = "", []
        if annotators:
            where = f"WHERE annotator IN ({','.join('?' * len(annotators))})"
            params = list(annotators)
        return self._frame(
            "SELECT l.seq, l.record_id, l.label, l.tags, l.note, l.annotator, l.ts FROM labels l "
            f"JOIN (SELECT record_id, MAX(seq) AS seq FROM labels {where} GROUP BY record_id) m "
            "ON l.seq = m.seq WHERE l.label != 'clear' ORDER BY l.seq",
            params,
        )

    def count(self) -> int:
        """How many records have an effective label."""
        with self._connect() as con:
            row = con.execute(
                "SELECT COUNT(*) FROM labels l JOIN (SELECT record_id, MAX(seq) AS seq FROM labels GROUP BY record_id) m"
                " ON l.seq = m.seq WHERE l.label != 'clear'"
            ).fetchone()
        return int(row[0])

    def ids(self, label: str, annotators: Sequence[str] | None = None) -> frozenset[str]:
        eff = self.effective(annotators)
        return frozenset(eff.filter(pl.col("label") == label)["record_id"].to_list())

    def export(self, out: str | Path, fmt: str, history: bool = False) -> int:
        """Write effective labels (or the full history) as Parquet or JSONL; returns the row count."""
        df = self.history() if history else self.effective()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            df.write_parquet(out)
        elif fmt == "jsonl":
            df.write_ndjson(out)
        else:
            raise ConfigError(f"labels export format must be parquet or jsonl, got {fmt!r}")
        return df.height
