"""ShareGPT / Vicuna conversations: ``{id, conversations: [{from, value}]}`` (list, object or JSONL).

Covers the LLaMA-Factory variants: a top-level ``system`` prompt, a ``tools`` JSON string, the
function_call/observation roles of tool-use data, and ``chosen``/``rejected`` preference pairs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from curate.ingest.alpaca import system_turns
from curate.ingest.base import Parsed, RecordError, RecordReader, require
from curate.steps.base import StepParams
from curate.steps.registry import register

# Speaker names seen in ShareGPT exports, compared case-insensitively ("Human", "GPT", "ChatGPT" and
# "Bing" occur in scraped dumps); a source's `role_map` param adds to or overrides these.
ROLE_MAP: dict[str, str] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "tool",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}

_KNOWN = frozenset({"id", "conversations", "system", "chosen", "rejected"})


def role_key(speaker: str) -> str:
    """How speaker names are compared: case and surrounding spaces do not matter."""
    return speaker.strip().casefold()


def sharegpt_turn(msg: Any, where: str, roles: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``{from, value}`` message as a schema turn; unknown roles are errors, never passed on.

    ``roles`` maps :func:`role_key` of a speaker to a role (default: ROLE_MAP)."""
    roles = ROLE_MAP if roles is None else roles
    if not isinstance(msg, dict):
        raise RecordError("wrong_type", f"{where} is {type(msg).__name__}, expected an object")
    speaker = msg.get("from")
    role = roles.get(role_key(speaker)) if isinstance(speaker, str) else None
    if role is None:
        if speaker is None:
            raise RecordError("missing_field", f"{where} has no 'from'")
        if not isinstance(speaker, str):
            raise RecordError("wrong_type", f"{where} 'from' is {type(speaker).__name__}, expected str")
        raise RecordError(
            "unknown_role",
            f"{where} has from={speaker!r}; known (any case): {sorted(roles)}; add it with the `role_map` param",
        )
    value = msg.get("value")
    if not isinstance(value, str):
        if value is None:
            raise RecordError("missing_field", f"{where} has no 'value'")
        raise RecordError("wrong_type", f"{where} value is {type(value).__name__}, expected str")
    return {"role": role, "content": value}


@register("read.sharegpt")
class ShareGPTReader(RecordReader):
    """Read ShareGPT ``conversations`` lists into turns with an explicit role map.

    human/user -> user; gpt/chatgpt/bard/bing/assistant/model -> assistant; system -> system;
    function_call/observation/tool/function -> tool, in any case (``Human``, ``GPT``); ``role_map``
    adds or overrides speaker names. A top-level ``system`` becomes a leading
    system turn; the original ``id`` is kept in meta as ``orig_id`` (the schema id is always
    derived), ``tools`` and other extra keys go to meta, and HTML is kept as it is. Preference
    records (``chosen``/``rejected``) follow ``preference``.

    Reasons: unknown_role, missing_field, wrong_type, empty_conversation, plus the container reasons
    json_decode, invalid_utf8, lone_surrogate, conflict_marker, too_deep, record_too_large, truncated,
    truncated_file, damaged_file.
    """

    format = "sharegpt"

    class Params(StepParams):
        preference: Literal["chosen", "rejected", "skip"] = Field(
            "chosen",
            description=(
                "For records with `chosen`/`rejected` answers: `chosen` appends the chosen answer as the "
                "final turn and keeps the rejected one in meta; `rejected` does the reverse; `skip` "
                "ingests the prompt turns only and keeps both answers in meta."
            ),
        )
        role_map: dict[str, Literal["system", "user", "assistant", "tool"]] = Field(
            default_factory=dict,
            description=(
                "Extra speaker names (`from` values) and their roles, merged over the default map; names "
                "are compared case-insensitively, e.g. {narrator: system, Claude: assistant}."
            ),
        )

        @field_validator("role_map")
        @classmethod
        def _names_distinct(cls, v: dict[str, str]) -> dict[str, str]:
            keys: dict[str, str] = {}
            for name, role in v.items():
                if not name.strip():
                    raise ValueError("speaker names must be non-blank")
                k = role_key(name)
                if k in keys and v[keys[k]] != role:
                    raise ValueError(f"{keys[k]!r} and {name!r} are the same name (case is ignored) with different roles")
                keys[k] = name
            return v

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._roles = {role_key(k): v for k, v in ROLE_MAP.items()}
        self._roles.update({role_key(k): v for k, v in self.params.role_map.items()})
        self._exact = self._roles | dict(self.params.role_map)  # names as written: the fast path

    def parse(self, obj: Any) -> Parsed:
        convs = require(obj, "conversations", list)
        turns = system_turns(obj) if "system" in obj else []
        role: str | None
        value: Any
        for i, msg in enumerate(convs):
            try:  # fast path for well-formed messages; anything odd gets the checked path
                role = self._exact[msg["from"]]
                value = msg["value"]
            except (KeyError, TypeError):
                role = value = None
            if role is None or type(value) is not str:
                turns.append(sharegpt_turn(msg, f"conversations[{i}]", self._roles))
            else:
                turns.append({"role": role, "content": value})
        meta: dict[str, Any] = {k: v for k, v in obj.items() if k not in _KNOWN}
        if obj.get("id") is not None:
            meta["orig_id"] = obj["id"]
        if "chosen" in obj or "rejected" in obj:
            self._apply_preference(obj, turns, meta)
        return Parsed(turns=turns, meta=meta or None)

    def _apply_preference(
        self, obj: dict[str, Any], turns: list[dict[str, Any]], meta: dict[str, Any]
    ) -> None:
        pick = self.params.preference
        for key in ("chosen", "rejected"):
            if key == pick:
                answer = obj.get(key)
                if answer is None:
                    raise RecordError("missing_field", f"no {key!r} answer (preference: {pick})")
                if isinstance(answer, str):  # some exports store the bare answer text
                    turns.append({"role": "assistant", "content": answer})
                else:
                    turns.append(sharegpt_turn(answer, key, self._roles))
            elif key in obj:
                meta[key] = obj[key]
