"""What every reader shares: opening (compressed) files, streaming JSON records, quarantine, batching.

A reader implements ``parse(obj) -> Parsed | list[Parsed]`` for one raw record (JSON family) or
overrides ``records(path)`` for other containers (XML, trees). The base class turns records into
schema batches and every failure into a :class:`Quarantined` entry, so a reader never drops a
record silently and never crashes on one bad record.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import json
import lzma
import os
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any, ClassVar, cast

import polars as pl

from curate.schema import SchemaError, make_batch, record_id, validate_turns
from curate.steps.base import Step, StepParams

try:  # orjson is several times faster on JSONL; json is the fallback
    import orjson

    _loads: Callable[[bytes | str], Any] = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    _loads = json.loads
    _JSONError = (ValueError,)

SNIPPET_CHARS = 300
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
CONFLICT_PREFIXES = ("<<<<<<< ", "=======", ">>>>>>> ")
CHUNK_CHARS = 1 << 20
MAX_RECORD_CHARS = 256 << 20


class InputError(ValueError):
    """A whole file cannot be read as the claimed format (missing, LFS pointer, another format)."""


class RecordError(ValueError):
    """One record cannot be ingested; ``reason`` is a stable snake_case code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass
class Quarantined:
    """A record that could not be processed, with enough context to find and fix it."""

    source: str
    file: str
    record: int
    reason: str
    error: str
    raw: str
    line: int | None = None
    step: str = "ingest"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Parsed:
    """One conversation parsed from a raw record, before ids and validation."""

    turns: list[dict[str, Any]]
    subset: str | None = None
    meta: dict[str, Any] | None = None
    part: int | None = None  # set when one raw record yields several conversations


@dataclass
class RawRecord:
    """One raw record from a container: the decoded object, or the error that stopped decoding."""

    record: int
    line: int | None
    obj: Any = None
    error: RecordError | None = None
    raw: str = ""


@dataclass
class ReadStats:
    read: int = 0
    ingested: int = 0
    quarantined: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    files: int = 0

    def add_quarantine(self, q: Quarantined) -> None:
        self.quarantined += 1
        self.by_reason[q.reason] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "ingested": self.ingested,
            "quarantined": self.quarantined,
            "by_reason": dict(self.by_reason),
            "files": self.files,
        }


def snippet(raw: Any, limit: int = SNIPPET_CHARS) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        raw = json.dumps(raw, ensure_ascii=False, default=str)
    return cast(str, raw) if len(raw) <= limit else raw[:limit] + f"...[{len(raw) - limit} more chars]"


# ---------------------------------------------------------------------------------------------- files


def expand_paths(spec: str | os.PathLike[str] | list[str]) -> list[str]:
    """Expand one path, a glob or a list of them into existing files, sorted; fail if none match."""
    specs = [str(s) for s in spec] if isinstance(spec, list) else [str(spec)]
    out: list[str] = []
    for s in specs:
        if s.startswith("hub:"):  # a Hugging Face Hub dataset: streamed by curate.ingest.hub
            out.append(s)
            continue
        s = os.path.expanduser(s)
        if any(ch in s for ch in "*?["):
            hits = sorted(p for p in glob.glob(s, recursive=True) if os.path.isfile(p))
            if not hits:
                raise InputError(f"{s}: no files match this pattern; check the path (see data/README.md)")
            out.extend(hits)
        elif os.path.isdir(s):
            out.append(s)  # a folder (e.g. a saved `datasets` dataset); the reader decides
        elif os.path.isfile(s):
            out.append(s)
        else:
            raise InputError(f"{s}: file not found; check the path or see data/README.md for where to get it")
    return out


def open_binary(path: str) -> IO[bytes]:
    """Open a file, decompressing .gz/.bz2/.xz/.zst by suffix."""
    p = path.lower()
    if p.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if p.endswith(".bz2"):
        return bz2.open(path, "rb")
    if p.endswith((".xz", ".lzma")):
        return lzma.open(path, "rb")
    if p.endswith(".zst"):
        import zstandard

        fh = open(path, "rb")  # noqa: SIM115 - closed with the returned stream
        # BufferedReader adds the line iteration (readline) that the zstd stream reader lacks
        reader = zstandard.ZstdDecompressor().stream_reader(fh, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 16)
    return open(path, "rb")


