"""Driving the ingest: every source's reader into ``00_ingest/kept.parquet``, bad records to quarantine.

Record ids must be unique over all sources (the same file listed twice is an error, not a silent
duplicate). Per-source counts go to ``00_ingest/sources.json`` and from there into report.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import polars as pl

from curate import __version__
from curate.ingest.base import Quarantined, Reader, ReadStats, expand_paths, read_batches
from curate.layout import INGEST_ID, SOURCE_STATS, StepFolder
from curate.pipeline.books import ParquetSink, QuarantineSink
from curate.pipeline.cache import digest, file_stat
from curate.pipeline.spec import Plan
from curate.rundir import read_json, write_text_atomic
from curate.schema import CONVERSATION
from curate.steps.base import StepReport

Bar = Callable[[str], Any]  # makes a progress bar (or None) for a description


def input_files(plan: Plan) -> dict[str, list[str]]:
    """Each source's files (globs and folders expanded), or its ``hub:`` names."""
    out: dict[str, list[str]] = {}
    for src, _ in plan.readers:
        paths = src.path if isinstance(src.path, list) else [src.path]
        if all(str(p).startswith("hub:") for p in paths):
            out[src.id] = [str(p) for p in paths]
        else:
            out[src.id] = expand_paths([str(p) for p in paths])
    return out


def ingest_fingerprint(plan: Plan, inputs: dict[str, list[str]], limit: int | None) -> str:
    """Changes when a source's settings, a file's size or mtime, the limit or curate's version change."""
    stats = {sid: [(file_stat(p) if not p.startswith("hub:") else p) for p in paths] for sid, paths in inputs.items()}
    return digest({"sources": plan.resolved()["sources"], "files": stats, "limit": limit, "version": __version__})


def cached_source_stats(folder: StepFolder) -> dict[str, Any] | None:
    """The per-source counts a finished ingest wrote, or None when they are missing or unreadable."""
    stats = read_json(folder.file(SOURCE_STATS))
    return stats if isinstance(stats, dict) else None


def read_sources(plan: Plan, inputs: dict[str, list[str]], folder: StepFolder, *, limit: int | None,
                 batch_size: int, bar: Bar) -> tuple[StepReport, dict[str, dict[str, Any]]]:
    """Read every source into ``folder``; returns the ingest's report and the per-source counts."""
    rep = StepReport(step_id=INGEST_ID, kind="read")
    source_stats: dict[str, dict[str, Any]] = {}
    sink = ParquetSink(folder.kept)
    qsink = QuarantineSink(folder.quarantine)

    def on_q(q: Quarantined) -> None:
        qsink.write(q.to_json())

    try:
        for src, reader in plan.readers:
            stats = ReadStats()
            assert isinstance(reader, Reader)
            progress = bar(f"read {src.id}")
            for batch in read_batches(reader, inputs[src.id], src.id, batch_size, stats, on_q, limit=limit):
                if src.subset is not None:
                    batch = batch.with_columns(pl.lit(src.subset, dtype=pl.Utf8).alias("subset"))
                # ids hash (source, content, occurrence): unique without a set of every id seen
                sink.write(batch)
                if progress is not None:
                    progress.update(len(batch))
            if progress is not None:
                progress.close()
            extra = dict(getattr(reader, "report_extra", {}) or {})
            source_stats[src.id] = {
                "format": src.format, "files": stats.files, "read": stats.read,
                "ingested": stats.ingested, "quarantined": stats.quarantined,
                "by_reason": dict(stats.by_reason), **({"skipped": extra} if extra else {}),
            }
            rep.n_in += stats.read
            rep.n_out += stats.ingested
            rep.quarantined.update({f"{r}": n for r, n in stats.by_reason.items()})
    finally:
        sink.close(empty_like=pl.DataFrame(schema=CONVERSATION))
        qsink.close()
    rep.extra = {f"{sid}.read": s["read"] for sid, s in source_stats.items()}
    write_text_atomic(folder.file(SOURCE_STATS), json.dumps(source_stats, indent=1))
    return rep, source_stats
