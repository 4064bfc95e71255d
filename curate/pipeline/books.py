"""The books of a run: where every record goes (kept, ledger, quarantine) and the checks that they balance.

* :class:`ParquetSink` / :class:`QuarantineSink` stream a step's kept rows, ledger rows and quarantine
  entries into the files the run layout names;
* :class:`BatchBooks` adds up a batch step's outcomes into its :class:`StepReport`;
* :func:`check_step` enforces ``n_in + n_added == n_out + rejected + quarantined`` and the quarantine
  limit after every step; :func:`check_totals` the same over the whole run.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Protocol, cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import AccountingError
from curate.layout import StepFolder
from curate.pipeline.batches import BatchOutcome
from curate.steps.base import Step, StepReport, Transform

PARQUET_OPTS: dict[str, Any] = {"compression": "zstd", "compression_level": 3}
ROW_GROUP_ROWS = 16_384  # small row groups: the browser fetches a few scattered records cheaply
FLAG_EXAMPLES = 20  # ids kept per flag reason in report.json, to read before turning a flag into a removal


class ParquetSink:
    """Streams batches into one Parquet file with a fixed schema (created even when empty)."""

    def __init__(self, path: Path, schema: pa.Schema | None = None) -> None:
        self.path = path
        self.schema = schema
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, df: pl.DataFrame) -> None:
        if df.width == 0:
            return
        table = df.to_arrow()
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema, **PARQUET_OPTS)
        elif table.schema != self.schema:
            table = table.cast(cast(pa.Schema, self.schema))
        if table.num_rows:
            self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self.rows += table.num_rows

    def close(self, empty_like: pl.DataFrame | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
        elif empty_like is not None:
            empty_like.clear().write_parquet(self.path, **PARQUET_OPTS)


class QuarantineSink:
    """Streams quarantine entries into a JSONL file; no file when there were none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = path.open("w", encoding="utf-8")
        self.count = 0

    def write(self, entry: dict[str, Any]) -> None:
        self.fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        self.count += 1

    def close(self) -> None:
        self.fh.close()
        if self.count == 0:
            self.path.unlink(missing_ok=True)


def note_flags(rep: StepReport, reason: str, ids: list[str]) -> None:
    """Count kept records flagged for review and keep a few of their ids as examples."""
    rep.flagged[reason] += len(ids)
    examples = rep.flag_examples.setdefault(reason, [])
    examples.extend(ids[: FLAG_EXAMPLES - len(examples)])


class BookFiles(Protocol):
    """Where a batch step's books write: a :class:`StepFolder`, or one shard's files (executor.kind: ray)."""

    @property
    def kept(self) -> Path: ...

    @property
    def ledger(self) -> Path: ...

    @property
    def quarantine(self) -> Path: ...


class BatchBooks:
    """A batch step's books: each outcome's rows go to their files and are counted in the step report."""

    def __init__(self, folder: BookFiles | StepFolder, rep: StepReport) -> None:
        self.rep = rep
        self.kept = ParquetSink(folder.kept)
        self.ledger = ParquetSink(folder.ledger)
        self.quarantine = QuarantineSink(folder.quarantine)
        self.extra: Counter[str] = Counter()
        self.overridden = 0
        self.last_kept: pl.DataFrame | None = None

    def add(self, oc: BatchOutcome) -> int:
        """Book one batch's outcome; returns how many input rows it accounts for."""
        rep = self.rep
        self.kept.write(oc.kept)
        self.last_kept = oc.kept
        if len(oc.ledger):
            self.ledger.write(oc.ledger)
            rep.rejected.update(oc.ledger["reason"].to_list())
        for q in oc.quarantined:
            self.quarantine.write(q)
            rep.quarantined[q["reason"]] += 1
        rep.n_out += len(oc.kept)
        for reason, ids in oc.flagged.items():
            note_flags(rep, reason, ids)
        self.extra.update(oc.extra)
        self.overridden += oc.overridden
        return len(oc.kept) + len(oc.ledger) + len(oc.quarantined)

    def close(self, empty_like: pl.DataFrame) -> None:
        """Close the files; an empty kept.parquet takes the schema of ``empty_like``."""
        self.kept.close(empty_like=self.last_kept if self.last_kept is not None else empty_like)
        self.ledger.close()
        self.quarantine.close()

    def settle(self, step: Step, prepared: dict[str, float]) -> None:
        """Check that every input row was kept, rejected or quarantined; put the step's totals in the report."""
        settle_batch_step(step, self.rep, self.extra, prepared, self.overridden)


def settle_batch_step(step: Step, rep: StepReport, extra: Counter[str], prepared: dict[str, float],
                      overridden: int) -> None:
    """A batch step's totals (however many batches or shards they were added up from) into ``rep``.

    Raises AccountingError when rows were lost, or added by a step that is not a transform.
    """
    produced = rep.n_out + sum(rep.rejected.values()) + sum(rep.quarantined.values())
    if produced < rep.n_in:
        raise AccountingError(
            f"step {step.id} lost {rep.n_in - produced} records without a reason: a step must keep, "
            "reject or quarantine every row"
        )
    if produced > rep.n_in and not isinstance(step, Transform):
        raise AccountingError(f"step {step.id} (a {step.kind}) produced {produced - rep.n_in} extra rows")
    rep.n_added = produced - rep.n_in
    rep.extra.update(extra)
    rep.extra.update(prepared)
    if overridden:
        rep.extra["kept_by_label"] = overridden


def check_step(rep: StepReport, max_quarantine_frac: float, quarantine_dir: Path) -> None:
    """The invariant after every step, and the quarantine limit. Raises AccountingError naming the step."""
    if not rep.balanced():
        raise AccountingError(
            f"step {rep.step_id}: counts do not balance: in {rep.n_in} + added {rep.n_added} != "
            f"out {rep.n_out} + rejected {sum(rep.rejected.values())} + "
            f"quarantined {sum(rep.quarantined.values())}"
        )
    q = sum(rep.quarantined.values())
    if rep.n_in and q / rep.n_in > max_quarantine_frac:
        top = ", ".join(f"{k} {v}" for k, v in rep.quarantined.most_common(3))
        raise AccountingError(
            f"step {rep.step_id} quarantined {q} of {rep.n_in} records ({q / rep.n_in:.1%}), over "
            f"limits.max_quarantine_frac={max_quarantine_frac} ({top}); see {quarantine_dir}. "
            "Fix the input or raise the limit in the recipe."
        )


def check_totals(totals: dict[str, int]) -> None:
    """Every record read (or added by splitting) is kept, in the ledger, or in quarantine."""
    if totals["read"] + totals["added"] != totals["kept"] + totals["removed"] + totals["quarantined"]:
        raise AccountingError(f"run totals do not balance: {totals}")
