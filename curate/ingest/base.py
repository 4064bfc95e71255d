"""What every reader shares: opening (compressed) files, streaming JSON records, quarantine, batching, ids.

A reader implements ``parse(obj) -> Parsed | list[Parsed]`` for one raw record (JSON family) or
overrides ``records(path)`` for other containers (XML, trees). The base class turns records into
schema batches and every failure into a :class:`Quarantined` entry, so a reader never drops a
record silently and never crashes on one bad record.

Damaged input. A compressed file that is cut short or corrupt yields the records before the damage
and one quarantine entry (``truncated_file`` / ``damaged_file``) saying where it was cut; a file whose
name says compressed but whose data is not raises InputError naming it. Text that UTF-8 cannot hold
(bytes that are not UTF-8, a lone ``\\ud83d`` escape) is quarantined per record, so it never reaches
Parquet; so are records nested deeper than ``Reader.max_depth`` (``too_deep``) and records over
MAX_RECORD_CHARS (``record_too_large``). Quarantine entries escape whatever cannot be written as UTF-8.

Ids. ``read_batches`` gives every conversation its id from the source, the content and an
occurrence counter (see :func:`curate.schema.conversation_id`), so ids survive moves and re-ingestion.
"""

from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import io
import json
import logging
import lzma
import os
import re
import zlib
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C string scanner json itself uses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

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

try:  # orjson is several times faster on JSONL; json is the fallback
    import orjson

    _loads: Callable[[bytes | str], Any] = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    _loads = json.loads
    _JSONError = (ValueError,)

log = logging.getLogger(__name__)

SNIPPET_CHARS = 300
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
CONFLICT_PREFIXES = ("<<<<<<< ", "=======", ">>>>>>> ")
CHUNK_CHARS = 1 << 20
# One record larger than this is quarantined (record_too_large) and skipped without being held whole.
MAX_RECORD_CHARS = 256 << 20
# Records of every supported format nest a few levels (the deepest, Alpaca history or OpenAI content
# parts, about 5); 100 leaves room for rich meta and keeps every later JSON step far from Python's
# recursion limit. Open-Assistant trees nest two levels per reply and set their own limit.
MAX_JSON_DEPTH = 100


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
        """The entry as a dict whose strings can always be written as UTF-8 (bad bytes escaped)."""
        return {k: escape_invalid_text(v) if isinstance(v, str) else v for k, v in asdict(self).items()}


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


def snippet(raw: Any, limit: int = SNIPPET_CHARS) -> str:
    """A short preview of a raw record for quarantine entries, bounded whatever the record's size or depth."""
    if isinstance(raw, bytes):
        text = raw[: limit * 4].decode("utf-8", "surrogateescape")[:limit]
        more = len(raw) - len(text.encode("utf-8", "surrogateescape"))
        return escape_invalid_text(text) + (f"...[{more} more bytes]" if more > 0 else "")
    if isinstance(raw, str):
        if len(raw) <= limit:
            return escape_invalid_text(raw)
        return escape_invalid_text(raw[:limit]) + f"...[{len(raw) - limit} more chars]"
    text, complete = _preview(raw, limit)
    return escape_invalid_text(text) + ("" if complete else "...[cut]")


class _Lit(str):
    """A literal piece of preview text (not a value to serialise)."""


def _preview(obj: Any, limit: int) -> tuple[str, bool]:
    """JSON-like text of ``obj``, built iteratively and stopped after ``limit`` chars; (text, complete)."""
    out: list[str] = []
    size = 0
    stack: list[Any] = [obj]  # values to write, or _Lit pieces of text
    piece: str
    while stack:
        if size > limit:
            text = "".join(out)
            return text[:limit], False
        item = stack.pop()
        if type(item) is _Lit:
            piece = item
        elif isinstance(item, dict):
            entries: list[Any] = [_Lit("{")]
            for i, (k, v) in enumerate(item.items()):
                if i:
                    entries.append(_Lit(", "))
                entries.append(_Lit(json.dumps(str(k), ensure_ascii=False) + ": "))
                entries.append(v)
                if i > limit:  # enough to fill the preview
                    break
            entries.append(_Lit("}"))
            stack.extend(reversed(entries))
            continue
        elif isinstance(item, (list, tuple)):
            entries = [_Lit("[")]
            for i, v in enumerate(item):
                if i:
                    entries.append(_Lit(", "))
                entries.append(v)
                if i > limit:
                    break
            entries.append(_Lit("]"))
            stack.extend(reversed(entries))
            continue
        elif isinstance(item, str):
            piece = json.dumps(item[: limit + 1], ensure_ascii=False)
        elif item is None or isinstance(item, (bool, int, float)):
            piece = json.dumps(item)
        else:
            piece = repr(item)[: limit + 1]
        out.append(piece)
        size += len(piece)
    text = "".join(out)
    return (text, True) if len(text) <= limit else (text[:limit], False)


# ---------------------------------------------------------------------------------------------- files


def display_path(path: str) -> str:
    """A path as valid text: bytes of a file name that are not UTF-8 (kept by the OS layer as
    surrogateescape code points) are written as ``\\xNN``. Used in provenance and quarantine entries."""
    return escape_invalid_text(path)


