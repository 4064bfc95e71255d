"""The Hub dataset folder (Parquet shards + README card) and publishing it with huggingface_hub.

Layout (what ``datasets.load_dataset(OUT_DIR)`` and the Hub viewer read)::

    OUT_DIR/README.md                               card with configs, dataset_info, licence
    OUT_DIR/data/{split}-{i:05d}-of-{n:05d}.parquet
    OUT_DIR/export.json                             what was exported, from which run, counts

Columns: ``messages`` (list of {role, content}: the TRL/axolotl/LLaMA-Factory conversational
form), ``id``, ``source``, ``subset``, ``language`` (from a ``*.lang`` score column, else null)
and the kept numeric score columns (``<step_id>.<metric>``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from curate.errors import ConfigError, CurateError
from curate.export.atomic import pause_for_tests
from curate.schema import COLUMNS

DEFAULT_SHARD_ROWS = 100_000
MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
BASE_FIELDS: list[pa.Field[Any]] = [
    pa.field("messages", pa.list_(MESSAGE)),
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("subset", pa.string()),
    pa.field("language", pa.string()),
]
_NUMERIC = (pl.Float32, pl.Float64, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32,
            pl.UInt64, pl.Boolean)
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")

KeepScores = Literal["all", "none"] | list[str]


def language_column(columns: Sequence[str]) -> str | None:
    """The newest ``<step_id>.lang`` column (steps add columns in order), or None."""
    langs = [c for c in columns if c.endswith(".lang") and c not in COLUMNS]
    return langs[-1] if langs else None


def score_columns(schema: pl.Schema, keep: KeepScores) -> list[str]:
    """Numeric score columns to export. A named column that is missing or not numeric is an error."""
    numeric = [c for c, t in schema.items() if c not in COLUMNS and "." in c and isinstance(t, _NUMERIC)]
    if keep == "all":
        return numeric
    if keep == "none":
        return []
    missing = [c for c in keep if c not in numeric]
    if missing:
        raise ConfigError(f"score column(s) {missing} are not numeric score columns of this run; available: {numeric}")
    return list(keep)


def hub_frame(frame: pl.DataFrame, scores: Sequence[str], lang_col: str | None) -> pl.DataFrame:
    """Kept records -> the Hub columns, in a fixed order."""
    lang = pl.col(lang_col).cast(pl.Utf8) if lang_col else pl.lit(None, dtype=pl.Utf8)
    return frame.select(
        pl.col("turns").alias("messages"),
        "id",
        "source",
        "subset",
        lang.alias("language"),
        *scores,
    )


def arrow_schema(frame: pl.DataFrame) -> pa.Schema:
    """Plain Arrow types (string, list) so ``datasets`` infers Value("string")/List features."""
    fields = list(BASE_FIELDS)
    for name in frame.columns[len(BASE_FIELDS) :]:
        t = frame.schema[name]
        fields.append(pa.field(name, pa.bool_() if t == pl.Boolean else pl.Series([], dtype=t).to_arrow().type))
    return pa.schema(fields)


def to_arrow(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(schema)


_DTYPE_NAMES = {
    pa.string(): "string",
    pa.bool_(): "bool",
    pa.float32(): "float32",
    pa.float64(): "float64",
    pa.int8(): "int8",
    pa.int16(): "int16",
    pa.int32(): "int32",
    pa.int64(): "int64",
    pa.uint8(): "uint8",
    pa.uint16(): "uint16",
    pa.uint32(): "uint32",
    pa.uint64(): "uint64",
}


def features_yaml(schema: pa.Schema) -> list[dict[str, Any]]:
    """``dataset_info.features`` in the card's YAML form (as ``datasets`` writes it)."""

    def one(name: str, t: pa.DataType) -> dict[str, Any]:
        if pa.types.is_list(t) and pa.types.is_struct(t.value_type):
            return {"name": name, "list": [one(f.name, f.type) for f in t.value_type]}
        if t not in _DTYPE_NAMES:
            raise TypeError(f"column {name!r} has Arrow type {t}, which the export does not map")
        return {"name": name, "dtype": _DTYPE_NAMES[t]}

    return [one(f.name, f.type) for f in schema]


@dataclass
class SplitFiles:
    name: str
    rows: int
    files: list[str]  # relative to the export folder
    num_bytes: int


def shard_name(split: str, i: int, n: int) -> str:
    return f"data/{split}-{i:05d}-of-{n:05d}.parquet"


ROW_GROUP_ROWS = 16_384  # rows buffered per split before a row group is written


