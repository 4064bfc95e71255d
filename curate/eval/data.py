"""Eval sets: conversations from an exported dataset folder (one split) or a JSONL file.

A JSONL eval set has one conversation per line, ``{"messages": [{"role", "content"}, ...]}`` (what
``curate export --format openai`` writes) or ``{"turns": [...]}`` (the conversation schema), with an
optional ``"id"``. A bad line stops the eval and names its line: an eval set is small and hand-picked,
so a silently skipped record would change the figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError, MissingResourceError
from curate.schema import SchemaError, validate_turns
from curate.train.data import Conversation, DatasetError, load_split


@dataclass
class EvalSet:
    path: str
    split: str | None  # the export's split, or None for a JSONL file
    convs: list[Conversation]

    @property
    def label(self) -> str:
        return f"{self.path} ({self.split} split)" if self.split else self.path


def load_eval_set(path: str | Path, split: str = "validation", limit: int | None = None) -> EvalSet:
    """Conversations of an export folder's ``split``, or of a JSONL file. Raises a CurateError."""
    p = Path(path)
    if p.is_dir():
        return EvalSet(str(p), split, load_split(p, split, limit=limit))
    if not p.is_file():
        raise MissingResourceError(f"eval set {p}: not found (give an exported dataset folder or a .jsonl file)")
    return EvalSet(str(p), None, read_jsonl(p, limit))


def read_jsonl(path: Path, limit: int | None = None) -> list[Conversation]:
    convs: list[Conversation] = []
    try:
        fh = path.open(encoding="utf-8")
    except OSError as e:
        raise MissingResourceError(f"eval set {path}: cannot open ({e.strerror})") from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj: Any = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DatasetError(f"{path} line {n}: not valid JSON ({e})") from None
            turns = obj.get("messages", obj.get("turns")) if isinstance(obj, dict) else None
            if not isinstance(turns, list):
                raise DatasetError(f"{path} line {n}: expected an object with a 'messages' (or 'turns') list")
            try:
                clean = validate_turns(turns)
            except SchemaError as e:
                raise DatasetError(f"{path} line {n}: {e}") from None
            convs.append(Conversation(str(obj.get("id", f"line-{n}")), clean))
            if limit is not None and len(convs) >= limit:
                break
    if not convs:
        raise DatasetError(f"eval set {path}: no conversations in it")
    return convs


@dataclass
class Prompt:
    id: str
    turns: list[dict[str, str]]  # ends with a user turn: what the models answer

    @property
    def question(self) -> str:
        """The prompt as the judge reads it: the user's text, or a short transcript for several turns."""
        if len(self.turns) == 1:
            return self.turns[0]["content"]
        names = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
        return "\n\n".join(f"{names.get(t['role'], t['role'])}: {t['content']}" for t in self.turns)


def prompts_from(convs: list[Conversation], limit: int | None = None) -> tuple[list[Prompt], int]:
    """Each conversation up to its last user turn (the reference answer and what follows are dropped).

    Returns the prompts and the number of conversations that had no user turn to answer.
    """
    out: list[Prompt] = []
    skipped = 0
    for c in convs:
        last_user = max((i for i, t in enumerate(c.turns) if t["role"] == "user"), default=None)
        if last_user is None:
            skipped += 1
            continue
        out.append(Prompt(c.id, [dict(t) for t in c.turns[: last_user + 1]]))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ConfigError("the prompt set has no conversation with a user turn to answer")
    return out, skipped
