"""The records a reader passes around: raw records, parsed conversations, quarantine entries, errors.

Shared by every ingest module (``base``, ``files``, ``jsonio``); nothing here reads files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from curate.schema import escape_invalid_text

SNIPPET_CHARS = 300


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
