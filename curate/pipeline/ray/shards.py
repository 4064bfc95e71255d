"""Shards: what one task reads, how it writes its files, and how the driver adds up their counts.

A step's input is the previous step's kept rows, cut into :class:`InputShard` s: each file of a sharded
``kept.parquet/`` folder, or row-group ranges of about ``shard_rows`` rows of a single ``kept.parquet``
(a step the local executor wrote, reused from the cache). Output shard ``i`` comes from input shard
``i``, so a run keeps the ingest's shards, in input order, from step to step, and reading a step's
shards in name order gives its rows in the order the local executor writes them.

Every file of a shard is written under a temporary name in the step's ``work/`` folder and renamed into
place (:class:`Staged`); the shard's counts file (layout ``SHARD_COUNTS``) is renamed last. A task run
twice (its worker died, Ray retried it) rewrites the same names, so a shard is counted and booked once
whatever the number of attempts: the driver reads exactly one counts file per shard id.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import AccountingError
from curate.layout import StepFolder
from curate.pipeline.books import FLAG_EXAMPLES, PARQUET_OPTS, ROW_GROUP_ROWS
from curate.steps.base import StepReport


@dataclass(frozen=True)
class InputShard:
    """One task's input: a Parquet file, or some of its row groups."""

    path: str
    row_groups: tuple[int, ...] | None = None  # None: the whole file

    def num_rows(self) -> int:
        md = pq.ParquetFile(self.path).metadata
        if self.row_groups is None:
            return int(md.num_rows)
        return sum(md.row_group(g).num_rows for g in self.row_groups)

    def batches(self, batch_size: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        pf = pq.ParquetFile(self.path)
        groups = list(self.row_groups) if self.row_groups is not None else None
        yield from pf.iter_batches(batch_size=batch_size, row_groups=groups, columns=columns)

    def scan(self, columns: list[str] | None = None) -> pl.LazyFrame:
        """The shard's rows as a LazyFrame (read in full only when the shard is a row-group range)."""
        if self.row_groups is None:
            lf = pl.scan_parquet(self.path)
            return lf.select(columns) if columns is not None else lf
        table = pq.ParquetFile(self.path).read_row_groups(list(self.row_groups), columns=columns)
        return pl.from_arrow(table).lazy()  # type: ignore[union-attr]

    def schema(self) -> pa.Schema:
        return pq.read_schema(self.path)


def input_shards(prev: StepFolder, shard_rows: int) -> list[InputShard]:
    """The shards a step reads from ``prev``'s kept rows (at least one)."""
    files = prev.kept_files()
    if prev.kept.is_dir():
        if not files:
            raise AccountingError(f"{prev.kept}: a sharded step output with no shards")
        return [InputShard(str(f)) for f in files]
    md = pq.ParquetFile(files[0]).metadata
    shards: list[InputShard] = []
    group: list[int] = []
    rows = 0
    for g in range(md.num_row_groups):
        group.append(g)
        rows += md.row_group(g).num_rows
        if rows >= shard_rows:
            shards.append(InputShard(str(files[0]), tuple(group)))
            group, rows = [], 0
    if group or not shards:
        shards.append(InputShard(str(files[0]), tuple(group) if shards else None))
    return shards


# ------------------------------------------------------------------------------------- atomic writes


class Staged:
    """A file written under a temporary name in ``work`` and renamed to ``final`` by :meth:`commit`."""

    def __init__(self, final: Path, work: Path) -> None:
        self.final = final
        tmp_dir = work / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_dir / f"{final.name}.{os.getpid()}-{secrets.token_hex(4)}"

    def commit(self) -> None:
        """Rename into place (replacing an earlier attempt's file); nothing when nothing was written."""
        if self.tmp.exists():
            self.final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp, self.final)


def save_parquet(df: pl.DataFrame, final: Path, work: Path, **write_opts: Any) -> None:
    """Write ``df`` at ``final`` atomically (a retried task replaces its earlier attempt's file)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = Staged(final, work)
    df.write_parquet(staged.tmp, **write_opts)
    staged.commit()


def save_npy(arr: np.ndarray, final: Path, work: Path) -> None:
    """Save ``arr`` at ``final`` atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = Staged(final, work)
    with staged.tmp.open("wb") as fh:
        np.save(fh, arr)
    staged.commit()


@dataclass(frozen=True)
class ShardFiles:
    """The temporary kept / ledger / quarantine files of one shard (what :class:`BatchBooks` writes)."""

    kept_file: Staged
    ledger_file: Staged
    quarantine_file: Staged

    @classmethod
    def of(cls, folder: StepFolder, i: int) -> ShardFiles:
        return cls(Staged(folder.kept_shard(i), folder.work), Staged(folder.ledger_shard(i), folder.work),
                   Staged(folder.quarantine_shard(i), folder.work))

    @property
    def kept(self) -> Path:
        return self.kept_file.tmp

    @property
    def ledger(self) -> Path:
        return self.ledger_file.tmp

    @property
    def quarantine(self) -> Path:
        return self.quarantine_file.tmp

    def commit(self) -> None:
        """Ledger and quarantine first, kept rows last (the counts file, written after, marks the shard done)."""
        self.ledger_file.commit()
        self.quarantine_file.commit()
        self.kept_file.commit()


