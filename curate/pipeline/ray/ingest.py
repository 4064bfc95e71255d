"""The ingest on the cluster: every source read as shards, with the ids and counts of the local ingest.

Shards, in the local ingest's reading order (source, file, record): one per file, and a big file read
by a record reader is cut. A plain JSONL file (``.jsonl`` / ``.ndjson``) is cut into ranges of
``shard_rows`` lines: the driver finds the byte offset of every ``shard_rows``-th newline in one
streaming pass (no decoding), and a task seeks to its first byte and stops at its last
(:class:`curate.ingest.jsonio.LineWindow`), so each line is read by one task only. A Parquet file is
cut into whole row groups of about ``shard_rows`` rows, from its footer
(:class:`curate.ingest.tabular.RowGroupWindow`). A task reads its
range with the source's own reader through :func:`curate.ingest.base.read_batches`, so parsing,
validation, quarantine reasons and provenance (line numbers count from the start of the file) are the
local ingest's. A ``.jsonl`` file that is not one record per line (a JSON array) is read whole by its
first shard; the other shards of it read nothing. With ``--limit`` every source is one shard,
as the limit counts records in reading order.

Ids. An id hashes (source, content, occurrence of that content so far in the source). A task counts
occurrences in its own shard only, so a content seen in an earlier shard of the same source gets a
fix-up: each task scatters its (source, content_hash, count) rows by hash bucket (:mod:`.shuffle`),
each bucket task finds the contents seen in several shards and the number of earlier occurrences
per shard, and only the shards holding such a content are rewritten with their final ids.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from curate.errors import AccountingError
from curate.ingest.base import Quarantined, Reader, ReadStats, RecordReader, read_batches, unique_files
from curate.ingest.files import open_binary
from curate.ingest.jsonio import LineWindow, set_line_window
from curate.ingest.tabular import RowGroupWindow, is_parquet, set_row_group_window
from curate.layout import SOURCE_STATS, StepFolder
from curate.pipeline.books import PARQUET_OPTS, ROW_GROUP_ROWS, ParquetSink, QuarantineSink
from curate.pipeline.ray.shards import ShardCounts, ShardFiles, save_parquet
from curate.pipeline.ray.shuffle import gather, hex_bucket, scatter
from curate.rundir import write_text_atomic
from curate.schema import CONVERSATION, conversation_id

SPLIT_SUFFIXES = (".jsonl", ".ndjson")  # plain JSONL: one raw record per line, so line counts place the cuts
_COUNT_CHUNK = 1 << 24


@dataclass(frozen=True)
class SourceShard:
    """One ingest task: files of one source, or the lines from byte ``start`` to byte ``stop`` of one JSONL
    file, or row groups ``start`` to ``stop`` of one Parquet file (``first``: the lines or rows before
    ``start``)."""

    source: int  # index into plan.readers
    source_id: str
    subset: str | None
    files: tuple[str, ...]
    first: int = 0
    start: int = 0
    stop: int | None = None  # None: to the end

    @property
    def ranged(self) -> bool:
        return self.start > 0 or self.stop is not None


def line_cuts(path: str, every: int) -> list[tuple[int, int]]:
    """``(byte offset, lines before it)`` of the start of every ``every``-th line after the first, in one
    streaming pass over the file (the bytes :func:`open_binary` gives); none at the end of the file."""
    cuts: list[tuple[int, int]] = []
    lines = pos = 0
    with open_binary(path) as fh:
        while chunk := fh.read(_COUNT_CHUNK):
            nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            # the newline that ends line number `lines + k + 1` is at nl[k]
            k = (len(cuts) + 1) * every - lines - 1
            while k < len(nl):
                cuts.append((pos + int(nl[k]) + 1, lines + k + 1))
                k += every
            lines += len(nl)
            pos += len(chunk)
    return [(b, n) for b, n in cuts if b < pos]


def splittable(reader: Reader, path: str) -> bool:
    """A record reader on a plain JSONL file: raw records are lines, so a range of them is one shard."""
    return isinstance(reader, RecordReader) and not path.startswith("hub:") and path.lower().endswith(SPLIT_SUFFIXES)


def row_group_cuts(reader: Reader, path: str, every: int) -> list[tuple[int, int]]:
    """``(row group, rows before it)`` where a record reader's Parquet file is cut into shards of about
    ``every`` rows (whole row groups; from the file's footer, nothing else is read); none for other files."""
    if not isinstance(reader, RecordReader) or path.startswith("hub:") or not is_parquet(path):
        return []
    import pyarrow.parquet as pq

    try:
        md = pq.ParquetFile(path).metadata
    except Exception:  # noqa: BLE001 - an unreadable file is one shard, whose reader reports it
        return []
    cuts, rows, since = [], 0, 0
    for g in range(md.num_row_groups):
        if since >= every:
            cuts.append((g, rows))
            since = 0
        n = md.row_group(g).num_rows
        rows += n
        since += n
    return cuts


def plan_shards(readers: list[tuple[str, str | None, Reader]], inputs: dict[str, list[str]], shard_rows: int,
                limit: int | None) -> list[SourceShard]:
    """The ingest's shards in reading order; at least one per source."""
    shards: list[SourceShard] = []
    for k, (sid, subset, reader) in enumerate(readers):
        files, _ = unique_files(inputs[sid])
        if limit is not None or not files or all(f.startswith("hub:") for f in files):
            shards.append(SourceShard(k, sid, subset, tuple(files)))
            continue
        for f in files:
            if splittable(reader, f):
                cuts = [(0, 0), *line_cuts(f, shard_rows)]
            else:
                cuts = [(0, 0), *row_group_cuts(reader, f, shard_rows)]
            for j, (start, first) in enumerate(cuts):
                stop = cuts[j + 1][0] if j + 1 < len(cuts) else None
                shards.append(SourceShard(k, sid, subset, (f,), first, start, stop))
    return shards


class _Ranged:
    """A copy of ``reader`` that reads only its shard's lines of a JSONL file (``used``: it read through
    ``raw_records``)."""

    def __init__(self, reader: Reader, shard: SourceShard) -> None:
        self.reader = copy.copy(reader)
        self.used = False
        whole = reader.raw_records

        def raw_records(path: str) -> Iterator[Any]:
            self.used = True
            parquet = is_parquet(path)
            window: LineWindow | RowGroupWindow = (RowGroupWindow(shard.start, shard.stop, shard.first) if parquet
                                                   else LineWindow(shard.start, shard.first, shard.stop))
            if isinstance(window, RowGroupWindow):
                set_row_group_window(window)
            else:
                set_line_window(window)
            try:
                records = iter(whole(path))
                head = list(itertools.islice(records, 1))  # the reader opens the file: the window is read now
            finally:
                set_line_window(None)
                set_row_group_window(None)
            if not window.used and shard.start > 0:
                return  # not one record per line: the file's first shard reads it whole
            yield from head
            yield from records

        setattr(self.reader, "raw_records", raw_records)  # noqa: B010 - an instance attribute shadows the method


def read_shard(i: int, shard: SourceShard, reader: Reader, folder: StepFolder, *, batch_size: int,
               limit: int | None, n_buckets: int) -> dict[str, Any]:
    """Read ingest shard ``i``: kept rows (ids counted within the shard), quarantine, content-hash counts."""
    files = ShardFiles.of(folder, i)
    stats = ReadStats()
    ranged = _Ranged(reader, shard) if shard.ranged else None
    rd = ranged.reader if ranged is not None else copy.copy(reader)
    if hasattr(rd, "report_extra"):
        rd.report_extra = {}
    sink = ParquetSink(files.kept)
    qsink = QuarantineSink(files.quarantine)

    def on_q(q: Quarantined) -> None:
        qsink.write(q.to_json())

    try:
        for batch in read_batches(rd, list(shard.files), shard.source_id, batch_size, stats, on_q, limit=limit):
            if shard.subset is not None:
                batch = batch.with_columns(pl.lit(shard.subset, dtype=pl.Utf8).alias("subset"))
            sink.write(batch)
    finally:
        sink.close(empty_like=pl.DataFrame(schema=CONVERSATION))
        qsink.close()
    if ranged is not None and not ranged.used:
        raise AccountingError(f"source {shard.source_id}: reader {type(reader).__name__} does not read records "
                              "through raw_records(), so its files cannot be read as record ranges")
    hashes = pl.read_parquet(files.kept, columns=["source", "content_hash"]).group_by(
        "source", "content_hash", maintain_order=True).len("n")
    scatter(hashes, hashes.select(hex_bucket("content_hash", n_buckets)).to_series(), n_buckets,
            folder.work / "hashes", i, folder.work)
    files.commit()
    counts = ShardCounts(i, n_in=stats.read, n_out=stats.ingested, quarantined=Counter(stats.by_reason))
    extra = dict(getattr(rd, "report_extra", {}) or {})
    counts.more = {"source": shard.source_id, "files": stats.files if shard.start == 0 else 0,
                   "quarantined": stats.quarantined, "skipped": extra}
    counts.save(folder)
    return counts.to_json()


def offsets_of_bucket(b: int, folder: StepFolder) -> dict[str, Any]:
    """For one hash bucket: contents met in several shards of a source, and per shard how many times they
    were seen in earlier shards; written per shard for :func:`fix_shard`."""
    rows = gather(folder.work / "hashes", b, {"source": pl.Utf8, "content_hash": pl.Utf8, "n": pl.UInt32})
    if not rows.height:
        return {"fixes": 0}
    multi = rows.filter(pl.len().over("source", "content_hash") > 1).sort("source", "content_hash", "_shard")
    fixes = multi.with_columns(
        (pl.col("n").cast(pl.Int64).cum_sum().over("source", "content_hash") - pl.col("n").cast(pl.Int64))
        .alias("offset")).filter(pl.col("offset") > 0).select("_shard", "source", "content_hash", "offset")
    for (s,), part in fixes.group_by("_shard", maintain_order=True):
        save_parquet(part.drop("_shard"), folder.work / "id_offsets" / f"s{int(s):05d}" / f"b{b:04d}.parquet",
                     folder.work)
    return {"fixes": fixes.height}


def shards_to_fix(folder: StepFolder) -> list[int]:
    root = folder.work / "id_offsets"
    return sorted(int(d.name[1:]) for d in root.iterdir()) if root.is_dir() else []


def fix_shard(i: int, folder: StepFolder) -> dict[str, Any]:
    """Rewrite shard ``i``'s ids of contents that earlier shards of its source hold too."""
    offsets = pl.concat([pl.read_parquet(f) for f in sorted((folder.work / "id_offsets" / f"s{i:05d}").glob("*.parquet"))])
    kept = pl.read_parquet(folder.kept_shard(i))
    occ = kept.select(pl.int_range(pl.len()).over("source", "content_hash").alias("_occ"))["_occ"]
    tagged = kept.with_columns(occ).join(offsets, on=["source", "content_hash"], how="left", maintain_order="left")
    ids = [conversation_id(s, h, o + off) if off is not None else old
           for old, s, h, o, off in tagged.select("id", "source", "content_hash", "_occ", "offset").iter_rows()]
    out = kept.with_columns(pl.Series("id", ids, dtype=pl.Utf8))
    save_parquet(out, folder.kept_shard(i), folder.work, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTS)
    return {"fixed": int(tagged["offset"].is_not_null().sum())}


def source_stats_of(parts: list[ShardCounts], readers: list[tuple[str, str | None, Reader]],
                    formats: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per-source counts (layout SOURCE_STATS) added up over the source's shards."""
    out: dict[str, dict[str, Any]] = {}
    for sid, _, _ in readers:
        mine = [c for c in parts if c.more["source"] == sid]
        by_reason: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        for c in mine:
            by_reason.update(c.quarantined)
            skipped.update({k: v for k, v in c.more.get("skipped", {}).items() if isinstance(v, (int, float))})
        out[sid] = {"format": formats[sid], "files": sum(c.more["files"] for c in mine),
                    "read": sum(c.n_in for c in mine), "ingested": sum(c.n_out for c in mine),
                    "quarantined": sum(c.more["quarantined"] for c in mine), "by_reason": dict(by_reason),
                    **({"skipped": dict(skipped)} if skipped else {})}
    return out


def write_source_stats(folder: StepFolder, stats: dict[str, dict[str, Any]]) -> None:
    write_text_atomic(folder.file(SOURCE_STATS), json.dumps(stats, indent=1))