class ShardWriter:
    """Write one split's shards as rows arrive: ``shard_rows`` rows per file, named at :meth:`close`.

    Rows go to ``data/{split}-{i:05d}.inprogress.parquet`` files through a pyarrow ParquetWriter; once
    the split is complete the shard count is known and each file is renamed to
    ``{split}-{i:05d}-of-{n:05d}.parquet`` (one empty shard when the split has no rows).
    """

    def __init__(self, folder: Path, split: str, schema: pa.Schema, shard_rows: int, first_file: list[bool]) -> None:
        if shard_rows < 1:
            raise ConfigError(f"shard_rows must be >= 1, got {shard_rows}")
        self.folder, self.split, self.schema, self.shard_rows = folder, split, schema, shard_rows
        self.first_file = first_file
        (folder / "data").mkdir(exist_ok=True)
        self.parts: list[Path] = []
        self.writer: Any = None
        self.in_shard = 0  # rows in the open shard, written or pending
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0
        self.num_bytes = 0

    def _open(self) -> None:
        import pyarrow.parquet as pq

        path = self.folder / "data" / f"{self.split}-{len(self.parts):05d}.inprogress.parquet"
        self.parts.append(path)
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.in_shard = 0

    def _flush(self) -> None:
        if self.pending_rows:
            table = pa.concat_tables(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.writer.write_table(table, row_group_size=max(self.pending_rows, 1))
            self.num_bytes += table.nbytes
        self.pending, self.pending_rows = [], 0

    def _close_shard(self) -> None:
        self._flush()
        self.writer.close()
        self.writer = None
        if self.first_file[0]:
            self.first_file[0] = False
            pause_for_tests()

    def write(self, table: pa.Table) -> None:
        """Append rows (already in ``schema``)."""
        off = 0
        while off < table.num_rows:
            if self.writer is None:
                self._open()
            take = min(self.shard_rows - self.in_shard, table.num_rows - off)
            self.pending.append(table.slice(off, take))
            self.pending_rows += take
            self.in_shard += take
            self.rows += take
            off += take
            if self.in_shard == self.shard_rows:
                self._close_shard()
            elif self.pending_rows >= ROW_GROUP_ROWS:
                self._flush()

    def close(self) -> SplitFiles:
        """Finish the split and give its shards their final names."""
        if self.writer is None and not self.parts:
            self._open()  # a split with no rows still gets one (empty) shard
        if self.writer is not None:
            self._close_shard()
        n = len(self.parts)
        files = []
        for i, part in enumerate(self.parts):
            rel = shard_name(self.split, i, n)
            part.rename(self.folder / rel)
            files.append(rel)
        return SplitFiles(self.split, self.rows, files, self.num_bytes)


# ---------------------------------------------------------------------------------------------- publishing


@dataclass
class HubTarget:
    """A checked destination on the Hub: the repo id, the account and a client that can write."""

    repo_id: str
    user: str
    api: Any


def check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.match(repo_id) or ".." in repo_id or len(repo_id) > 96:
        raise ConfigError(f"--push-to-hub {repo_id!r}: expected ORG/NAME, e.g. my-org/gpt4all-curated")


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or env in ("1", "ON", "YES", "TRUE")


def check_hub_access(repo_id: str) -> HubTarget:
    """Make sure we can publish before anything is written or uploaded. Raises CurateError/ConfigError.

    Offline mode, a missing or rejected token and an unreachable Hub all fail here, so a push never
    starts that cannot finish.
    """
    check_repo_id(repo_id)
    try:
        from huggingface_hub import HfApi, get_token
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
    except ImportError:
        raise ConfigError("--push-to-hub needs huggingface_hub: pip install 'curate[export]'") from None
    if _offline():
        raise CurateError(
            f"cannot push to {repo_id}: HF_HUB_OFFLINE is set, so the Hub is not reachable. Nothing was "
            "uploaded; unset HF_HUB_OFFLINE on a machine with network access and push again."
        )
    token = os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise ConfigError(
            f"cannot push to {repo_id}: no Hugging Face token. Set HF_TOKEN or run `hf auth login`. Nothing was uploaded."
        )
    api = HfApi(token=token)
    try:
        who = api.whoami()
    except OfflineModeIsEnabled:
        raise CurateError(f"cannot push to {repo_id}: huggingface_hub is in offline mode. Nothing was uploaded.") from None
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status == 401:
            raise ConfigError(
                f"cannot push to {repo_id}: the Hub rejected the token (401). Check HF_TOKEN or run `hf auth login`."
            ) from None
        raise CurateError(f"cannot push to {repo_id}: the Hub answered an error ({e}). Nothing was uploaded.") from None
    except OSError as e:  # connection refused, DNS failure, timeouts (httpx errors are not OSErrors)
        raise CurateError(f"cannot reach the Hub to push {repo_id} ({e}). Nothing was uploaded.") from None
    except Exception as e:
        if _is_connection_error(e):
            raise CurateError(
                f"cannot reach the Hub to push {repo_id} ({type(e).__name__}: {e}). Nothing was uploaded; "
                "check the network and push again."
            ) from None
        raise
    return HubTarget(repo_id, str(who.get("name", "")), api)


_CONNECTION_ERRORS = frozenset(
    {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "ConnectionError", "TransportError"}
)


def _is_connection_error(e: BaseException) -> bool:
    """Connection failures of the HTTP clients huggingface_hub may use (httpx, requests)."""
    for cls in type(e).__mro__:
        module = cls.__module__.split(".")[0]
        if cls.__name__ in _CONNECTION_ERRORS and module.startswith(("httpx", "httpcore", "requests", "urllib3")):
            return True
    return False


def push_folder(target: HubTarget, folder: Path, private: bool) -> str:
    """Create the dataset repo (if needed) and upload the folder as one commit; returns its URL."""
    target.api.create_repo(target.repo_id, repo_type="dataset", private=private, exist_ok=True)
    target.api.upload_folder(
        repo_id=target.repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message="Upload curated dataset (curate export)",
        delete_patterns=["data/*"],  # shards of an earlier export would otherwise be mixed in
    )
    return f"https://huggingface.co/datasets/{target.repo_id}"
