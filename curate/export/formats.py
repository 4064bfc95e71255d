"""Trainer formats: conversations -> ShareGPT, Alpaca, OpenAI messages or chat-templated text.

Each converter is a pure function of one conversation's turns that returns the record, or raises
:class:`Inexpressible` with a stable reason when the format cannot hold the conversation (the
export counts those by reason and lists them in ``skipped.jsonl``, never drops them silently).

Conventions (chosen so that LLaMA-Factory, FastChat and TRL read the files as they are):

* ShareGPT: ``{id, conversations: [{from, value}]}`` with ``from`` in human/gpt/system/observation.
  Our ``tool`` turns are tool *results*, which LLaMA-Factory calls ``observation``; a tool *call*
  is assistant text in our schema, so it stays ``gpt`` (``function_call`` is never written).
  A system turn stays in place in the list (LLaMA-Factory takes a leading one as the system prompt).
* Alpaca: ``{instruction, input: "", output, system?, history?}``; earlier exchanges go to
  LLaMA-Factory's ``history: [[user, assistant], ...]``. The whole user turn is the instruction.
* OpenAI: ``{messages: [{role, content}]}``, roles as in our schema (TRL's conversational form).
* Text: one ``{"text": ...}`` per conversation with a chat template (alpaca, vicuna, chatml).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

SHAREGPT_FROM: dict[str, str] = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}
TEMPLATES: tuple[str, ...] = ("alpaca", "vicuna", "chatml")
FORMATS: tuple[str, ...] = ("hub", "sharegpt", "alpaca", "openai", "text")
AlpacaMultiturn = Literal["history", "skip"]

# Stanford Alpaca's prompt (no-input variant), as LLaMA-Factory's `alpaca` template uses it.
ALPACA_DEFAULT_SYSTEM = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
# FastChat's vicuna_v1.1 system message, used when the conversation has none (as FastChat does).
VICUNA_DEFAULT_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# Reasons a conversation cannot be written in a format; stable, shown in the report and the card.
REASONS: dict[str, str] = {
    "tool_turn": "has a tool turn, which the format cannot hold",
    "ends_with_user": "ends with a user turn (no answer to train on)",
    "not_alternating": "user and assistant turns do not alternate",
    "system_not_first": "has a system turn after the first turn",
    "multi_turn": "has more than one exchange (--alpaca-multiturn skip)",
}


class Inexpressible(ValueError):
    """The conversation cannot be written in the target format; ``reason`` is a key of REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}: {REASONS[reason]}")
        self.reason = reason


Turns = Sequence[Mapping[str, Any]]


def to_openai(turns: Turns) -> dict[str, Any]:
    return {"messages": [{"role": t["role"], "content": t["content"]} for t in turns]}


def to_sharegpt(record_id: str, turns: Turns) -> dict[str, Any]:
    return {"id": record_id, "conversations": [{"from": SHAREGPT_FROM[t["role"]], "value": t["content"]} for t in turns]}


def exchanges(turns: Turns) -> tuple[str | None, list[tuple[str, str]]]:
    """An optional leading system prompt and the (user, assistant) pairs; raises Inexpressible.

    This is the shape every pair-based format needs (Alpaca, the alpaca and vicuna templates).
    """
    system: str | None = None
    rest = list(turns)
    if rest and rest[0]["role"] == "system":
        system = rest[0]["content"]
        rest = rest[1:]
    roles = [t["role"] for t in rest]
    if "tool" in roles:
        raise Inexpressible("tool_turn")
    if "system" in roles:
        raise Inexpressible("system_not_first")
    if roles and roles[-1] == "user" and all(r == ("user", "assistant")[i % 2] for i, r in enumerate(roles)):
        raise Inexpressible("ends_with_user")
    if not roles or len(roles) % 2 or any(r != ("user", "assistant")[i % 2] for i, r in enumerate(roles)):
        raise Inexpressible("not_alternating")
    pairs = [(rest[i]["content"], rest[i + 1]["content"]) for i in range(0, len(rest), 2)]
    return system, pairs


