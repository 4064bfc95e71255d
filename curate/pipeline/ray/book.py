"""A global step's settled result (decisions, scores, quarantine) written into every shard.

Each shard task does for its own rows what :func:`curate.pipeline.global_step.run_global` does for the
whole set: the kept rows are the shard minus the removed and quarantined ids (order kept) with the
score columns joined on, the ledger rows are the removed records with their reasons, the quarantine
entries name each failed record. Results that a distributed step computed per shard arrive per shard
(:class:`ByShard`); a driver step's result is sent whole to every shard (one copy per node). A
distributed scorer that gives every record a score writes them per shard instead
(:func:`write_shard_scores`), so the driver never holds a column as long as the set.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from curate.errors import AccountingError
from curate.layout import StepFolder
from curate.pipeline.batches import error_type, ledger_frame, quarantine_entry
from curate.pipeline.books import PARQUET_OPTS, ROW_GROUP_ROWS, QuarantineSink
from curate.pipeline.cache import link_or_copy
from curate.pipeline.global_step import Settled
from curate.pipeline.ray.shards import InputShard, ShardCounts, ShardFiles, save_parquet
from curate.schema import COLUMNS


def write_shard_decisions(decisions: pl.DataFrame, folder: StepFolder) -> int:
    """Write a distributed step's decisions (DECISION_SCHEMA + ``_shard``) into one file per shard they
    concern, atomically; the executor books them there (label protection and dry run applied per shard).
    Returns the number of decisions."""
    for (s,), part in decisions.group_by("_shard", maintain_order=True):
        save_parquet(part.drop("_shard"), folder.shard_decisions(int(s)), folder.work)
    return decisions.height


@dataclass(frozen=True)
class ShardSettle:
    """What :func:`curate.pipeline.global_step.settle_result` does to decisions, for the ones a shard task
    reads from its decisions file: records a person labelled keep are not removed, a dry run removes
    nothing and adds ``<step>.would_remove`` columns instead."""

    protected: frozenset[str] = frozenset()
    dry_run: bool = False


def _settle_here(step_id: str, decisions: pl.DataFrame, settle: ShardSettle,
                 counts: ShardCounts) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.Series]:
    """One shard's decisions after label protection and the dry run: ``(to apply, scores the dry run adds,
    ids decided)``."""
    if settle.protected:
        keep = decisions["id"].is_in(list(settle.protected))
        if keep.any():
            counts.more["kept_by_label"] = int(keep.sum())
            decisions = decisions.filter(~keep)
    counts.more["decided_total"] = decisions.height
    if not settle.dry_run or not decisions.height:
        return decisions, None, decisions["id"]
    would = decisions.rename({"reason": f"{step_id}.would_remove", "duplicate_of": f"{step_id}.duplicate_of",
                              "similarity": f"{step_id}.similarity"})
    return decisions.clear(), would, decisions["id"]


def write_shard_scores(df: pl.DataFrame, folder: StepFolder, i: int) -> None:
    """Write shard ``i``'s score columns (``id`` + ``<step_id>.<metric>``) atomically."""
    clash = [c for c in df.columns if c != "id" and c in COLUMNS]
    if clash:
        raise AccountingError(f"step {folder.step_id} tried to overwrite schema columns {clash}")
    save_parquet(df, folder.shard_scores(i), folder.work)


@dataclass
class ShardPart:
    """The part of a settled result that concerns one shard."""

    decisions: pl.DataFrame
    scores: pl.DataFrame | None
    quarantined: pl.DataFrame
    decided: pl.Series