def base_name(path: str) -> str:
    """Name without compression suffix, used to sniff the inner format."""
    name = os.path.basename(path)
    for suf in (".gz", ".bz2", ".xz", ".lzma", ".zst"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def head_bytes(path: str, n: int = 4096) -> bytes:
    with open_binary(path) as fh:
        return fh.read(n)


def sniff(head: bytes) -> str:
    """Best guess of a file's container from its first bytes: lfs, parquet, xml, json, text, empty."""
    if head.startswith(LFS_MAGIC):
        return "git-lfs pointer"
    if head.startswith(b"PAR1"):
        return "parquet"
    s = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if s.startswith(b"<<<<<<< "):  # a merge-conflict marker line: judge by what follows it
        s = s.partition(b"\n")[2].lstrip()
    if not s:
        return "empty"
    if s.startswith(b"<"):
        return "xml"
    if s[:1] in (b"[", b"{"):
        return "json"
    return "text"


def check_not_lfs(path: str, head: bytes) -> None:
    if head.startswith(LFS_MAGIC):
        raise InputError(
            f"{path}: this is a git-lfs pointer, not data. Run `git lfs pull` in the repository it came "
            "from, or download the real file, then point the recipe at it."
        )


# ---------------------------------------------------------------------------------------------- JSON


def _decode_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError("invalid_utf8", f"byte {e.start}: {e.reason}") from None


def _json_error(text: str, err: Exception) -> RecordError:
    stripped = text.lstrip()
    if any(stripped.startswith(p) for p in CONFLICT_PREFIXES) or any(
        ("\n" + p) in text for p in CONFLICT_PREFIXES
    ):
        return RecordError("conflict_marker", f"unresolved merge-conflict markers ({err})")
    return RecordError("json_decode", str(err))


def iter_json_records(path: str, records_key: str | None = None) -> Iterator[RawRecord]:
    """Stream the records of a JSON file: JSONL, a JSON array, a single object or concatenated values.

    Memory stays flat for JSONL and arrays (one record decoded at a time). ``records_key`` unwraps
    ``{"<key>": [...]}`` files (such a wrapper is loaded whole). Every failure is yielded as a
    RawRecord with ``error`` set: malformed JSON, invalid UTF-8, merge-conflict markers, truncation.
    """
    head = head_bytes(path, 1 << 16)
    check_not_lfs(path, head)
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if body.startswith(b"{") and records_key is None:
        first_line = body.split(b"\n", 1)[0].strip()
        try:
            ok = isinstance(_loads(first_line), dict)
        except _JSONError:
            ok = False
        if ok:
            yield from _iter_jsonl(path)
            return
    yield from _iter_stream(path, records_key)


def _iter_jsonl(path: str) -> Iterator[RawRecord]:
    with open_binary(path) as fh:
        lineno = 0
        for raw in fh:
            lineno += 1
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue  # blank lines are not records
            try:
                obj = _loads(raw)  # orjson checks UTF-8 itself: decode to text only to explain a failure
            except _JSONError as err:
                try:
                    text = _decode_line(raw)
                except RecordError as e:
                    yield RawRecord(record=lineno, line=lineno, error=e, raw=snippet(raw))
                    continue
                yield RawRecord(record=lineno, line=lineno, error=_json_error(text, err), raw=snippet(text))
                continue
            yield RawRecord(record=lineno, line=lineno, obj=obj, raw="")


class _TextBuffer:
    """A growing window over a decoded text stream, with line counting."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # line number at self.pos

    def fill(self, n: int = CHUNK_CHARS) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(n)
        if not chunk:
            self.eof = True
            return False
        if self.pos > len(self.buf) // 2:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += chunk
        return True

    def advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def skip_ws(self, extra: str = "") -> str:
        """Skip whitespace (and ``extra`` chars); return the next char or '' at EOF."""
        chars = " \t\r\n\ufeff" + extra
        while True:
            i = self.pos
            n = len(self.buf)
            while i < n and self.buf[i] in chars:
                i += 1
            self.advance(i)
            if i < n:
                return self.buf[i]
            if not self.fill():
                return ""


_DECODER = json.JSONDecoder()


def _iter_stream(path: str, records_key: str | None) -> Iterator[RawRecord]:
    raw_fh = open_binary(path)
    with io.TextIOWrapper(raw_fh, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        tb = _TextBuffer(fh)
        tb.fill()
        ordinal = 0
        in_array = False
        element_indent: int | None = None
        while True:
            ch = tb.skip_ws("," if in_array else "")
            if ch == "":
                if in_array:
                    ordinal += 1
                    yield RawRecord(
                        record=ordinal,
                        line=tb.line,
                        error=RecordError("truncated", "file ends inside the top-level JSON array"),
                    )
                return
            if not in_array and ch == "[":
                in_array = True
                tb.advance(tb.pos + 1)
                continue
            if in_array and ch == "]":
                in_array = False
                tb.advance(tb.pos + 1)
                continue
            if in_array and element_indent is None:
                element_indent = tb.pos - (tb.buf.rfind("\n", 0, tb.pos) + 1)
            start_line = tb.line
            failed = False
            while True:
                try:
                    obj, end = _DECODER.raw_decode(tb.buf, tb.pos)
                    break
                except json.JSONDecodeError as err:
                    near_end = len(tb.buf) - err.pos < 32 or err.msg.startswith("Unterminated string")
                    too_big = len(tb.buf) - tb.pos > MAX_RECORD_CHARS
                    if near_end and not too_big and tb.fill(max(CHUNK_CHARS, len(tb.buf) - tb.pos)):
                        continue
                    ordinal += 1
                    text = tb.buf[tb.pos : tb.pos + SNIPPET_CHARS * 4]
                    at_end = err.pos >= len(tb.buf.rstrip()) - 1 or err.msg.startswith("Unterminated string")
                    if tb.eof and at_end:
                        rec_err = RecordError("truncated", f"file ends inside a record ({err.msg})")
                    else:
                        rec_err = _json_error(text, err)
                    yield RawRecord(record=ordinal, line=start_line, error=rec_err, raw=snippet(text))
                    if not _resync(tb, in_array, element_indent):
                        return
                    failed = True
                    break
            if failed:
                continue
            tb.advance(end)
            if records_key is not None and not in_array and isinstance(obj, dict):
                items = obj.get(records_key)
                if not isinstance(items, list):
                    raise InputError(f"{path}: expected a list under key {records_key!r}, found {type(items).__name__}")
                for item in items:
                    ordinal += 1
                    yield RawRecord(record=ordinal, line=start_line, obj=item)
                continue
            ordinal += 1
            if "\udc80" <= max(_strings_of(obj), default="") and _has_surrogates(obj):
                yield RawRecord(
                    record=ordinal,
                    line=start_line,
                    error=RecordError("invalid_utf8", "record contains bytes that are not UTF-8"),
                    raw=snippet(obj),
                )
                continue
            yield RawRecord(record=ordinal, line=start_line, obj=obj)


def _strings_of(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings_of(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings_of(v)


def _has_surrogates(obj: Any) -> bool:
    return any(any("\udc80" <= c <= "\udcff" for c in s) for s in _strings_of(obj))


def _resync(tb: _TextBuffer, in_array: bool, indent: int | None) -> bool:
    """After a malformed record, move to the start of the next plausible record. False at EOF."""
    while True:
        nl = tb.buf.find("\n", tb.pos)
        while nl == -1:
            if not tb.fill():
                tb.advance(len(tb.buf))
                return False
            nl = tb.buf.find("\n", tb.pos)
        tb.advance(nl + 1)
        # need the whole next line to decide
        while tb.buf.find("\n", tb.pos) == -1 and tb.fill():
            pass
        line_end = tb.buf.find("\n", tb.pos)
        line = tb.buf[tb.pos : line_end if line_end != -1 else len(tb.buf)]
        stripped = line.lstrip(" \t\r,")
        lead = len(line) - len(stripped)
        ws_lead = len(line) - len(line.lstrip())
        if not in_array and stripped.startswith("{"):
            tb.advance(tb.pos + lead)
            return True
        if not in_array and ws_lead == 0 and stripped.startswith("["):
            # a top-level array after junk (e.g. a merge-conflict marker line): read it as an array
            tb.advance(tb.pos + lead)
            return True
        if in_array and stripped.startswith(("{", "[")) and (indent is None or ws_lead <= indent):
            tb.advance(tb.pos + lead)
            return True
        if in_array and stripped.startswith("]") and (indent is None or lead <= max(indent - 1, 0)):
            tb.advance(tb.pos + lead)
            return True
        if line_end == -1 and tb.eof:
            tb.advance(len(tb.buf))
            return False


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
        check_not_lfs(path, head)
        kind = sniff(head)
        if kind not in ("json", "empty"):
            raise InputError(
                f"{path}: expected {self.format} JSON/JSONL but the file looks like {kind}; "
                f"set the source's `format:` to the right reader (see `curate steps read`)"
            )
        return iter_json_records(path, self.records_key)

    @abstractmethod
    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        """Rows in the conversation schema (as dicts) or Quarantined entries for one file."""


class RecordReader(Reader):
    """A reader whose raw records each become one or more conversations: implement ``parse``.

    The shared machinery here turns ``raw_records`` into schema rows: ids, validation, quarantine with
    a stable reason, and a loud error when a file's first records all look like another format.
    """

    @abstractmethod
    def parse(self, obj: Any) -> Parsed | list[Parsed]:
        """Turn one raw record into one or more conversations. Raise RecordError for a bad record."""

    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        """Rows in the conversation schema (as dicts) or Quarantined entries for one file."""
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
                            "id": record_id(source, path, rr.record, p.part),
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
                f"{path}: records do not look like {self.format} but like {guess} "
                f"(keys {sorted(failures[0])[:8]}); set the source's `format: {guess}`"
            )


def read_batches(
    reader: Reader,
    paths: list[str],
    source: str,
    batch_size: int = 20_000,
    stats: ReadStats | None = None,
    on_quarantine: Callable[[Quarantined], None] | None = None,
    limit: int | None = None,
) -> Iterator[pl.DataFrame]:
    """Stream schema batches from files; quarantined entries go to ``on_quarantine`` and ``stats``."""
    stats = stats if stats is not None else ReadStats()
    rows: list[dict[str, Any]] = []
    for path in paths:
        stats.files += 1
        for item in reader.records(path, source):
            if limit is not None and stats.read >= limit:
                break
            stats.read += 1
            if isinstance(item, Quarantined):
                stats.add_quarantine(item)
                if on_quarantine is not None:
                    on_quarantine(item)
                continue
            stats.ingested += 1
            rows.append(item)
            if len(rows) >= batch_size:
                yield make_batch(rows)
                rows = []
    if rows:
        yield make_batch(rows)


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
