from __future__ import annotations

import pytest

from curate.export import formats
from curate.export.formats import Inexpressible, convert, to_alpaca, to_sharegpt


def T(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


MULTI = T(("system", "Be brief."), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"))
TOOL = T(("user", "weather?"), ("assistant", "call()"), ("tool", "21C"), ("assistant", "21 degrees"))


def test_sharegpt_roles_follow_llamafactory_tags() -> None:
    out = to_sharegpt("x1", MULTI + TOOL[1:])
    assert out["id"] == "x1"
    assert [m["from"] for m in out["conversations"]] == ["system", "human", "gpt", "human", "gpt", "gpt", "observation", "gpt"]
    assert out["conversations"][6]["value"] == "21C"


def test_alpaca_single_multi_and_skip() -> None:
    assert to_alpaca("a", T(("user", "Q"), ("assistant", "A"))) == {"id": "a", "instruction": "Q", "input": "", "output": "A"}
    multi = to_alpaca("m", MULTI)
    assert multi == {"id": "m", "instruction": "Q2", "input": "", "output": "A2", "system": "Be brief.", "history": [["Q1", "A1"]]}
    with pytest.raises(Inexpressible) as e:
        to_alpaca("m", MULTI, multiturn="skip")
    assert e.value.reason == "multi_turn"


@pytest.mark.parametrize(
    ("turns", "reason"),
    [
        (TOOL, "tool_turn"),
        (T(("user", "Q"), ("assistant", "A"), ("user", "Q2")), "ends_with_user"),
        (T(("user", "Q")), "ends_with_user"),
        (T(("assistant", "A"), ("user", "Q")), "not_alternating"),
        (T(("user", "Q"), ("user", "Q again"), ("assistant", "A")), "not_alternating"),
        (T(("user", "Q"), ("system", "late"), ("assistant", "A")), "system_not_first"),
    ],
)
def test_inexpressible_reasons(turns: list[dict[str, str]], reason: str) -> None:
    for fmt, template in (("alpaca", None), ("text", "alpaca"), ("text", "vicuna")):
        with pytest.raises(Inexpressible) as e:
            convert(fmt, "id", turns, template)
        assert e.value.reason == reason
    assert convert("text", "id", turns, "chatml")["text"].count("<|im_start|>") == len(turns)  # chatml holds all
    assert len(convert("openai", "id", turns)["messages"]) == len(turns)


def test_text_templates_render_exactly() -> None:
    one = T(("user", "Hi?"), ("assistant", "Hello."))
    assert convert("text", "i", one, "chatml")["text"] == (
        "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
    )
    assert convert("text", "i", MULTI, "vicuna")["text"] == "Be brief. USER: Q1 ASSISTANT: A1</s>USER: Q2 ASSISTANT: A2</s>"
    assert convert("text", "i", one, "vicuna")["text"].startswith(formats.VICUNA_DEFAULT_SYSTEM + " USER: Hi?")
    assert convert("text", "i", one, "alpaca")["text"] == (
        formats.ALPACA_DEFAULT_SYSTEM + "\n\n### Instruction:\nHi?\n\n### Response:\nHello."
    )
    assert convert("text", "i", MULTI, "alpaca")["text"] == (
        "Be brief.\n\n### Instruction:\nQ1\n\n### Response:\nA1\n\n### Instruction:\nQ2\n\n### Response:\nA2"
    )


def test_unknown_format_or_template_raise() -> None:
    with pytest.raises(ValueError, match="unknown template"):
        convert("text", "i", MULTI, "llama9")
    with pytest.raises(ValueError, match="unknown trainer format"):
        convert("csv", "i", MULTI)