def split_by_shard(settled: Settled, shard_of: pl.DataFrame | None, n_shards: int) -> list[ShardPart] | None:
    """``settled`` cut per shard with ``shard_of`` (``id``, ``_shard`` of every id the result names), or None
    when there is no such map (the whole result then goes to every shard)."""
    if shard_of is None:
        return None

    def cut(df: pl.DataFrame) -> dict[int, pl.DataFrame]:
        tagged = df.join(shard_of, on="id", how="left")
        parts = {}
        for (s,), part in tagged.group_by("_shard", maintain_order=True):
            if s is None:
                continue  # an id no shard holds: found by the unknown-id check in every shard's counts
            parts[int(s)] = part.drop("_shard")
        return parts

    dec = cut(settled.decisions)
    sco = cut(settled.scores) if settled.scores is not None else {}
    qua = cut(settled.quarantined)
    ids = cut(pl.DataFrame({"id": settled.decided}))
    return [ShardPart(decisions=dec.get(i, settled.decisions.clear()),
                      scores=sco.get(i, settled.scores.clear()) if settled.scores is not None else None,
                      quarantined=qua.get(i, settled.quarantined.clear()),
                      decided=ids[i]["id"] if i in ids else settled.decided.clear())
            for i in range(n_shards)]


def book_shard(i: int, shard: InputShard, folder: StepFolder, step_id: str, part: ShardPart,
               settle: ShardSettle | None = None) -> dict[str, Any]:
    """Write output shard ``i`` of a global step from input shard ``i`` and its part of the result (and the
    decisions and scores the step's tasks wrote for this shard)."""
    files = ShardFiles.of(folder, i)
    ds = shard.scan()
    counts = ShardCounts(i)
    counts.n_in = shard.num_rows()
    counts.more["decided_here"] = 0
    if part.scores is None and folder.shard_scores(i).exists():  # written per shard by the step's tasks
        part = replace(part, scores=pl.read_parquet(folder.shard_scores(i)))
    if folder.shard_decisions(i).exists():
        mine, would, decided = _settle_here(step_id, pl.read_parquet(folder.shard_decisions(i)),
                                            settle or ShardSettle(), counts)
        scores = part.scores
        if would is not None:
            scores = would if scores is None else scores.join(would, on="id", how="full", coalesce=True)
        both = pl.concat([part.decisions, mine.select(part.decisions.columns).cast(part.decisions.schema)])
        part = ShardPart(decisions=both, scores=scores, quarantined=part.quarantined,
                         decided=pl.concat([part.decided.cast(pl.Utf8), decided.cast(pl.Utf8)]))
    has_scores = part.scores is not None and part.scores.width > 1 and part.scores.height > 0
    if not part.decisions.height and not part.quarantined.height and not has_scores:
        if shard.row_groups is None:
            link_or_copy(shard.path, str(files.kept))  # nothing changes in this shard: no rewrite
        else:
            ds.sink_parquet(files.kept, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTS)
        counts.n_out = counts.n_in
        files.commit()
        counts.save(folder)
        return counts.to_json()
    ids = ds.select("id")
    counts.more["decided_here"] = int(
        pl.DataFrame({"id": part.decided}).join(ids.collect(), on="id", how="semi").height)
    removed_ids = pl.concat([part.decisions.select("id"), part.quarantined.select("id")])
    kept = ds.join(removed_ids.lazy(), on="id", how="anti", maintain_order="left")
    if has_scores:
        assert part.scores is not None
        score_cols = [c for c in part.scores.columns if c != "id"]
        kept = kept.drop([c for c in score_cols if c in kept.collect_schema().names()]).join(
            part.scores.lazy(), on="id", how="left", maintain_order="left")
    kept.sink_parquet(files.kept, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTS)
    counts.n_out = pq.ParquetFile(files.kept).metadata.num_rows
    if part.decisions.height:
        removed = ds.join(part.decisions.lazy(), on="id", how="inner", maintain_order="left").collect()
        if removed.height:
            ledger = ledger_frame(removed, step_id, removed["reason"], removed["duplicate_of"], removed["similarity"])
            ledger.write_parquet(files.ledger, **PARQUET_OPTS)
            counts.rejected = Counter(ledger["reason"].to_list())
    if part.quarantined.height:
        qsink = QuarantineSink(files.quarantine)
        qrows = ds.join(part.quarantined.lazy(), on="id", how="inner", maintain_order="left").select(
            "id", "source", "provenance", "error").collect()
        for row in qrows.iter_rows(named=True):
            reason = error_type(row["error"] or "error")
            qsink.write(quarantine_entry(step_id, row, reason, row["error"]))
            counts.quarantined[reason] += 1
        qsink.close()
    files.commit()
    counts.save(folder)
    return counts.to_json()
