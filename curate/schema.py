"""The conversation schema: the one source of truth for the columns every step sees.

``schemas/conversation.schema.json`` is generated from this module (``python -m curate.schema``);
a test fails if the two drift.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import polars as pl

ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
TURN = pl.Struct({"role": pl.Utf8, "content": pl.Utf8})
PROVENANCE = pl.Struct({"file": pl.Utf8, "record": pl.Int64})
CONVERSATION: dict[str, pl.DataType] = {
    "id": pl.Utf8(),  # stable: hash of (source, content, occurrence); see conversation_id
    "source": pl.Utf8(),  # source id from the recipe, e.g. "oig", "stackoverflow", "p3"
    "subset": pl.Utf8(),  # e.g. P3 template name, OIG file, SE site; null when none
    "turns": pl.List(TURN),
    "meta": pl.Utf8(),  # original extra fields as JSON; steps never edit it
    "provenance": PROVENANCE,
    "content_hash": pl.Utf8(),  # hash of the normalised turns, for exact dedup
}
COLUMNS: tuple[str, ...] = tuple(CONVERSATION)

# Rows a step marks with a non-null value here are moved to quarantine by the runner.
ERROR_COLUMN = "_error"

_WS = re.compile(r"\s+")


class SchemaError(ValueError):
    """A batch or record does not follow the conversation schema."""


def normalize_for_hash(text: str) -> str:
    """Lowercase and collapse whitespace: two texts that differ only in case or spacing hash alike."""
    # str.split() splits on exactly the characters `\s` matches (str.isspace), so this equals
    # `_WS.sub(" ", text).strip().lower()` and runs about 3x faster (the ingest hot path).
    return " ".join(text.split()).lower()


def content_hash(turns: Sequence[Mapping[str, Any]]) -> str:
    """Hash of the normalised role-tagged turns (hex, 16 bytes)."""
    # One join and one encode per conversation (same bytes as hashing each piece in turn). A very
    # long content is normalised piece by piece instead: str.split() on 200 MB of text would build
    # tens of millions of word objects at once.
    h = hashlib.blake2b(digest_size=16)
    parts: list[str] = []
    for t in turns:
        content = t["content"] or ""
        if len(content) <= _HASH_PIECE_CHARS:
            parts += (t["role"], "\x1f", " ".join(content.split()).lower(), "\x1e")
            continue
        parts += (t["role"], "\x1f")
        h.update("".join(parts).encode("utf-8", "surrogatepass"))
        parts = []
        sep = ""
        for piece in _whitespace_pieces(content):
            norm = " ".join(piece.split()).lower()
            if norm:
                h.update((sep + norm).encode("utf-8", "surrogatepass"))
                sep = " "
        parts.append("\x1e")
    h.update("".join(parts).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


_HASH_PIECE_CHARS = 1 << 20


def _whitespace_pieces(text: str) -> Iterator[str]:
    """Consecutive slices of ``text`` of about _HASH_PIECE_CHARS, each cut at a whitespace character.

    No word spans two pieces, so normalising the pieces and joining them with one space equals
    normalising the whole text (lowercasing too: its only context rule, final sigma, stops at whitespace).
    """
    start = 0
    while start < len(text):
        m = _WS.search(text, start + _HASH_PIECE_CHARS)
        end = len(text) if m is None else m.start()
        yield text[start:end]
        start = end


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def conversation_id(source: str, content_hash: str, occurrence: int) -> str:
    """Stable id of one ingested conversation: its source, its content and its occurrence number.

    Why content and not location: an id must survive what users do to files. The same file given
    as ``data/x.json`` or ``/abs/data/x.json``, moved, renamed, recompressed or re-ingested next
    month gives the same ids, so labels made in the browser keep applying. ``content_hash`` is
    :func:`content_hash` of the normalised turns; ``occurrence`` counts earlier conversations of the
    same source with the same content hash, in reading order (0 for the first), so exact
    duplicates still get distinct ids and dedup can remove one of them. What changes an id: a
    change of the turns (an edited record, or reader params that change the turns, e.g.
    ``preference``), the source id, or adding/removing an identical copy earlier in the source.
    Where a record came from stays in ``provenance`` (file, record number), which is not hashed.
    Derived conversations (``clean.split_long``) derive their ids from this one.
    """
    key = f"{source}\x1f{content_hash}\x1f{occurrence}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def record_id(source: str, file: str, record: int, part: int | None = None) -> str:
    """Location id (source, file as written, record number): for records that no reader ingests,
    such as the gold set. Ingested conversations use :func:`conversation_id`, which survives moves."""
    key = f"{source}\x1f{file}\x1f{record}"
    if part is not None:
        key += f"\x1f{part}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


# A str that cannot be written as UTF-8 holds a surrogate code point: a lone half of a UTF-16 pair
# (a JSON escape such as "\ud83d" without its partner) or a byte that was not UTF-8, kept by the
# surrogateescape error handler (U+DC80..U+DCFF).
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = range(0xDC80, 0xDD00)


def invalid_text_at(text: str, start: int = 0, end: int | None = None) -> int:
    """Index of the first code point that UTF-8 cannot encode (a surrogate) in ``text[start:end]``, or -1."""
    if text.isascii():
        return -1
    m = _SURROGATE.search(text, start, len(text) if end is None else end)
    return -1 if m is None else m.start()


def describe_invalid_char(ch: str) -> str:
    """``U+D83D`` for a lone surrogate; ``byte 0xff`` for an undecodable byte kept by surrogateescape."""
    cp = ord(ch)
    return f"byte 0x{cp - 0xDC00:02x}" if cp in _ESCAPED_BYTE else f"U+{cp:04X}"


def escape_invalid_text(text: str) -> str:
    """The text with every surrogate written out (``\\xff`` for an undecodable byte, ``\\ud83d`` for a
    lone surrogate), so it can always be written as UTF-8 (quarantine entries, file names)."""
    if invalid_text_at(text) < 0:
        return text

    def esc(m: re.Match[str]) -> str:
        cp = ord(m.group())
        return f"\\x{cp - 0xDC00:02x}" if cp in _ESCAPED_BYTE else f"\\u{cp:04x}"

    return _SURROGATE.sub(esc, text)


def validate_turns(turns: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Check roles and content types; return clean ``[{role, content}]``. Raises SchemaError."""
    if not turns:
        raise SchemaError("empty_conversation: no turns")
    out = []
    for i, t in enumerate(turns):
        role = t.get("role")
        content = t.get("content")
        if role not in ROLES:
            raise SchemaError(f"unknown_role: turn {i} has role {role!r}; expected one of {ROLES}")
        if not isinstance(content, str):
            raise SchemaError(f"wrong_type: turn {i} content is {type(content).__name__}, expected str")
        out.append({"role": role, "content": content})
    return out