def to_alpaca(record_id: str, turns: Turns, multiturn: AlpacaMultiturn = "history") -> dict[str, Any]:
    """One Alpaca record; earlier exchanges in ``history`` (or Inexpressible("multi_turn") with skip)."""
    system, pairs = exchanges(turns)
    if len(pairs) > 1 and multiturn == "skip":
        raise Inexpressible("multi_turn")
    instruction, output = pairs[-1]
    rec: dict[str, Any] = {"id": record_id, "instruction": instruction, "input": "", "output": output}
    if system is not None:
        rec["system"] = system
    if len(pairs) > 1:
        rec["history"] = [[u, a] for u, a in pairs[:-1]]
    return rec


def render_chatml(turns: Turns) -> str:
    """ChatML as Qwen/OpenAI write it; it holds every role, tool turns included."""
    return "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)


def render_vicuna(turns: Turns) -> str:
    """FastChat vicuna_v1.1: ``SYSTEM USER: u ASSISTANT: a</s>USER: ...``."""
    system, pairs = exchanges(turns)
    out = (system if system is not None else VICUNA_DEFAULT_SYSTEM) + " "
    return out + "".join(f"USER: {u} ASSISTANT: {a}</s>" for u, a in pairs)


def render_alpaca(turns: Turns) -> str:
    """Alpaca prompt; later exchanges repeat the Instruction/Response blocks (LLaMA-Factory's way)."""
    system, pairs = exchanges(turns)
    blocks = [system if system is not None else ALPACA_DEFAULT_SYSTEM]
    blocks += [f"### Instruction:\n{u}\n\n### Response:\n{a}" for u, a in pairs]
    return "\n\n".join(blocks)


RENDERERS = {"alpaca": render_alpaca, "vicuna": render_vicuna, "chatml": render_chatml}


def to_text(turns: Turns, template: str) -> dict[str, Any]:
    return {"text": RENDERERS[template](turns)}


def convert(
    fmt: str, record_id: str, turns: Turns, template: str | None = None, multiturn: AlpacaMultiturn = "history"
) -> dict[str, Any]:
    """The record for ``fmt`` (a trainer format); raises Inexpressible."""
    if fmt == "sharegpt":
        return to_sharegpt(record_id, turns)
    if fmt == "alpaca":
        return to_alpaca(record_id, turns, multiturn)
    if fmt == "openai":
        return to_openai(turns)
    if fmt == "text":
        if template not in RENDERERS:
            raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
        return to_text(turns, template)
    raise ValueError(f"unknown trainer format {fmt!r}; expected one of {FORMATS[1:]}")


def file_name(fmt: str, split: str) -> str:
    """ShareGPT and Alpaca are JSON arrays (what FastChat and Stanford Alpaca read); the rest JSONL."""
    return f"{split}.json" if fmt in ("sharegpt", "alpaca") else f"{split}.jsonl"


def llamafactory_info(fmt: str, name: str, splits: Sequence[str]) -> dict[str, Any]:
    """``dataset_info.json`` entries so LLaMA-Factory can use the folder as ``dataset_dir``."""
    out: dict[str, Any] = {}
    for split in splits:
        key = f"{name}_{split}"
        if fmt == "sharegpt":
            out[key] = {
                "file_name": file_name(fmt, split),
                "formatting": "sharegpt",
                "columns": {"messages": "conversations"},
                "tags": {
                    "role_tag": "from",
                    "content_tag": "value",
                    "user_tag": "human",
                    "assistant_tag": "gpt",
                    "observation_tag": "observation",
                    "function_tag": "function_call",
                    "system_tag": "system",
                },
            }
        elif fmt == "alpaca":
            out[key] = {
                "file_name": file_name(fmt, split),
                "columns": {
                    "prompt": "instruction",
                    "query": "input",
                    "response": "output",
                    "system": "system",
                    "history": "history",
                },
            }
    return out