def expand_paths(spec: str | os.PathLike[str] | list[str]) -> list[str]:
    """Expand paths and globs into existing files, each real file once; fail if a path or pattern matches nothing.

    An existing path is used as it is, even when its name holds glob characters (``data[1].jsonl``);
    otherwise ``*``, ``?`` and ``[...]`` are a pattern (escape them as ``[*]``, ``[?]``, ``[[]``, or
    with ``glob.escape``), ``**`` matches any folder depth without following symlinked folders (a
    symlink loop is read once, never forever), and names starting with ``.`` match only a pattern
    that starts with ``.``. A file reached twice (listed twice, or through a symlink) is read once;
    a warning names it. Folders are kept (a saved ``datasets`` folder; a reader that needs files says so).
    """
    specs = [str(s) for s in spec] if isinstance(spec, list) else [str(spec)]
    out: list[str] = []
    seen: dict[str, str] = {}
    for s in specs:
        if s.startswith("hub:"):  # a Hugging Face Hub dataset: streamed by curate.ingest.hub
            out.append(s)
            continue
        s = os.path.expanduser(s)
        if os.path.exists(s):
            hits = [s]
        elif glob.has_magic(s):
            hits = _glob_files(s)
            if not hits:
                raise InputError(
                    f"{s}: no files match this pattern; check the path (see data/README.md). A file whose "
                    "name holds *, ? or [ is matched as a pattern unless it exists: escape them as [*], [?], [[]"
                )
        else:
            raise InputError(f"{s}: file not found; check the path or see data/README.md for where to get it")
        for h in hits:
            real = os.path.realpath(h)
            if real in seen:
                log.warning("%s: the same file as %s (listed twice or reached through a link); read once",
                            display_path(h), display_path(seen[real]))
                continue
            seen[real] = h
            out.append(h)
    return out


