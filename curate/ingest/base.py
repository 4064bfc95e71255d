"""What every reader shares: the Reader classes, batching into the schema, ids, quarantine.

A reader implements ``parse(obj) -> Parsed | list[Parsed]`` for one raw record (JSON family) or
overrides ``records(path)`` for other containers (XML, trees). The base class turns records into
schema batches and every failure into a :class:`Quarantined` entry, so a reader never drops a
record silently and never crashes on one bad record. Files and damaged streams are handled in
:mod:`curate.ingest.files`, JSON decoding in :mod:`curate.ingest.jsonio`; their public names are
re-exported here.

Ids. ``read_batches`` gives every conversation its id from the source, the content and an
occurrence counter (see :func:`curate.schema.conversation_id`), so ids survive moves and re-ingestion.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import polars as pl

from curate.ingest.files import (
    LFS_MAGIC,
    Damage,
    base_name,
    check_head,
    check_not_lfs,
    damage_of,
    display_path,
    expand_paths,
    head_bytes,
    open_binary,
    sniff,
    unique_files,
    wide_encoding,
)
from curate.ingest.jsonio import (
    CHUNK_CHARS,
    CONFLICT_PREFIXES,
    MAX_JSON_DEPTH,
    MAX_RECORD_CHARS,
    check_obj,
    iter_json_records,
)
from curate.ingest.records import (
    SNIPPET_CHARS,
    InputError,
    Parsed,
    Quarantined,
    RawRecord,
    RecordError,
    snippet,
)
from curate.schema import (
    SchemaError,
    content_hash,
    conversation_id,
    describe_invalid_char,
    escape_invalid_text,
    invalid_text_at,
    make_batch,
    validate_turns,
)
from curate.steps.base import Step, StepParams

__all__ = [
    "CHUNK_CHARS",
    "CONFLICT_PREFIXES",
    "LFS_MAGIC",
    "MAX_JSON_DEPTH",
    "MAX_RECORD_CHARS",
    "SNIPPET_CHARS",
    "Damage",
    "InputError",
    "KeyCounter",
    "Parsed",
    "Quarantined",
    "RawRecord",
    "ReadStats",
    "Reader",
    "RecordError",
    "RecordReader",
    "base_name",
    "check_head",
    "check_not_lfs",
    "check_obj",
    "damage_of",
    "display_path",
    "expand_paths",
    "guess_format",
    "head_bytes",
    "int64_key",
    "iter_json_records",
    "open_binary",
    "read_batches",
    "require",
    "sniff",
    "snippet",
    "unique_files",
    "wide_encoding",
]


@dataclass
class ReadStats:
    read: int = 0
    ingested: int = 0
    quarantined: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    files: int = 0
    repeated_files: list[str] = field(default_factory=list)  # listed again (same real path): read once

    def add_quarantine(self, q: Quarantined) -> None:
        self.quarantined += 1
        self.by_reason[q.reason] += 1

    def as_dict(self) -> dict[str, Any]:
        out = {
            "read": self.read,
            "ingested": self.ingested,
            "quarantined": self.quarantined,
            "by_reason": dict(self.by_reason),
            "files": self.files,
        }
        if self.repeated_files:
            out["repeated_files"] = list(self.repeated_files)
        return out




# ---------------------------------------------------------------------------------------------- readers


_SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sharegpt", ("conversations",)),
    ("openai", ("messages",)),
    ("p3", ("inputs_pretokenized",)),
    ("dolly", ("instruction", "context", "response")),
    ("alpaca", ("instruction", "output")),
    ("gpt4all", ("prompt", "response")),
    ("oasst", ("message_id",)),
    ("oasst", ("message_tree_id",)),
    ("oig", ("text",)),
)


def guess_format(obj: Any) -> str | None:
    """Which known format a raw JSON record looks like (for error messages only)."""
    if not isinstance(obj, Mapping):
        return None
    for name, keys in _SHAPES:
        if all(k in obj for k in keys):
            return name
    return None


class Reader(Step):
    """Base of all readers. Subclasses set ``format`` and implement ``records``.

    Most readers subclass :class:`RecordReader` and implement only ``parse``; readers whose
    conversations span several raw records (message trees, question/answer pairs) implement
    ``records`` themselves.
    """

    kind: ClassVar[str] = "read"
    format: ClassVar[str] = ""
    records_key: ClassVar[str | None] = None
    # Records nested deeper than this are quarantined too_deep (see MAX_JSON_DEPTH).
    max_depth: ClassVar[int] = MAX_JSON_DEPTH
    # A file whose first records all fail like this is the wrong format: fail loudly instead.
    _WRONG_FORMAT_PROBE = 20

    class Params(StepParams):
        pass

    def raw_records(self, path: str) -> Iterator[RawRecord]:
        """Raw records of one file. JSON family by default; XML or Parquet readers override it."""
        if path.startswith("hub:"):
            from curate.ingest.hub import iter_hub_records

            return iter_hub_records(path, self.params)
        head = head_bytes(path)
        check_head(path, head)
        kind = sniff(head)
        if kind not in ("json", "empty"):
            raise InputError(
                f"{display_path(path)}: expected {self.format} JSON/JSONL but the file looks like {kind}; "
                f"set the source's `format:` to the right reader (see `curate steps read`)"
            )
        return iter_json_records(path, self.records_key, self.max_depth)

    @abstractmethod
    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        """Conversations of one file as row dicts (``source``, ``subset``, ``turns``, ``meta``,
        ``provenance``; ``read_batches`` adds ``id`` and ``content_hash``) or Quarantined entries."""


class RecordReader(Reader):
    """A reader whose raw records each become one or more conversations: implement ``parse``.

    The shared machinery here turns ``raw_records`` into schema rows: validation, quarantine with a
    stable reason, and a loud error when a file's first records all look like another format.
    """

    @abstractmethod
    def parse(self, obj: Any) -> Parsed | list[Parsed]:
        """Turn one raw record into one or more conversations. Raise RecordError for a bad record."""

    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        """Conversations of one file as row dicts, or Quarantined entries (see :meth:`Reader.records`)."""
        ok = 0
        probe_failures: list[Any] = []
        for rr in self.raw_records(path):
            if rr.error is not None:
                yield Quarantined(source, path, rr.record, rr.error.reason, str(rr.error), rr.raw, rr.line)
                continue
            try:
                parsed = self.parse(rr.obj)
                items = parsed if isinstance(parsed, list) else [parsed]
                if not items:
                    raise RecordError("no_turns", "record holds no conversation")
                rows = []
                for p in items:
                    turns = validate_turns(p.turns)
                    rows.append(
                        {
                            "source": source,
                            "subset": p.subset,
                            "turns": turns,
                            "meta": p.meta,
                            "provenance": {"file": path, "record": rr.record},
                        }
                    )
            except (RecordError, SchemaError) as e:
                reason = e.reason if isinstance(e, RecordError) else str(e).split(":", 1)[0]
                if ok == 0 and reason in ("missing_field", "wrong_type") and len(probe_failures) < 1000:
                    probe_failures.append(rr.obj)
                    self._check_wrong_format(path, probe_failures)
                yield Quarantined(source, path, rr.record, reason, str(e), snippet(rr.obj), rr.line)
                continue
            ok += len(rows)
            yield from rows

    def _check_wrong_format(self, path: str, failures: list[Any]) -> None:
        if len(failures) < min(self._WRONG_FORMAT_PROBE, 5):
            return
        guesses = Counter(guess_format(o) for o in failures)
        (guess, n), = guesses.most_common(1)
        if guess and guess != self.format and n == len(failures):
            raise InputError(
                f"{display_path(path)}: records do not look like {self.format} but like {guess} "
                f"(keys {sorted(failures[0])[:8]}); set the source's `format: {guess}`"
            )


class KeyCounter:
    """How many times each int64 key was added before: exact, at about 8 bytes per distinct key.

    Older keys sit in one sorted numpy array, recent ones in a set that is merged in as it grows
    (merging two sorted runs is linear), and only keys seen more than once get a dict entry. Used for
    the occurrence part of ids (keys from content hashes) and for repeated post ids in a dump.
    """

    _RECENT = 1 << 18

    def __init__(self) -> None:
        self._old = np.empty(0, dtype=np.int64)
        self._recent: set[int] = set()
        self._repeats: dict[int, int] = {}

    def add(self, key: int) -> int:
        """Record ``key``; return how many times it was added before (0 the first time)."""
        if key in self._recent or self._in_old(key):
            n = self._repeats.get(key, 0) + 1
            self._repeats[key] = n
            return n
        self._recent.add(key)
        if len(self._recent) >= self._RECENT:
            new = np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))
            new.sort()
            self._old = np.sort(np.concatenate([self._old, new]), kind="stable")
            self._recent.clear()
        return 0

    def _in_old(self, key: int) -> bool:
        old = self._old
        if not len(old):
            return False
        i = int(old.searchsorted(key))
        return i < len(old) and int(old[i]) == key


def int64_key(n: int) -> int:
    """An arbitrary int folded into the int64 range (identity inside it)."""
    return n if -(1 << 63) <= n < (1 << 63) else (n % (1 << 64)) - (1 << 63)


def _hash_key(h: str) -> int:
    return int(h[:16], 16) - (1 << 63)


def _text_problem(row: dict[str, Any]) -> str | None:
    """Why a row cannot be written as UTF-8 (a lone surrogate in a turn or in meta), or None.

    Serialises ``meta`` in place, as the batch stores it."""
    for i, t in enumerate(row["turns"]):
        if (j := invalid_text_at(t["content"])) >= 0:
            return f"turn {i} ({t['role']}) holds {describe_invalid_char(t['content'][j])}"
    meta = row.get("meta")
    if meta is not None and not isinstance(meta, str):
        meta = row["meta"] = json.dumps(meta, ensure_ascii=False, default=str)
    if meta is not None and (j := invalid_text_at(meta)) >= 0:
        return f"meta holds {describe_invalid_char(meta[j])}"
    return None


def read_batches(
    reader: Reader,
    paths: list[str],
    source: str,
    batch_size: int = 20_000,
    stats: ReadStats | None = None,
    on_quarantine: Callable[[Quarantined], None] | None = None,
    limit: int | None = None,
) -> Iterator[pl.DataFrame]:
    """Stream schema batches from the files of one source; quarantined entries go to ``on_quarantine`` and ``stats``.

    Every real file is read once (a repeat is logged and listed in ``stats.repeated_files``). Ids come
    from :func:`curate.schema.conversation_id`: source, content hash and the occurrence of that content
    so far in this source. A row whose text UTF-8 cannot hold is quarantined ``lone_surrogate`` (the
    JSON readers catch these per record already; this is the last line before Parquet).
    """
    stats = stats if stats is not None else ReadStats()
    rows: list[dict[str, Any]] = []
    seen = KeyCounter()
    files, repeats = unique_files(paths)
    stats.repeated_files.extend(repeats)

    def quarantine(q: Quarantined) -> None:
        stats.add_quarantine(q)
        if on_quarantine is not None:
            on_quarantine(q)

    def batch(rows: list[dict[str, Any]]) -> pl.DataFrame | None:
        for r in rows:
            r["content_hash"] = content_hash(r["turns"])
            r["id"] = ""  # set below, once the rows are known to be writable
        try:
            df = make_batch(rows)
        except UnicodeEncodeError:  # rare: find the rows and quarantine them
            good = []
            for r in rows:
                problem = _text_problem(r)
                if problem is None:
                    good.append(r)
                    continue
                stats.ingested -= 1
                msg = (
                    f"lone_surrogate: invalid text: {problem}, half of a UTF-16 surrogate pair or a byte that is "
                    "not UTF-8; it cannot be written as UTF-8"
                )
                prov = r["provenance"]
                quarantine(Quarantined(source, prov["file"], prov["record"], "lone_surrogate", msg,
                                       snippet({"turns": r["turns"]})))
            if not good:
                return None
            rows = good
            df = make_batch(rows)
        ids = [conversation_id(source, r["content_hash"], seen.add(_hash_key(r["content_hash"]))) for r in rows]
        return df.with_columns(pl.Series("id", ids, dtype=pl.Utf8))

    for path in files:
        stats.files += 1
        shown = display_path(path)
        for item in reader.records(path, source):
            if limit is not None and stats.read >= limit:
                break
            stats.read += 1
            if isinstance(item, Quarantined):
                if item.file == path:
                    item.file = shown
                quarantine(item)
                continue
            if shown != path:  # a file name that is not UTF-8: provenance and a name-derived subset, escaped
                item["provenance"] = {**item["provenance"], "file": shown}
                if isinstance(item.get("subset"), str):
                    item["subset"] = escape_invalid_text(item["subset"])
            stats.ingested += 1
            rows.append(item)
            if len(rows) >= batch_size:
                out = batch(rows)
                rows = []
                if out is not None:
                    yield out
    if rows:
        out = batch(rows)
        if out is not None:
            yield out


def require(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...] = str) -> Any:
    """Fetch a required field with a type check, raising the stable reasons readers share."""
    if not isinstance(obj, Mapping):
        raise RecordError("wrong_type", f"record is {type(obj).__name__}, expected an object")
    if key not in obj or obj[key] is None:
        raise RecordError("missing_field", f"no {key!r} field")
    val = obj[key]
    if not isinstance(val, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise RecordError("wrong_type", f"{key!r} is {type(val).__name__}, expected {names}")
    return val
