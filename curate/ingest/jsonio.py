"""Streaming JSON records: JSONL, JSON arrays (minified or pretty), single objects, concatenated values.

Every failure is one RawRecord with ``error`` set and a stable reason, never an exception and never a
lost neighbour: malformed JSON (``json_decode``, also for NaN/Infinity), bytes that are not UTF-8
(``invalid_utf8``), a lone ``\\ud83d`` escape (``lone_surrogate``), merge-conflict markers
(``conflict_marker``), nesting past the reader's ``max_depth`` (``too_deep``), a record over
MAX_RECORD_CHARS (``record_too_large``, skipped without being held), a file that ends inside a record
(``truncated``) or a damaged compressed stream (``truncated_file`` / ``damaged_file``). After a bad
element a minified array goes on at the next element (found by its brackets); a pretty-printed file
goes on at the next line that starts a record.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C string scanner json itself uses
from typing import Any

from curate.ingest.files import check_head, damage_of, display_path, head_bytes, open_binary
from curate.ingest.records import SNIPPET_CHARS, InputError, RawRecord, RecordError, snippet
from curate.schema import describe_invalid_char, invalid_text_at

try:  # orjson is several times faster on JSONL; json is the fallback
    import orjson

    _loads: Callable[[bytes | str], Any] = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    _loads = json.loads
    _JSONError = (ValueError,)

CONFLICT_PREFIXES = ("<<<<<<< ", "=======", ">>>>>>> ")
CHUNK_CHARS = 1 << 20
# One record larger than this (chars; bytes for a JSONL line) is quarantined record_too_large and
# skipped without being held whole.
MAX_RECORD_CHARS = 256 << 20
# Records of every supported format nest a few levels (the deepest, Alpaca history or OpenAI content
# parts, about 5); 100 leaves room for rich meta and keeps every later JSON step far from Python's
# recursion limit. Open-Assistant trees nest two levels per reply and set their own limit.
MAX_JSON_DEPTH = 100


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


@dataclass
class LineWindow:
    """The lines of a JSONL file from byte ``start`` (after ``first_line`` lines) to byte ``stop`` (None: the
    end), which the Ray ingest reads as one shard; ``used`` is set when the JSONL reader honoured it."""

    start: int
    first_line: int
    stop: int | None
    used: bool = False


# The window the next JSONL file opened in this process reads (set and cleared by the Ray ingest around
# the first record it asks a reader for; a task reads one shard at a time).
_window: LineWindow | None = None


def set_line_window(window: LineWindow | None) -> None:
    global _window
    _window = window


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
    window = _window
    with open_binary(path) as fh:
        lineno = 0
        if window is not None:  # one shard of the file: seek to its first line, stop at its last
            window.used = True
            fh.seek(window.start)
            lineno = window.first_line
        while True:
            if window is not None and window.stop is not None and fh.tell() >= window.stop:
                return
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

    def fill(self, n: int | None = None) -> bool:
        """Read about ``n`` more chars (default CHUNK_CHARS); False at end of data."""
        if self.eof:
            return False
        n = CHUNK_CHARS if n is None else n
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
    bad = invalid_text_at(tb.buf, start, end)
    if bad >= 0:  # only surrogateescape puts surrogates in the text: a byte that is not UTF-8
        line = start_line + tb.buf.count("\n", start, bad)
        return RecordError("invalid_utf8", f"{describe_invalid_char(tb.buf[bad])} on line {line} is not UTF-8")
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