def unique_files(paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """``paths`` with every real file kept once (first listing wins), and the repeats that were dropped."""
    keep: list[str] = []
    repeats: list[str] = []
    seen: set[str] = set()
    for p in paths:
        key = p if p.startswith("hub:") else os.path.realpath(p)
        if key in seen:
            repeats.append(p)
            log.warning("%s: listed more than once for one source; read once", display_path(p))
            continue
        seen.add(key)
        keep.append(p)
    return keep, repeats


def _glob_files(pattern: str) -> list[str]:
    """Files matching ``pattern``, sorted. pathlib's ``**`` does not follow symlinked folders, unlike
    ``glob.glob(recursive=True)``, which loops forever on a folder linked into itself."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first]) if first else Path(".")
    rest = parts[first:]
    allow_hidden = any(part.startswith(".") for part in rest)
    hits = []
    for p in root.glob(os.path.join(*rest)):
        rel = p.relative_to(root).parts
        if not allow_hidden and any(c.startswith(".") for c in rel):
            continue
        if p.is_file():
            hits.append(str(p) if first else os.path.join(*rel))
    return sorted(hits)


@dataclass
class Damage:
    """Where a compressed stream stopped being readable."""

    truncated: bool  # ends early (True) or corrupt data (False)
    offset: int  # decompressed bytes delivered before the damage
    detail: str
    kind: str  # gzip, bz2, xz, zstd

    @property
    def reason(self) -> str:
        return "truncated_file" if self.truncated else "damaged_file"

    def error(self, where: str) -> RecordError:
        what = "ends early" if self.truncated else "is damaged"
        at = f"after {self.offset:,} decompressed bytes, {where}" if self.offset else "before any data could be read"
        return RecordError(
            self.reason,
            f"the {self.kind} data {what} {at} ({self.detail}); the records before it were read, anything "
            "after it is lost",
        )


_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error, lzma.LZMAError)


class _Guarded(io.RawIOBase):
    """A decompressing stream whose failure becomes end of data plus ``damage``, so the records read
    before it are kept and the reader says where the file was cut. A failure before the first byte is
    decompressed (the file is not in that format at all) raises InputError naming the file."""

    def __init__(self, inner: Any, path: str, kind: str) -> None:
        super().__init__()
        self.inner = inner
        self.path = path
        self.kind = kind
        self.offset = 0
        self.damage: Damage | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.damage is not None:
            return 0
        try:
            data = self.inner.read1(len(b))  # one step at a time: nothing decoded is lost to an error
        except _DECOMPRESS_ERRORS + _zstd_errors() as e:
            detail = f"{type(e).__name__}: {e}"
            if self.offset == 0 and not isinstance(e, EOFError):
                raise InputError(
                    f"{display_path(self.path)}: not valid {self.kind} data ({detail}); the name says "
                    f"{self.kind}-compressed but the content is not. Rename the file to what it is, or recompress it"
                ) from None
            self.damage = Damage(isinstance(e, EOFError), self.offset, detail, self.kind)
            return 0
        n = len(data)
        b[:n] = data
        self.offset += n
        return n

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
        super().close()


def _zstd_errors() -> tuple[type[BaseException], ...]:
    try:
        import zstandard
    except ImportError:  # pragma: no cover
        return ()
    return (zstandard.ZstdError,)


class _ZstdStream(io.RawIOBase):
    """zstd frames, one or several (as ``zstd`` and ``pzstd`` write them), with a cut frame reported
    as EOFError: ``zstandard``'s stream reader ends silently at a cut. Input goes in small steps so one
    step's output stays bounded (about 2 KB in cannot expand past a few tens of MB)."""

    STEP_BYTES = 2048

    def __init__(self, path: str) -> None:
        super().__init__()
        import zstandard

        self.fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.dctx = zstandard.ZstdDecompressor()
        self.obj = self.dctx.decompressobj()
        self.in_frame = False
        self.out = b""
        self.pos = 0

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        while self.pos >= len(self.out):
            chunk = self.fh.read(self.STEP_BYTES)
            if not chunk:
                if self.in_frame:
                    raise EOFError("the zstd stream ends inside a frame")
                return b""
            self.out, self.pos = self._feed(chunk), 0
        n = len(self.out) - self.pos if n < 0 else n
        data = self.out[self.pos : self.pos + n]
        self.pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read1(len(b))
        b[: len(data)] = data
        return len(data)

    def _feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            self.in_frame = True
            out.append(self.obj.decompress(chunk))
            if not self.obj.eof:
                break
            chunk = self.obj.unused_data  # the next frame starts here
            self.obj = self.dctx.decompressobj()
            self.in_frame = False
        return b"".join(out)

    def close(self) -> None:
        if not self.closed:
            self.fh.close()
        super().close()


_COMPRESSED = ((".gz", "gzip"), (".bz2", "bz2"), (".xz", "xz"), (".lzma", "xz"), (".zst", "zstd"))


def open_binary(path: str) -> io.BufferedReader:
    """Open a file, decompressing .gz/.bz2/.xz/.zst by suffix (damage is reported, see :class:`_Guarded`)."""
    if os.path.isdir(path):
        raise InputError(
            f"{display_path(path)}: is a folder, not a file; give the files in it, e.g. "
            f"{display_path(os.path.join(path, '*.jsonl'))} (or {display_path(os.path.join(path, '**', '*.jsonl'))} "
            "for every level)"
        )
    p = path.lower()
    kind = next((k for suf, k in _COMPRESSED if p.endswith(suf)), None)
    if kind is None:
        return open(path, "rb")
    inner: Any
    if kind == "gzip":
        inner = gzip.open(path, "rb")  # noqa: SIM115 - closed by the returned stream
    elif kind == "bz2":
        inner = bz2.open(path, "rb")  # noqa: SIM115
    elif kind == "xz":
        inner = lzma.open(path, "rb")  # noqa: SIM115
    else:
        inner = _ZstdStream(path)
    return io.BufferedReader(_Guarded(inner, path, kind), buffer_size=1 << 16)


def damage_of(fh: io.BufferedReader) -> Damage | None:
    """The damage a stream from :func:`open_binary` met, once it returned end of data; None if it is whole."""
    raw = getattr(fh, "raw", None)
    return raw.damage if isinstance(raw, _Guarded) else None


def base_name(path: str) -> str:
    """Name without compression suffix, used to sniff the inner format."""
    name = os.path.basename(path)
    for suf in (".gz", ".bz2", ".xz", ".lzma", ".zst"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def head_bytes(path: str, n: int = 4096) -> bytes:
    """The first ``n`` (decompressed) bytes, or fewer when the file is shorter or cut."""
    out = bytearray()
    with open_binary(path) as fh:
        while len(out) < n:
            data = fh.read1(n - len(out))
            if not data:
                break
            out += data
    return bytes(out)


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
            f"{display_path(path)}: this is a git-lfs pointer, not data. Run `git lfs pull` in the repository it "
            "came from, or download the real file, then point the recipe at it."
        )


_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32LE", "with a byte-order mark"),
    (codecs.BOM_UTF32_BE, "UTF-32BE", "with a byte-order mark"),
    (codecs.BOM_UTF16_LE, "UTF-16LE", "with a byte-order mark"),
    (codecs.BOM_UTF16_BE, "UTF-16BE", "with a byte-order mark"),
)


