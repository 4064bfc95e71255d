from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from curate.train.check import CheckError, run_check
from curate.train.data import Conversation, encode
from curate.train.templates import default_template

from ._data import MULTI, qa


@pytest.fixture(scope="module")
def tok(tiny_model: Path) -> Any:
    from curate.train.trainer import load_tokenizer

    return load_tokenizer(str(tiny_model))


def check(convs: list[Conversation], tok: Any, template: str, max_len: int = 512, over: str = "drop_turns") -> str:
    enc = encode(convs, tok, template, max_len, over, keep_rendered=2)
    return run_check(enc, convs, tok, "test", max_dropped_frac=0.05, show=2)


def test_good_data_renders_with_supervised_spans_marked(tok: Any) -> None:
    report = check([Conversation("m", MULTI)], tok, default_template("chatml", tok))
    assert "[[Hi! How can I help?</s>]]" in report and "[[Green is a colour.</s>]]" in report
    assert "<|im_start|>user\nTell me a colour.<|im_end|>" in report  # the user turn is not marked


def test_template_that_drops_assistant_turns_fails(tok: Any) -> None:
    drops = (
        "{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['role'] }}: {{ m['content'] }}\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )
    with pytest.raises(CheckError) as e:
        check([Conversation("a", qa("hi", "hello"))], tok, drops)
    assert "conversation a: template does not match" in str(e.value)
    assert "--check failed: 1 problem" in str(e.value)
    assert "--set model.chat_template=chatml" in str(e.value)


def test_empty_split_fails(tok: Any) -> None:
    with pytest.raises(CheckError, match="train: the split is empty"):
        check([], tok, default_template("chatml", tok))


def test_template_that_drops_a_role_or_rewrites_history_fails(tok: Any) -> None:
    no_tool = (
        "{% for m in messages %}{% if m['role'] != 'tool' %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    with pytest.raises(CheckError, match="drops the tool turn's content"):
        check([Conversation("t", MULTI)], tok, no_tool)
    # the last message is rendered differently from earlier ones: not prefix-consistent
    last_special = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% if loop.last %}!{% endif %}</s>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    with pytest.raises(CheckError, match="not prefix-consistent"):
        check([Conversation("p", MULTI)], tok, last_special)


def test_no_supervised_tokens_fails(tok: Any) -> None:
    with pytest.raises(CheckError, match="conversation u: no supervised tokens"):
        check([Conversation("u", [{"role": "user", "content": "only a question"}])], tok, default_template("chatml", tok))


def test_truncation_cutting_an_assistant_turn_fails(tok: Any) -> None:
    template = default_template("chatml", tok)
    ex = encode([Conversation("m", MULTI)], tok, template, 512).examples[0]
    cut_inside_second = ex.spans[1][0] + 2
    with pytest.raises(CheckError, match=r"conversation m: assistant turn 5 is cut by truncation"):
        check([Conversation("m", MULTI)], tok, template, max_len=cut_inside_second, over="fail")
    # the default drops the cut turn instead and says so
    report = check([Conversation("m", MULTI)], tok, template, max_len=cut_inside_second)
    assert "1 truncated at a turn boundary" in report and "Green" not in report.split("---", 1)[1]


def test_too_many_dropped_conversations_fail(tok: Any) -> None:
    convs = [Conversation(str(i), qa("question " * 40, "answer")) for i in range(3)]
    with pytest.raises(CheckError, match="3 of 3 conversations dropped"):
        check(convs, tok, default_template("chatml", tok), max_len=20)
