"""OpenAI chat format: ``{messages: [{role, content}]}`` as JSON or JSONL.

``content`` is a string or a list of parts, ``{type: text, text}`` (OpenAI) or
``{type: text, value}`` (LLaMA-Factory v1). Fine-tuning files add ``label`` (KTO) and per-message
``loss_weight``/``weight``; those are kept in meta.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from curate.ingest.base import Parsed, RecordError, RecordReader, require
from curate.steps.base import StepParams
from curate.steps.registry import register

ROLE_MAP: dict[str, str] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}

_MSG_KNOWN = frozenset({"role", "content"})
# Text parts are joined with a newline: OpenAI splits one message into parts at block boundaries.
PART_SEPARATOR = "\n"


@register("read.openai")
class OpenAIReader(RecordReader):
    """Read OpenAI-style ``messages`` lists; text parts are joined, other parts are refused.

    Roles user/assistant/system/tool map to themselves, ``developer`` -> system, ``function`` ->
    tool. An assistant message with null content and ``tool_calls`` (or ``function_call``) gets
    the calls as JSON content. Top-level extra fields go to meta; per-message extra fields
    (``loss_weight``, ``name``, ``tool_call_id``) go to meta ``turn_meta``, aligned with the turns.

    Reasons: unknown_role, unsupported_content (a non-text part), missing_field, wrong_type,
    empty_conversation, plus the container reasons
    json_decode, invalid_utf8, lone_surrogate, conflict_marker, too_deep, record_too_large, truncated,
    truncated_file, damaged_file.
    """

    format = "openai"

    class Params(StepParams):
        drop_non_text_parts: bool = Field(
            False,
            description=(
                "Drop non-text content parts (images, audio) and keep the text; "
                "otherwise such a record is quarantined as unsupported_content."
            ),
        )

    def parse(self, obj: Any) -> Parsed:
        messages = require(obj, "messages", list)
        turns: list[dict[str, Any]] = []
        turn_meta: list[dict[str, Any] | None] = []
        dropped = 0
        for i, msg in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(msg, dict):
                raise RecordError("wrong_type", f"{where} is {type(msg).__name__}, expected an object")
            role_raw = msg.get("role")
            role = ROLE_MAP.get(role_raw) if isinstance(role_raw, str) else None
            if role is None:
                if role_raw is None:
                    raise RecordError("missing_field", f"{where} has no 'role'")
                if not isinstance(role_raw, str):
                    raise RecordError(
                        "wrong_type", f"{where} 'role' is {type(role_raw).__name__}, expected str"
                    )
                raise RecordError("unknown_role", f"{where} has role={role_raw!r}; known: {sorted(ROLE_MAP)}")
            content, n_dropped = self._content(msg, where)
            dropped += n_dropped
            turns.append({"role": role, "content": content})
            extras = {k: v for k, v in msg.items() if k not in _MSG_KNOWN} if len(msg) > 2 else None
            turn_meta.append(extras or None)
        meta: dict[str, Any] = {k: v for k, v in obj.items() if k != "messages"}
        if any(m is not None for m in turn_meta):
            meta["turn_meta"] = turn_meta
        if dropped:
            meta["dropped_parts"] = dropped
        return Parsed(turns=turns, meta=meta or None)

    def _content(self, msg: dict[str, Any], where: str) -> tuple[str, int]:
        content = msg.get("content")
        if isinstance(content, str):
            return content, 0
        if content is None:
            calls = msg.get("tool_calls") or msg.get("function_call")
            if calls:
                return json.dumps(calls, ensure_ascii=False), 0
            raise RecordError("missing_field", f"{where} has no 'content'")
        if not isinstance(content, list):
            raise RecordError(
                "wrong_type", f"{where} content is {type(content).__name__}, expected str or list"
            )
        texts: list[str] = []
        dropped = 0
        for j, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
                continue
            if not isinstance(part, dict):
                raise RecordError(
                    "wrong_type", f"{where}.content[{j}] is {type(part).__name__}, expected an object"
                )
            ptype = part.get("type", "text")
            if ptype == "text":
                text = part.get("text", part.get("value"))
                if not isinstance(text, str):
                    raise RecordError(
                        "wrong_type", f"{where}.content[{j}] text part has no string 'text'/'value'"
                    )
                texts.append(text)
            elif self.params.drop_non_text_parts:
                dropped += 1
            else:
                raise RecordError(
                    "unsupported_content",
                    f"{where}.content[{j}] is a {ptype!r} part; "
                    "set drop_non_text_parts: true to keep the text only",
                )
        return PART_SEPARATOR.join(texts), dropped
