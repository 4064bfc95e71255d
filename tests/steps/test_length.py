from __future__ import annotations

from curate.steps.filter.length import LengthFilter


def test_length_filter_reasons(batch_of):
    f = LengthFilter.from_params(min_chars=5, max_chars=40, max_turns=4, max_turn_chars=25)
    batch = batch_of(
        "user: hi",
        "user: hello there || assistant: fine thanks",
        "user: " + "x" * 45 + " || assistant: y",
        "user: a || assistant: b || user: c || assistant: d || user: e",
        "user: hello there friend",
        "user: q || assistant: " + "z" * 30,
    )
    assert f.reject_reason(f.measure(batch)).to_list() == [
        "too_short",
        None,
        "too_long",
        "too_many_turns",
        "response_too_short",
        "turn_too_long",
    ]
    m = f.measure(batch)
    assert m["filter.length.chars"].to_list()[1] == 22
    assert m["filter.length.tokens"].to_list()[1] == 4
    assert m["filter.length.turns"].to_list() == [1, 2, 2, 5, 1, 2]
    assert m["filter.length.response_chars"].to_list()[:2] == [0, 11]
    assert m["filter.length.max_turn_chars"].to_list()[2] == 45


def test_length_tokens_and_turns(batch_of):
    f = LengthFilter.from_params(min_chars=0, min_tokens=3, max_tokens=6, min_turns=2, min_response_chars=0)
    batch = batch_of("user: one two three", "user: a b || assistant: c", "user: a b c || assistant: d e f g")
    assert f.reject_reason(f.measure(batch)).to_list() == ["too_few_turns", None, "too_long"]
    f2 = LengthFilter.from_params(min_chars=0, min_tokens=4, min_response_chars=0)
    assert f2.reject_reason(f2.measure(batch_of("user: a b || assistant: c"))).to_list() == ["too_short"]


def test_length_hostile(batch_of):
    f = LengthFilter.from_params()
    batch = batch_of(
        "user:  \n\t  || assistant:    ",
        "user: " + "x" * 1_000_000 + " || assistant: ok",
        "user: 👨\u200d👩\u200d👧 שלום \u200b || assistant: 你好，世界！这是一个测试。",
    )
    m = f.measure(batch)
    assert m["filter.length.tokens"].to_list() == [0, 2, 4]
    # no minimum by default: a whitespace-only answer is filter.failed_response's empty_response
    assert f.reject_reason(m).to_list() == [None, "too_long", None]
    strict = LengthFilter.from_params(min_chars=20)
    assert strict.reject_reason(strict.measure(batch)).to_list() == ["too_short", "too_long", None]


def test_length_default_keeps_a_correct_short_answer(batch_of):
    f = LengthFilter.from_params()
    assert f.reject_reason(f.measure(batch_of("user: Solve 8 x 8. || assistant: 64"))).to_list() == [None]