def write_parquet(df: pl.DataFrame, final: Path, work: Path) -> None:
    """One Parquet file, atomically, with the run's Parquet options."""
    staged = Staged(final, work)
    df.write_parquet(staged.tmp, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTS)
    staged.commit()


def write_json(obj: Any, final: Path, work: Path) -> None:
    staged = Staged(final, work)
    staged.tmp.write_text(json.dumps(obj))
    staged.commit()


# ------------------------------------------------------------------------------------------ counts


@dataclass
class ShardCounts:
    """Where one shard's input rows went (layout ``SHARD_COUNTS_SHAPE``); the driver adds them up."""

    shard: int
    n_in: int = 0
    n_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    flagged: Counter[str] = field(default_factory=Counter)
    flag_examples: dict[str, list[str]] = field(default_factory=dict)
    extra: Counter[str] = field(default_factory=Counter)
    overridden: int = 0
    more: dict[str, Any] = field(default_factory=dict)  # a step's own per-shard figures

    @classmethod
    def of_report(cls, shard: int, rep: StepReport, extra: Counter[str] | None = None,
                  overridden: int = 0) -> ShardCounts:
        return cls(shard, rep.n_in, rep.n_out, Counter(rep.rejected), Counter(rep.quarantined),
                   Counter(rep.flagged), dict(rep.flag_examples), Counter(extra or {}), overridden)

    def to_json(self) -> dict[str, Any]:
        return {"shard": self.shard, "n_in": self.n_in, "n_out": self.n_out, "rejected": dict(self.rejected),
                "quarantined": dict(self.quarantined), "flagged": dict(self.flagged),
                "flag_examples": self.flag_examples, "extra": dict(self.extra), "overridden": self.overridden,
                "more": self.more}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShardCounts:
        return cls(int(d["shard"]), int(d["n_in"]), int(d["n_out"]), Counter(d["rejected"]),
                   Counter(d["quarantined"]), Counter(d["flagged"]), dict(d["flag_examples"]),
                   Counter(d["extra"]), int(d["overridden"]), dict(d.get("more", {})))

    def save(self, folder: StepFolder) -> None:
        from curate.pipeline.ray.cluster import node_id

        self.more.setdefault("node", node_id())
        write_json(self.to_json(), folder.shard_counts(self.shard), folder.work)


def read_counts(folder: StepFolder, n_shards: int) -> list[ShardCounts]:
    """Every shard's counts, by shard id; a shard without one did not finish (raises AccountingError)."""
    out = []
    for i in range(n_shards):
        path = folder.shard_counts(i)
        if not path.exists():
            raise AccountingError(f"step {folder.step_id}: shard {i} has no counts ({path}); its task did not finish")
        counts = ShardCounts.from_json(json.loads(path.read_text()))
        if counts.shard != i:
            raise AccountingError(f"{path}: counts of shard {counts.shard}, expected {i}")
        out.append(counts)
    return out


def add_up(parts: list[ShardCounts], rep: StepReport) -> tuple[Counter[str], int]:
    """Shard counts into ``rep`` in shard order (flag examples: the first ones, as one pass would keep);
    returns the summed step totals and label overrides."""
    extra: Counter[str] = Counter()
    overridden = 0
    for c in parts:
        rep.n_in += c.n_in
        rep.n_out += c.n_out
        rep.rejected.update(c.rejected)
        rep.quarantined.update(c.quarantined)
        rep.flagged.update(c.flagged)
        for reason, ids in c.flag_examples.items():
            examples = rep.flag_examples.setdefault(reason, [])
            examples.extend(ids[: FLAG_EXAMPLES - len(examples)])
        extra.update(c.extra)
        overridden += c.overridden
    return extra, overridden


def unify_schemas(folder: StepFolder, n_shards: int) -> list[int]:
    """Shards whose kept schema differs from the step's (an empty shard has no score columns, a column null in
    one shard has another type): the step's schema is the first non-empty shard's, widened by every other
    shard's columns. Returns the shards that :func:`conform_shard` must rewrite."""
    schemas = [pq.read_schema(folder.kept_shard(i)) for i in range(n_shards)]
    rows = [pq.ParquetFile(folder.kept_shard(i)).metadata.num_rows for i in range(n_shards)]
    target = target_schema(schemas, rows)
    return [i for i, s in enumerate(schemas) if not s.equals(target)]


def target_schema(schemas: list[pa.Schema], rows: list[int]) -> pa.Schema:
    order = [i for i in range(len(schemas)) if rows[i]] + [i for i in range(len(schemas)) if not rows[i]]
    fields: dict[str, pa.Field[Any]] = {}
    for i in order:
        for f in schemas[i]:
            have = fields.get(f.name)
            if have is None or pa.types.is_null(have.type):
                fields[f.name] = f
    return pa.schema(list(fields.values()))


def conform_shard(folder: StepFolder, i: int, target: pa.Schema) -> None:
    """Rewrite shard ``i`` with the step's schema: missing columns as nulls, columns cast, in order."""
    table = pq.read_table(folder.kept_shard(i))
    cols = []
    for f in target:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, type=f.type))
    staged = Staged(folder.kept_shard(i), folder.work)
    pq.write_table(pa.Table.from_arrays(cols, schema=target), staged.tmp, row_group_size=ROW_GROUP_ROWS,
                   **PARQUET_OPTS)
    staged.commit()
