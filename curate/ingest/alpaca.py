"""Alpaca instruction data: ``{instruction, input, output}`` records (JSON array or JSONL).

Also reads the LLaMA-Factory extensions (``history`` pairs, ``system``) and the Self-Instruct
seed format (``{instruction, instances: [{input, output}]}``, one conversation per instance).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curate.ingest.base import Parsed, RecordError, RecordReader, require
from curate.steps.base import StepParams
from curate.steps.registry import register

# Inputs that mean "no input" in Alpaca-style data (the Stanford seed tasks write "<noinput>",
# later derivatives "N/A", "none" or the empty string); compared after strip + casefold.
PLACEHOLDER_INPUTS = frozenset({"", "<noinput>", "noinput", "<no input>", "no input", "n/a", "none"})

_KNOWN = frozenset({"instruction", "input", "output", "history", "system"})
_SEED_KNOWN = frozenset({"instruction", "instances", "system", "history"})
_INSTANCE_KNOWN = frozenset({"input", "output"})


def optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    """A field that may be absent or null; present values must be strings."""
    val = obj.get(key)
    if val is None or isinstance(val, str):
        return val
    raise RecordError("wrong_type", f"{key!r} is {type(val).__name__}, expected str")


def is_placeholder(text: str | None) -> bool:
    return text is None or text.strip().casefold() in PLACEHOLDER_INPUTS


def join_prompt(instruction: str, extra: str | None) -> str:
    """Instruction plus its input/context, separated by a blank line; placeholders mean no input."""
    if is_placeholder(extra):
        return instruction
    return f"{instruction}\n\n{extra}"


def prompt_text(obj: Mapping[str, Any], key: str = "instruction") -> str:
    """The required instruction string; an empty one cannot make a training conversation."""
    text: str = require(obj, key)
    if not text.strip():
        raise RecordError("empty_prompt", f"{key!r} is empty")
    return text


def history_turns(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``history: [[user, assistant], ...]`` (earlier exchanges) as turns."""
    hist = obj.get("history")
    if hist is None:
        return []
    if not isinstance(hist, list):
        raise RecordError("wrong_type", f"'history' is {type(hist).__name__}, expected a list of pairs")
    turns: list[dict[str, Any]] = []
    for i, pair in enumerate(hist):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RecordError("wrong_type", f"history[{i}] is not a [user, assistant] pair: {str(pair)[:80]}")
        user, assistant = pair
        if not isinstance(user, str) or not isinstance(assistant, str):
            raise RecordError(
                "wrong_type",
                f"history[{i}] holds {type(user).__name__}/{type(assistant).__name__}, expected str",
            )
        turns.append({"role": "user", "content": user})
        turns.append({"role": "assistant", "content": assistant})
    return turns


def system_turns(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    system = optional_str(obj, "system")
    return [{"role": "system", "content": system}] if system and system.strip() else []


@register("read.alpaca")
class AlpacaReader(RecordReader):
    """Read Alpaca ``{instruction, input, output}`` records into user/assistant conversations.

    The user turn is the instruction, plus a blank line and the input unless the input is a
    placeholder (``<noinput>``, ``N/A``, ``none``, empty). ``history`` pairs become earlier turns,
    ``system`` a leading system turn; other keys go to meta. Self-Instruct seed records
    (``instances``) give one conversation per instance. Empty outputs are kept (a later filter
    removes failed responses).

    Reasons: empty_prompt, missing_field, wrong_type, no_turns (an empty ``instances`` list),
    plus the container reasons
    json_decode, invalid_utf8, lone_surrogate, conflict_marker, too_deep, record_too_large, truncated,
    truncated_file, damaged_file.
    """

    format = "alpaca"

    class Params(StepParams):
        pass

    def parse(self, obj: Any) -> Parsed | list[Parsed]:
        if isinstance(obj, dict) and "instances" in obj and "output" not in obj:
            return self._parse_seed(obj)
        instruction = prompt_text(obj)
        extra = optional_str(obj, "input")
        output = require(obj, "output")
        turns = system_turns(obj) + history_turns(obj) if ("system" in obj or "history" in obj) else []
        turns.append({"role": "user", "content": join_prompt(instruction, extra)})
        turns.append({"role": "assistant", "content": output})
        meta = {k: v for k, v in obj.items() if k not in _KNOWN}
        if extra and is_placeholder(extra):
            meta["input"] = extra  # the dropped placeholder, kept so nothing is lost
        return Parsed(turns=turns, meta=meta or None)

    def _parse_seed(self, obj: dict[str, Any]) -> list[Parsed]:
        instruction = prompt_text(obj)
        instances = require(obj, "instances", list)
        lead = system_turns(obj) + history_turns(obj)
        base_meta = {k: v for k, v in obj.items() if k not in _SEED_KNOWN}
        out = []
        for i, inst in enumerate(instances):
            if not isinstance(inst, dict):
                raise RecordError(
                    "wrong_type", f"instances[{i}] is {type(inst).__name__}, expected an object"
                )
            extra = optional_str(inst, "input")
            output = require(inst, "output")
            meta = dict(base_meta)
            meta.update({k: v for k, v in inst.items() if k not in _INSTANCE_KNOWN})
            if extra and is_placeholder(extra):
                meta["input"] = extra
            turns = [*lead, {"role": "user", "content": join_prompt(instruction, extra)}]
            turns.append({"role": "assistant", "content": output})
            out.append(Parsed(turns=turns, meta=meta or None, part=i))
        return out
