"""Files of a source: paths and globs, (compressed) streams with their damage reported, encodings.

A compressed file that is cut short or corrupt is read up to the damage; the stream then ends and
:func:`damage_of` says where and why, so a reader yields the records before it plus one quarantine
entry (``truncated_file`` / ``damaged_file``). A file whose name says compressed but whose data is not
raises InputError naming it. UTF-16/UTF-32 text is refused with a message naming the encoding.
"""

from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import io
import logging
import lzma
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.ingest.records import InputError, RecordError
from curate.schema import escape_invalid_text

log = logging.getLogger(__name__)

LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"


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
    if rest[-1] == "**":  # as in glob.glob: a trailing ** matches the files at every level too
        rest = (*rest, "*")
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
        if "with a byte-order mark" in enc:
            name = name[:-2]  # iconv's UTF-16/UTF-32 read the mark and drop it
        shown = display_path(path)
        raise InputError(
            f"{shown}: the file is {enc} text; curate reads UTF-8. Convert it first, e.g. "
            f"`iconv -f {name} -t UTF-8 {shown} > {shown}.utf8`"
        )
