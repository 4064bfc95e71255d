"""Running one global step (dedup, embed, scorers, label.apply, writers) on the whole previous output.

The step returns decisions, scores and quarantine rows (:class:`GlobalResult`); this module checks
them, applies label protection, flag mode and dry runs, and books them: kept rows (with the new score
columns) to ``kept.parquet``, decisions to the ledger, failures to quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from curate.errors import AccountingError
from curate.layout import StepFolder
from curate.pipeline.batches import error_type, ledger_frame, quarantine_entry
from curate.pipeline.books import PARQUET_OPTS, ROW_GROUP_ROWS, QuarantineSink, note_flags
from curate.pipeline.protection import LABEL_STEP
from curate.schema import COLUMNS
from curate.steps.base import DECISION_SCHEMA, FilterParams, GlobalResult, GlobalStep, StepContext, StepReport


def _decisions(result: GlobalResult) -> pl.DataFrame:
    d = result.decisions if result.decisions is not None else pl.DataFrame(schema=DECISION_SCHEMA)
    return d.select([pl.col(c).cast(t) if c in d.columns else pl.lit(None, dtype=t).alias(c)
                     for c, t in DECISION_SCHEMA.items()])


def _with_scores(result: GlobalResult, extra: pl.DataFrame) -> GlobalResult:
    scores = extra if result.scores is None else result.scores.join(extra, on="id", how="full", coalesce=True)
    return GlobalResult(scores=scores, quarantined=result.quarantined)


@dataclass
class Settled:
    """A global step's result after labels, flag mode and dry run: what the books write."""

    decisions: pl.DataFrame  # DECISION_SCHEMA: rows to remove
    scores: pl.DataFrame | None  # id + columns joined onto the kept rows
    quarantined: pl.DataFrame  # id + error
    decided: pl.Series  # every id the step decided about (before flag mode and dry run): all must be inputs


def settle_result(step: GlobalStep, result: GlobalResult, ctx: StepContext, rep: StepReport, *,
                  dry_run: bool) -> Settled:
    """Check a global step's result and apply label protection, flag mode and the dry run to it.

    Executors book the :class:`Settled` result their own way (one file, or shards on Ray).
    """
    decisions = _decisions(result)
    if decisions["id"].n_unique() != len(decisions):
        raise AccountingError(f"step {step.id} decided about the same record twice")
    protected = ctx.protected_ids
    if step.key != LABEL_STEP and protected:  # label.apply's drops are labels themselves
        kept_by_label = decisions.filter(pl.col("id").is_in(list(protected)))
        if len(kept_by_label):
            rep.extra["kept_by_label"] = len(kept_by_label)
            decisions = decisions.filter(~pl.col("id").is_in(list(protected)))
    quarantined = result.quarantined if result.quarantined is not None else pl.DataFrame(
        schema={"id": pl.Utf8, "error": pl.Utf8})
    decided = decisions["id"]
    flag_mode = isinstance(step.params, FilterParams) and step.params.mode == "flag"
    if flag_mode and not dry_run and len(decisions):
        flags = decisions.select("id", pl.col("reason").alias(f"{step.id}.flag"))
        for reason, fids in flags.group_by(f"{step.id}.flag", maintain_order=True).agg("id").iter_rows():
            note_flags(rep, reason, list(fids))
        result = _with_scores(result, flags)
        decisions = decisions.clear()
    if dry_run and len(decisions):
        would = decisions.rename({"reason": f"{step.id}.would_remove", "duplicate_of": f"{step.id}.duplicate_of",
                                  "similarity": f"{step.id}.similarity"})
        result = _with_scores(result, would)
        decisions = decisions.clear()
    scores = result.scores
    if scores is not None and len(scores):
        clash = [c for c in scores.columns if c != "id" and c in COLUMNS]
        if clash:
            raise AccountingError(f"step {step.id} tried to overwrite schema columns {clash}")
    return Settled(decisions=decisions, scores=scores, quarantined=quarantined, decided=decided)


def run_global(step: GlobalStep, prev: Path, folder: StepFolder, ctx: StepContext, rep: StepReport, *,
               dry_run: bool) -> None:
    """Run ``step`` over the records in ``prev`` and book the result into ``folder`` and ``rep``."""
    ds = pl.scan_parquet(prev)
    rep.n_in = ds.select(pl.len()).collect().item()
    step.prepare(ctx)
    step.report_extra = {}
    result = step.run(ds, ctx)
    ids = ds.select("id")
    settled = settle_result(step, result, ctx, rep, dry_run=dry_run)
    decisions, quarantined = settled.decisions, settled.quarantined
    unknown = pl.DataFrame({"id": settled.decided}).join(ids.collect(), on="id", how="anti")
    if len(unknown):
        raise AccountingError(f"step {step.id} decided about {len(unknown)} ids not in its input")
    removed_ids = pl.concat([decisions.select("id"), quarantined.select("id")])
    kept = ds.join(removed_ids.lazy(), on="id", how="anti", maintain_order="left")
    if settled.scores is not None and len(settled.scores):
        score_cols = [c for c in settled.scores.columns if c != "id"]
        kept = kept.drop([c for c in score_cols if c in kept.collect_schema().names()]).join(
            settled.scores.lazy(), on="id", how="left", maintain_order="left")
    kept.sink_parquet(folder.kept, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTS)
    rep.n_out = pq.ParquetFile(folder.kept).metadata.num_rows
    if len(decisions):
        removed = ds.join(decisions.lazy(), on="id", how="inner", maintain_order="left").collect()
        ledger = ledger_frame(removed, step.id, removed["reason"], removed["duplicate_of"], removed["similarity"])
        ledger.write_parquet(folder.ledger, **PARQUET_OPTS)
        rep.rejected.update(ledger["reason"].to_list())
    if len(quarantined):
        qsink = QuarantineSink(folder.quarantine)
        qrows = ds.join(quarantined.lazy(), on="id", how="inner", maintain_order="left").select(
            "id", "source", "provenance", "error").collect()
        for row in qrows.iter_rows(named=True):
            reason = error_type(row["error"] or "error")
            qsink.write(quarantine_entry(step.id, row, reason, row["error"]))
            rep.quarantined[reason] += 1
        qsink.close()
    rep.extra.update(step.report_extra)
