"""Row records from tabular containers: Parquet files and saved ``datasets`` folders.

Readers whose formats are published as Parquet/Arrow (GPT4All, P3) share this: rows stream in
row-group batches (``pyarrow.ParquetFile.iter_batches``), so memory stays flat on multi-GB files.
Provenance numbering is the 1-based row number in the file (continued across the splits of a
saved ``DatasetDict``, in sorted split order).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from curate.ingest.base import (
    InputError,
    RawRecord,
    RecordError,
    check_head,
    check_not_lfs,
    display_path,
    head_bytes,
    iter_json_records,
    sniff,
)

BATCH_ROWS = 2048
_DATASET_MARKERS = ("dataset_dict.json", "state.json")


@dataclass
class RowGroupWindow:
    """Row groups ``[first_group, stop_group)`` of a Parquet file (``first_row``: the rows before them), which
    the Ray ingest reads as one shard; ``used`` is set when the Parquet reader honoured it."""

    first_group: int
    stop_group: int | None
    first_row: int
    used: bool = False


# The window the next Parquet file opened in this process reads (set and cleared by the Ray ingest around
# the first record it asks a reader for).
_window: RowGroupWindow | None = None


def set_row_group_window(window: RowGroupWindow | None) -> None:
    global _window
    _window = window


def is_parquet(path: str) -> bool:
    """True for a ``.parquet`` file or any file starting with the Parquet magic bytes."""
    if os.path.isdir(path):
        return False
    return path.lower().endswith(".parquet") or head_bytes(path, 4) == b"PAR1"


def _keep_columns(names: Sequence[str], exclude: Sequence[str]) -> list[str]:
    return [n for n in names if n not in exclude]


def iter_parquet_records(
    path: str, exclude: Sequence[str] = (), batch_rows: int = BATCH_ROWS
) -> Iterator[RawRecord]:
    """Stream the rows of one Parquet file as dicts, skipping ``exclude`` columns (never read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    head = head_bytes(path, 64)
    check_not_lfs(path, head)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"{display_path(path)}: cannot open as Parquet ({e}); the file looks like {sniff(head)}") from None
    columns = _keep_columns(pf.schema_arrow.names, exclude)
    row, groups = 0, range(pf.num_row_groups)
    window = _window
    if window is not None:  # one shard of the file: its row groups, numbered from the top of the file
        window.used = True
        row = window.first_row
        groups = range(window.first_group, pf.num_row_groups if window.stop_group is None else window.stop_group)
    for rg in groups:
        rg_end = row + pf.metadata.row_group(rg).num_rows
        try:
            for batch in pf.iter_batches(batch_size=batch_rows, columns=columns, row_groups=[rg]):
                for obj in batch.to_pylist():
                    row += 1
                    yield RawRecord(record=row, line=None, obj=obj)
        except (pa.ArrowException, OSError) as e:
            # A damaged row group cannot be split into records: one entry for its unread rows, then
            # the next row group (each is self-contained).
            err = RecordError(
                "damaged_file",
                f"Parquet row group {rg} cannot be read from row {row + 1} to {rg_end} ({type(e).__name__}: "
                f"{str(e).strip()}); the other row groups were read",
            )
            yield RawRecord(record=row + 1, line=None, error=err)
            row = rg_end


def iter_dataset_folder_records(
    path: str, exclude: Sequence[str] = (), batch_rows: int = BATCH_ROWS
) -> Iterator[RawRecord]:
    """Rows of a folder written by ``datasets`` ``save_to_disk`` (a Dataset or a DatasetDict).

    For a DatasetDict every row also gets a ``split`` key (the split name), so it reaches meta.
    """
    if not any(os.path.isfile(os.path.join(path, m)) for m in _DATASET_MARKERS):
        raise InputError(
            f"{path}: is a folder but not a saved `datasets` dataset (no state.json or dataset_dict.json); "
            f"point the recipe at its files instead, e.g. {os.path.join(path, '**', '*.parquet')}"
        )
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"{path}: reading a saved `datasets` folder needs the `datasets` package: "
            "pip install 'curate[export]'"
        ) from None
    loaded = datasets.load_from_disk(path)
    if isinstance(loaded, datasets.DatasetDict):
        parts: list[tuple[str | None, Any]] = [(name, loaded[name]) for name in sorted(loaded)]
    else:
        parts = [(None, loaded)]
    row = 0
    for split, ds in parts:
        keep = _keep_columns(ds.column_names, exclude)
        if len(keep) != len(ds.column_names):
            ds = ds.select_columns(keep)
        for table in ds.with_format("arrow").iter(batch_size=batch_rows):
            for obj in table.to_pylist():
                row += 1
                if split is not None:
                    obj.setdefault("split", split)
                yield RawRecord(record=row, line=None, obj=obj)


def tabular_or_json_records(
    path: str, fmt: str, exclude: Sequence[str] = (), records_key: str | None = None
) -> Iterator[RawRecord]:
    """Raw records of a Parquet file, a saved ``datasets`` folder, or a JSON/JSONL file."""
    if os.path.isdir(path):
        return iter_dataset_folder_records(path, exclude)
    if is_parquet(path):
        return iter_parquet_records(path, exclude)
    head = head_bytes(path)
    check_head(path, head)
    kind = sniff(head)
    if kind not in ("json", "empty"):
        raise InputError(
            f"{display_path(path)}: expected {fmt} JSON/JSONL/Parquet but the file looks like {kind}; "
            f"set the source's `format:` to the right reader (see `curate steps read`)"
        )
    return iter_json_records(path, records_key)