def empty_batch() -> pl.DataFrame:
    return pl.DataFrame(schema=CONVERSATION)


# Same output as json.dumps(meta, ensure_ascii=False, default=str), without its per-call setup.
_META_JSON = json.JSONEncoder(ensure_ascii=False, default=str).encode


def make_batch(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Build a schema-conformant batch from row dicts with at least id/source/turns/provenance.

    ``content_hash`` is computed when absent; ``meta`` dicts are serialised to JSON. The nested
    ``turns`` column is assembled as flat Arrow arrays plus offsets: letting polars infer it
    from Python dicts costs about 60 us per row, most of the ingest time.
    """
    import pyarrow as pa  # polars' own dependency; imported here to keep `import curate` light

    ids: list[Any] = []
    sources: list[Any] = []
    subsets: list[Any] = []
    metas: list[Any] = []
    hashes: list[Any] = []
    prov_file: list[Any] = []
    prov_record: list[Any] = []
    roles: list[Any] = []
    contents: list[Any] = []
    offsets: list[int] = [0]
    turns_valid: list[bool] = []
    prov_mask: list[bool] = []
    for r in rows:
        turns = r["turns"]
        meta = r.get("meta")
        if meta is not None and not isinstance(meta, str):
            meta = _META_JSON(meta)
        ids.append(r["id"])
        sources.append(r["source"])
        subsets.append(r.get("subset"))
        metas.append(meta)
        prov = r["provenance"]
        prov_mask.append(prov is None)
        prov_file.append(None if prov is None else prov["file"])
        prov_record.append(None if prov is None else prov["record"])
        hashes.append(r.get("content_hash") or content_hash(turns))
        if turns is None:
            turns_valid.append(False)
        else:
            turns_valid.append(True)
            for t in turns:
                roles.append(t["role"])
                contents.append(t["content"])
        offsets.append(len(roles))
    turn_structs = pa.StructArray.from_arrays(
        [pa.array(roles, pa.large_string()), pa.array(contents, pa.large_string())], names=["role", "content"]
    )
    mask = None if all(turns_valid) else pa.array([not v for v in turns_valid], pa.bool_())
    turns_arr = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), turn_structs, mask=mask)
    prov_arr = pa.StructArray.from_arrays(
        [pa.array(prov_file, pa.large_string()), pa.array(prov_record, pa.int64())],
        names=["file", "record"],
        mask=pa.array(prov_mask, pa.bool_()) if any(prov_mask) else None,
    )
    cols = {
        "id": pl.Series("id", ids, dtype=pl.Utf8),
        "source": pl.Series("source", sources, dtype=pl.Utf8),
        "subset": pl.Series("subset", subsets, dtype=pl.Utf8),
        "turns": pl.Series("turns", turns_arr).cast(CONVERSATION["turns"]),
        "meta": pl.Series("meta", metas, dtype=pl.Utf8),
        "provenance": pl.Series("provenance", prov_arr).cast(PROVENANCE),
        "content_hash": pl.Series("content_hash", hashes, dtype=pl.Utf8),
    }
    return pl.DataFrame(cols)


def conform(batch: pl.DataFrame) -> pl.DataFrame:
    """Cast the schema columns of ``batch`` to their declared types, keeping extra (score) columns."""
    missing = [c for c in COLUMNS if c not in batch.columns]
    if missing:
        raise SchemaError(f"batch is missing schema columns {missing}")
    return batch.with_columns(*(pl.col(c).cast(t) for c, t in CONVERSATION.items()))


def turns_of(row: Mapping[str, Any]) -> list[dict[str, str]]:
    return list(row["turns"] or [])


def first_user_text(turns: Sequence[Mapping[str, Any]]) -> str:
    for t in turns:
        if t["role"] == "user":
            return t["content"] or ""
    return ""


def render_text(turns: Sequence[Mapping[str, Any]]) -> str:
    """Plain rendering ``role: content`` used for logs, hashing scopes and `curate inspect`."""
    return "\n".join(f"{t['role']}: {t['content']}" for t in turns)


# Polars expressions over the turns column, shared by steps so each is written once.
def turn_texts(role: str | None = None) -> pl.Expr:
    """List of contents, optionally only of one role."""
    turns = pl.col("turns")
    if role is not None:
        turns = turns.list.eval(pl.element().filter(pl.element().struct.field("role") == role))
    return turns.list.eval(pl.element().struct.field("content"))


def first_user_expr() -> pl.Expr:
    return turn_texts("user").list.first().fill_null("")


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one conversation record, generated from CONVERSATION."""

    def of(dtype: pl.DataType) -> dict[str, Any]:
        if isinstance(dtype, pl.List):
            return {"type": "array", "items": of(cast(pl.DataType, dtype.inner))}
        if isinstance(dtype, pl.Struct):
            props = {f.name: of(cast(pl.DataType, f.dtype)) for f in dtype.fields}
            if dtype == TURN:
                props["role"] = {"type": "string", "enum": list(ROLES)}
            return {
                "type": "object",
                "properties": props,
                "required": list(props),
                "additionalProperties": False,
            }
        if dtype == pl.Int64:
            return {"type": "integer"}
        return {"type": "string"}

    nullable = {"subset", "meta"}
    props: dict[str, Any] = {}
    for name, dtype in CONVERSATION.items():
        s = of(dtype)
        if name in nullable:
            s = {"anyOf": [s, {"type": "null"}]}
        props[name] = s
    props["turns"]["minItems"] = 1
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://curate.dev/schemas/conversation.schema.json",
        "title": "curate conversation",
        "description": "One conversation record as every curate step sees it (generated from curate/schema.py).",
        "type": "object",
        "properties": props,
        "required": list(CONVERSATION),
        "additionalProperties": True,
    }


def validate_record(rec: Mapping[str, Any]) -> None:
    """Check one exported/ingested record against the schema (types, roles, non-empty turns)."""
    for name in ("id", "source"):
        if not isinstance(rec.get(name), str) or not rec[name]:
            raise SchemaError(f"{name} must be a non-empty string, got {rec.get(name)!r}")
    validate_turns(rec.get("turns") or [])
    prov = rec.get("provenance")
    if not isinstance(prov, Mapping) or not isinstance(prov.get("file"), str):
        raise SchemaError(f"provenance must be {{file, record}}, got {prov!r}")


if __name__ == "__main__":  # pragma: no cover - used by `make schema`
    print(json.dumps(json_schema(), indent=2))