def wide_encoding(head: bytes) -> str | None:
    """``UTF-16LE``/``UTF-16BE``/``UTF-32LE``/``UTF-32BE`` (+ how it was recognised) when the first
    bytes are such text: a byte-order mark, or the NUL bytes that ASCII characters leave in them."""
    for bom, name, how in _BOMS:
        if head.startswith(bom):
            return f"{name} ({how})"
    sample = head[:1024]
    if b"\x00" not in sample or len(sample) < 4:
        return None
    sample = sample[: len(sample) // 4 * 4]
    quarter = len(sample) // 4
    zeros = [sample[i::4].count(0) for i in range(4)]
    if zeros[0] < quarter / 4 and min(zeros[1:]) > quarter * 0.75:
        return "UTF-32LE (no byte-order mark; recognised by its NUL bytes)"
    if zeros[3] < quarter / 4 and min(zeros[:3]) > quarter * 0.75:
        return "UTF-32BE (no byte-order mark; recognised by its NUL bytes)"
    half = len(sample) // 2
    even, odd = zeros[0] + zeros[2], zeros[1] + zeros[3]
    if odd > half * 0.4 and even < half * 0.05:
        return "UTF-16LE (no byte-order mark; recognised by its NUL bytes)"
    if even > half * 0.4 and odd < half * 0.05:
        return "UTF-16BE (no byte-order mark; recognised by its NUL bytes)"
    return None


def check_head(path: str, head: bytes) -> None:
    """Fail with a clear InputError for a git-lfs pointer or text that is not UTF-8 (UTF-16/UTF-32)."""
    check_not_lfs(path, head)
    enc = wide_encoding(head)
    if enc is not None:
        name = enc.split(" ", 1)[0]
        shown = display_path(path)
        raise InputError(
            f"{shown}: the file is {enc} text; curate reads UTF-8. Convert it first, e.g. "
            f"`iconv -f {name} -t UTF-8 {shown} > {shown}.utf8` (drop a leading byte-order mark if iconv keeps one)"
        )


# ---------------------------------------------------------------------------------------------- JSON


def _decode_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError("invalid_utf8", f"byte {e.start} (0x{raw[e.start]:02x}): {e.reason}") from None


def _json_error(text: str, err: Exception) -> RecordError:
    stripped = text.lstrip()
    if any(stripped.startswith(p) for p in CONFLICT_PREFIXES) or any(
        ("\n" + p) in text for p in CONFLICT_PREFIXES
    ):
        return RecordError("conflict_marker", f"unresolved merge-conflict markers ({err})")
    pos = getattr(err, "pos", None)
    if isinstance(pos, int) and text.startswith(_NON_JSON_CONSTANTS, pos):
        const = next(c for c in _NON_JSON_CONSTANTS if text.startswith(c, pos))
        return _constant_error(const)
    return RecordError("json_decode", str(err))


_NON_JSON_CONSTANTS = ("-Infinity", "Infinity", "NaN")


def _constant_error(const: str) -> RecordError:
    return RecordError("json_decode", f"{const} is not valid JSON (JSON has no NaN or Infinity)")


class _NonJSONConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonJSONConstant(name)


# The stdlib decoder of the streaming path rejects NaN/Infinity like orjson does on JSONL lines.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _lone_surrogate_error(where: str, ch: str) -> RecordError:
    return RecordError(
        "lone_surrogate",
        f"invalid text: {where} holds {describe_invalid_char(ch)}, half of a UTF-16 surrogate pair without its "
        "other half (e.g. a cut emoji); it is not valid Unicode and cannot be written as UTF-8",
    )


def check_obj(obj: Any, max_depth: int = MAX_JSON_DEPTH, check_text: bool = True) -> RecordError | None:
    """Walk a decoded record iteratively: too_deep past ``max_depth`` nested containers, and (with
    ``check_text``) lone_surrogate / invalid_utf8 for a string UTF-8 cannot hold, naming where."""
    stack: list[tuple[Any, int, str]] = [(obj, 1, "$")]
    while stack:
        cur, depth, where = stack.pop()
        if isinstance(cur, str):
            if check_text and (i := invalid_text_at(cur)) >= 0:
                if 0xDC80 <= ord(cur[i]) <= 0xDCFF:
                    return RecordError("invalid_utf8", f"{where} holds {describe_invalid_char(cur[i])}, not UTF-8")
                return _lone_surrogate_error(where, cur[i])
            continue
        if not isinstance(cur, (dict, list)):
            continue
        if depth > max_depth:
            return RecordError("too_deep", f"nested more than {max_depth} levels (at {where[:120]})")
        if isinstance(cur, dict):
            for k, v in cur.items():
                if check_text and isinstance(k, str) and (i := invalid_text_at(k)) >= 0:
                    return _lone_surrogate_error(f"a key of {where}", k[i])
                stack.append((v, depth + 1, f"{where}.{k}" if len(where) < 200 else where))
        else:
            for j, v in enumerate(cur):
                stack.append((v, depth + 1, f"{where}[{j}]" if len(where) < 200 else where))
    return None


def iter_json_records(
    path: str, records_key: str | None = None, max_depth: int = MAX_JSON_DEPTH
) -> Iterator[RawRecord]:
    """Stream the records of a JSON file: JSONL, a JSON array, a single object or concatenated values.

    Memory stays flat for JSONL and arrays (one record decoded at a time, none over MAX_RECORD_CHARS
    held). ``records_key`` unwraps ``{"<key>": [...]}`` files (such a wrapper is loaded whole). Every
    failure is yielded as a RawRecord with ``error`` set: malformed JSON, invalid UTF-8, a lone
    surrogate, merge-conflict markers, too deep, too large, truncation, a damaged compressed stream.
    """
    head = head_bytes(path, 1 << 16)
    check_head(path, head)
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if body.startswith(b"{") and records_key is None and _first_line_is_record(body):
        yield from _iter_jsonl(path, max_depth)
        return
    yield from _iter_stream(path, records_key, max_depth)


def _first_line_is_record(body: bytes) -> bool:
    """JSONL when the first line is one whole object, or a whole line that only a bad value spoils
    (NaN, a bad byte, a lone surrogate): that line is then one quarantined record, like any other line."""
    first_line, nl, _ = body.partition(b"\n")
    first_line = first_line.strip()
    try:
        return isinstance(_loads(first_line), dict)
    except _JSONError:
        return bool(nl) and first_line.endswith(b"}")


def _iter_jsonl(path: str, max_depth: int) -> Iterator[RawRecord]:
    with open_binary(path) as fh:
        lineno = 0
        while True:
            raw = fh.readline(MAX_RECORD_CHARS + 1)
            if not raw:
                break
            lineno += 1
            if not raw.endswith(b"\n"):
                if len(raw) > MAX_RECORD_CHARS:
                    size = len(raw) + _skip_line(fh)
                    err = RecordError(
                        "record_too_large", f"line {lineno} is {size:,} bytes, over the {MAX_RECORD_CHARS:,} limit"
                    )
                    yield RawRecord(record=lineno, line=lineno, error=err, raw=snippet(raw))
                    continue
                damage = damage_of(fh)
                if damage is not None:  # the last line is the one the damage cut
                    err = damage.error(f"in line {lineno}")
                    yield RawRecord(record=lineno, line=lineno, error=err, raw=snippet(raw))
                    return
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue  # blank lines are not records
            obj, bad = _decode_jsonl_line(raw, max_depth)
            if bad is not None:
                yield RawRecord(record=lineno, line=lineno, error=bad, raw=snippet(raw))
                continue
            yield RawRecord(record=lineno, line=lineno, obj=obj, raw="")
        damage = damage_of(fh)
        if damage is not None:
            yield RawRecord(record=lineno + 1, line=lineno + 1, error=damage.error(f"after line {lineno}"))


def _skip_line(fh: io.BufferedReader) -> int:
    """Consume the rest of a long line without holding it; the number of bytes skipped."""
    n = 0
    while True:
        chunk = fh.readline(CHUNK_CHARS)
        n += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return n


def _decode_jsonl_line(raw: bytes, max_depth: int) -> tuple[Any, RecordError | None]:
    try:
        obj = _loads(raw)  # orjson checks UTF-8 and surrogates itself: decode to text only to explain a failure
    except _JSONError as err:
        try:
            text = _decode_line(raw)
        except RecordError as e:
            return None, e
        msg = str(err)
        if "surrogate" in msg:
            return None, _lone_surrogate_error(f"a string near char {getattr(err, 'pos', '?')}", _lone_escape(text))
        if "depth" in msg or "recursion" in msg:
            if max_depth <= _FAST_DEPTH:
                return None, RecordError("too_deep", f"nested more than {max_depth} levels")
            try:
                obj, _ = _loads_deep(text, 0, len(text))
            except RecordError as e:
                return None, e
            return obj, check_obj(obj, max_depth)
        return None, _json_error(text, err)
    if raw.count(b"[") + raw.count(b"{") > max_depth:
        return obj, check_obj(obj, max_depth, check_text=False)
    return obj, None


def _lone_escape(text: str) -> str:
    """The first ``\\uD800``-``\\uDFFF`` escape in JSON text that is not half of a proper pair, as a char."""
    ms = list(_SURROGATE_ESCAPE.finditer(text))
    for k, m in enumerate(ms):
        cp = int(m.group(1), 16)
        nxt = ms[k + 1] if k + 1 < len(ms) else None
        if cp < 0xDC00 and nxt is not None and nxt.start() == m.end() and int(nxt.group(1), 16) >= 0xDC00:
            continue  # a high half followed by a low half
        if cp >= 0xDC00 and k > 0 and ms[k - 1].end() == m.start() and int(ms[k - 1].group(1), 16) < 0xDC00:
            continue  # the low half of such a pair
        return chr(cp)
    return "\ud800"


# Depth the C decoders handle without recursion trouble (orjson stops at 1024; json at the recursion limit).
_FAST_DEPTH = 500
# A \uD800-\uDFFF escape in JSON text: half of a surrogate pair, fine only when its other half follows.
_SURROGATE_ESCAPE = re.compile(r"\\u([dD][89a-fA-F][0-9a-fA-F]{2})")
_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")


class _TextBuffer:
    """A growing window over a UTF-8 byte stream (bad bytes kept as surrogateescape), with line counting.

    Bytes come in with ``read1`` (one decompression step at a time), so everything decoded before a
    damaged part of a compressed file is in the buffer when the damage ends the stream.
    """

    def __init__(self, fh: io.BufferedReader) -> None:
        self.fh = fh
        self.dec = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # line number at self.pos

    def fill(self, n: int = CHUNK_CHARS) -> bool:
        if self.eof:
            return False
        pieces: list[str] = []
        got = 0
        while got < n:
            data = self.fh.read1(n)
            text = self.dec.decode(data, final=not data)
            if text:
                pieces.append(text)
                got += len(text)
            if not data:
                self.eof = True
                break
        if not pieces:
            return False
        if self.pos > len(self.buf) // 2:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += "".join(pieces)
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


def _iter_stream(path: str, records_key: str | None, max_depth: int) -> Iterator[RawRecord]:
    with open_binary(path) as fh:
        tb = _TextBuffer(fh)
        tb.fill()
        ordinal = 0
        in_array = False
        element_indent: int | None = None
        last_line = 0  # line where the last value (or the array's "[") ended
        like: Any = None  # the last element decoded: what a sibling looks like

        def cut(where: str) -> RawRecord | None:
            damage = damage_of(fh)
            return None if damage is None else RawRecord(record=ordinal + 1, line=tb.line, error=damage.error(where))

        while True:
            ch = tb.skip_ws("," if in_array else "")
            if ch == "":
                entry = cut(f"after line {tb.line}" + (" (inside the top-level JSON array)" if in_array else ""))
                if entry is None and in_array:
                    err = RecordError("truncated", f"file ends inside the top-level JSON array (line {tb.line})")
                    entry = RawRecord(record=ordinal + 1, line=tb.line, error=err)
                if entry is not None:
                    yield entry
                return
            if not in_array and ch == "[":
                in_array = True
                tb.advance(tb.pos + 1)
                last_line = tb.line
                continue
            if in_array and ch == "]":
                in_array = False
                tb.advance(tb.pos + 1)
                continue
            # An element on the line where the previous one ended (a minified array) is skipped by its
            # brackets when bad; one that starts its own line is skipped by lines, which also gets past
            # broken brackets (merge-conflict markers).
            inline = in_array and tb.line == last_line
            if in_array and element_indent is None:
                element_indent = tb.pos - (tb.buf.rfind("\n", 0, tb.pos) + 1)
            start_line = tb.line
            obj, end, failed = _decode_at(tb, max_depth)
            start = tb.pos  # decoding may have read more (and moved the buffer), never past the start
            if failed is not None:
                if failed.reason == "truncated":
                    entry = cut(f"inside the record that starts on line {start_line}")
                    if entry is not None:
                        yield entry
                        return
                ordinal += 1
                yield RawRecord(record=ordinal, line=start_line, error=failed, raw=snippet(tb.buf[start : start + SNIPPET_CHARS * 4]))
                if failed.reason == "truncated":
                    return
                if failed.reason == "record_too_large":
                    ok = _drop_value(tb)
                elif inline and (vend := _value_end(tb)) is not None:
                    tb.advance(vend)
                    ok = True
                elif inline and _next_sibling(tb, like):
                    ok = True
                else:
                    ok = _resync(tb, in_array, element_indent)
                last_line = tb.line
                if not ok:
                    entry = cut(f"after line {tb.line}")
                    if entry is not None:
                        yield entry
                    return
                continue
            if records_key is not None and not in_array and isinstance(obj, dict):
                tb.advance(end)
                items = obj.get(records_key)
                if not isinstance(items, list):
                    raise InputError(
                        f"{display_path(path)}: expected a list under key {records_key!r}, found {type(items).__name__}"
                    )
                for item in items:
                    ordinal += 1
                    bad = check_obj(item, max_depth)
                    if bad is not None:
                        yield RawRecord(record=ordinal, line=start_line, error=bad, raw=snippet(item))
                    else:
                        yield RawRecord(record=ordinal, line=start_line, obj=item)
                continue
            ordinal += 1
            bad = _check_decoded(tb, start, end, obj, max_depth, start_line)
            if in_array:
                like = obj
            raw = snippet(tb.buf[start : min(end, start + SNIPPET_CHARS * 4)]) if bad is not None else ""
            tb.advance(end)
            last_line = tb.line
            if bad is not None:
                yield RawRecord(record=ordinal, line=start_line, error=bad, raw=raw)
                continue
            yield RawRecord(record=ordinal, line=start_line, obj=obj)


def _decode_at(tb: _TextBuffer, max_depth: int) -> tuple[Any, int, RecordError | None]:
    """Decode the value at ``tb.pos``, reading more as needed: (obj, end, None) or (None, -1, error).

    ``tb.pos`` stays at the value's start (the buffer may move under it when it fills)."""
    while True:
        try:
            obj, end = _DECODER.raw_decode(tb.buf, tb.pos)
            return obj, end, None
        except json.JSONDecodeError as err:
            size = len(tb.buf) - tb.pos
            near_end = len(tb.buf) - err.pos < 32 or err.msg.startswith("Unterminated string")
            if near_end and size <= MAX_RECORD_CHARS and tb.fill(max(CHUNK_CHARS, size)):
                continue
            if size > MAX_RECORD_CHARS:
                msg = f"the record starting on line {tb.line} is over {MAX_RECORD_CHARS:,} chars"
                return None, -1, RecordError("record_too_large", msg)
            at_end = err.pos >= len(tb.buf.rstrip()) - 1 or err.msg.startswith("Unterminated string")
            if tb.eof and at_end:
                return None, -1, RecordError("truncated", f"file ends inside a record ({err.msg})")
            return None, -1, _json_error(tb.buf[tb.pos : tb.pos + SNIPPET_CHARS * 4], _Shifted(err, tb.pos))
        except _NonJSONConstant as e:
            return None, -1, _constant_error(str(e))
        except RecursionError:
            if max_depth <= _FAST_DEPTH:
                return None, -1, RecordError("too_deep", f"nested more than {max_depth} levels")
            vend = _value_end(tb)
            if vend is None:
                return None, -1, RecordError("truncated", "file ends inside a deeply nested record")
            try:
                obj, _ = _loads_deep(tb.buf, tb.pos, vend)
            except RecordError as e:
                return None, -1, e
            return obj, vend, None


class _Shifted(Exception):
    """A JSONDecodeError with ``pos`` relative to a snippet that starts at ``offset``."""

    def __init__(self, err: json.JSONDecodeError, offset: int) -> None:
        super().__init__(str(err))
        self.pos = err.pos - offset


def _check_decoded(
    tb: _TextBuffer, start: int, end: int, obj: Any, max_depth: int, start_line: int
) -> RecordError | None:
    """Cheap checks on the record's text first; the walk over the object only when they call for it."""
    if end - start > MAX_RECORD_CHARS:
        return RecordError("record_too_large", f"the record is {end - start:,} chars, over the {MAX_RECORD_CHARS:,} limit")
    m = _SURROGATE_CHAR.search(tb.buf, start, end)
    if m is not None:  # only surrogateescape puts surrogates in the text: a byte that is not UTF-8
        line = start_line + tb.buf.count("\n", start, m.start())
        return RecordError("invalid_utf8", f"{describe_invalid_char(m.group())} on line {line} is not UTF-8")
    need_text = _SURROGATE_ESCAPE.search(tb.buf, start, end) is not None
    deep = tb.buf.count("[", start, end) + tb.buf.count("{", start, end) > max_depth
    if need_text or deep:
        return check_obj(obj, max_depth, check_text=need_text)
    return None


_STRUCT = re.compile(r'["\[\]{},]')
_STR_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_OPENER = {"]": "[", "}": "{"}


class _ValueScan:
    """Finds where one JSON value ends from its brackets and strings alone, without decoding it.

    A value ends where its brackets close, or (a bare scalar) before the next ``,``/``]``/``}``.
    ``feed`` may be called again on a grown buffer: the state (open brackets, inside a string) carries over.
    """

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.in_str = False
        self.broken = False  # a bracket closed the wrong one: the value cannot be delimited

    def feed(self, buf: str, i: int) -> tuple[int | None, int]:
        """(end, i): ``end`` is the index just past the value, or None with ``i`` where to go on."""
        while True:
            if self.in_str:
                j = _STR_BODY.match(buf, i).end()  # type: ignore[union-attr]
                if j >= len(buf) or buf[j] != '"':
                    return None, j  # the string goes on (or a backslash waits for its partner)
                i, self.in_str = j + 1, False
                if not self.stack:
                    return i, i
                continue
            m = _STRUCT.search(buf, i)
            if m is None:
                return None, len(buf)
            c = m.group()
            if c == '"':
                self.in_str, i = True, m.end()
            elif c in "[{":
                self.stack.append(c)
                i = m.end()
            elif not self.stack:  # ',', ']' or '}' after a bare scalar
                return m.start(), m.start()
            elif c == ",":
                i = m.end()
            elif self.stack[-1] != _OPENER[c]:
                self.broken = True
                return None, i
            else:
                self.stack.pop()
                i = m.end()
                if not self.stack:
                    return i, i


def _value_end(tb: _TextBuffer) -> int | None:
    """Index just past the JSON value at ``tb.pos`` (reading more as needed; ``tb.pos`` stays at its
    start), or None at EOF, at a wrongly closed bracket, or past MAX_RECORD_CHARS."""
    scan = _ValueScan()
    i = tb.pos
    while True:
        end, i = scan.feed(tb.buf, i)
        if end is not None:
            return end
        rel = i - tb.pos
        if scan.broken or rel > MAX_RECORD_CHARS or not tb.fill():
            return None
        i = tb.pos + rel


def _drop_value(tb: _TextBuffer) -> bool:
    """Move past the JSON value at ``tb.pos`` dropping what it passes (a record too large to hold).
    False at EOF or at a wrongly closed bracket."""
    scan = _ValueScan()
    while True:
        end, i = scan.feed(tb.buf, tb.pos)
        if end is not None:
            tb.advance(end)
            return True
        tb.advance(i)
        if scan.broken or not tb.fill():
            return False


# Where the next element of a minified array may start: a closing bracket, a comma, an opening one.
_SIBLING = re.compile(r"[}\]][ \t\r]*,[ \t\r]*(?=[{\[])")
SIBLING_WINDOW_CHARS = 16 << 20
_SIBLING_TRIES = 1000


def _alike(obj: Any, like: Any) -> bool:
    if like is None:
        return isinstance(obj, (dict, list))
    if type(obj) is not type(like):
        return False
    return not isinstance(obj, dict) or next(iter(obj), None) == next(iter(like), None)


def _next_sibling(tb: _TextBuffer, like: Any) -> bool:
    """In a minified array, after an element whose brackets do not balance: move to the next element on
    the same line that decodes and looks like its siblings (same type; an object with the same first key).

    Looks at most SIBLING_WINDOW_CHARS ahead; False (``tb.pos`` unchanged) when there is none."""
    while (
        tb.buf.find("\n", tb.pos) == -1 and len(tb.buf) - tb.pos < SIBLING_WINDOW_CHARS and tb.fill()
    ):
        pass
    nl = tb.buf.find("\n", tb.pos)
    limit = nl if nl != -1 else len(tb.buf)
    i = tb.pos + 1
    for _ in range(_SIBLING_TRIES):
        m = _SIBLING.search(tb.buf, i, limit)
        if m is None:
            return False
        cand = i = m.end()
        try:
            obj, end = _DECODER.raw_decode(tb.buf, cand)
        except (ValueError, RecursionError):
            continue
        k = _WS_JSON.match(tb.buf, end).end()  # type: ignore[union-attr]
        if k < len(tb.buf) and tb.buf[k] in ",]" and _alike(obj, like):
            tb.advance(cand)
            return True
    return False


_LINE_HEAD = re.compile(r"[ \t\r,]*")


def _resync(tb: _TextBuffer, in_array: bool, indent: int | None) -> bool:
    """After a malformed record, move to the start of the next plausible record. False at EOF.

    Skipped text is dropped as it goes, so a long damaged line is never held whole.
    """
    while True:
        while True:  # to the start of the next line
            nl = tb.buf.find("\n", tb.pos)
            if nl != -1:
                tb.advance(nl + 1)
                break
            tb.advance(len(tb.buf))
            if not tb.fill():
                return False
        while True:  # enough of that line to see its first character
            k = _LINE_HEAD.match(tb.buf, tb.pos).end()  # type: ignore[union-attr]
            if k < len(tb.buf) or not tb.fill():
                break
        if k >= len(tb.buf):
            tb.advance(len(tb.buf))
            return False
        c = tb.buf[k]
        lead = k - tb.pos
        ws_lead = len(tb.buf[tb.pos : k]) - len(tb.buf[tb.pos : k].lstrip(" \t\r"))
        if not in_array and c == "{":
            tb.advance(k)
            return True
        if not in_array and ws_lead == 0 and c == "[":
            # a top-level array after junk (e.g. a merge-conflict marker line): read it as an array
            tb.advance(k)
            return True
        if in_array and c in "{[" and (indent is None or ws_lead <= indent):
            tb.advance(k)
            return True
        if in_array and c == "]" and (indent is None or lead <= max(indent - 1, 0)):
            tb.advance(k)
            return True


_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WS_JSON = re.compile(r"[ \t\n\r]*")


def _loads_deep(s: str, pos: int, end: int) -> tuple[Any, int]:
    """Decode one JSON value in ``s[pos:end]`` with an explicit stack, so any nesting depth works (the C
    decoders stop near 1,000 levels). Used only for records that are that deep (Open-Assistant trees).
    Strings go through the stdlib's ``scanstring``. Raises RecordError(json_decode)."""

    def fail(msg: str, at: int) -> RecordError:
        return RecordError("json_decode", f"{msg} at char {at - pos}")

    def ws(i: int) -> int:
        return _WS_JSON.match(s, i, end).end()  # type: ignore[union-attr]

    def key_at(i: int) -> tuple[str, int]:
        if i >= end or s[i] != '"':
            raise fail("expecting a property name in double quotes", i)
        try:
            k, i = scanstring(s, i + 1, True)
        except ValueError as e:
            raise fail(str(e), i) from None
        i = ws(i)
        if i >= end or s[i] != ":":
            raise fail("expecting ':'", i)
        return k, ws(i + 1)

    stack: list[tuple[Any, str | None]] = []
    i = ws(pos)
    while True:
        if i >= end:
            raise fail("unexpected end of the record", i)
        c = s[i]
        value: Any
        if c == "{":
            i = ws(i + 1)
            if i < end and s[i] == "}":
                value, i = {}, i + 1
            else:
                k, i = key_at(i)
                stack.append(({}, k))
                continue
        elif c == "[":
            i = ws(i + 1)
            if i < end and s[i] == "]":
                value, i = [], i + 1
            else:
                stack.append(([], None))
                continue
        elif c == '"':
            try:
                value, i = scanstring(s, i + 1, True)
            except ValueError as e:
                raise fail(str(e), i) from None
        elif s.startswith("true", i):
            value, i = True, i + 4
        elif s.startswith("false", i):
            value, i = False, i + 5
        elif s.startswith("null", i):
            value, i = None, i + 4
        else:
            m = _NUMBER.match(s, i, end)
            if m is None:
                const = next((x for x in _NON_JSON_CONSTANTS if s.startswith(x, i)), None)
                raise _constant_error(const) if const else fail("expecting a value", i)
            text = m.group()
            value = float(text) if any(ch in text for ch in ".eE") else int(text)
            i = m.end()
        while True:  # attach the finished value; close every container it completes
            if not stack:
                return value, i
            container, ckey = stack[-1]
            if ckey is not None:
                container[ckey] = value
            else:
                container.append(value)
            i = ws(i)
            close = "}" if ckey is not None else "]"
            if i < end and s[i] == ",":
                i = ws(i + 1)
                if ckey is not None:
                    nk, i = key_at(i)
                    stack[-1] = (container, nk)
                break
            if i < end and s[i] == close:
                i += 1
                value = container
                stack.pop()
                continue
            raise fail(f"expecting ',' or '{close}'", i)


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
