from __future__ import annotations

import pytest

from curate.steps.filter.failed_response import FailedResponseFilter

from ._real import alpaca_batch

LONG = "This answer has plenty of words so that the truncation rule is allowed to judge how it ends"


def reasons(f, batch):
    return f.reject_reason(f.measure(batch)).to_list()


def test_failed_response_reasons(batch_of):
    f = FailedResponseFilter.from_params()
    batch = batch_of(
        "user: hi",
        "user: hi || assistant:    ",
        "user: hi || assistant: ok || user: more? || assistant: ",
        "user: run it || assistant: Error: the model is overloaded",
        "user: run it || assistant: Traceback (most recent call last):\n  File x",
        "user: q || assistant: " + LONG + " and then the",
        "user: q || assistant: Here is the code:\n```python\nprint(1)",
        "user: q || assistant: " + LONG + ".",
        "user: q || assistant: Paris",
    )
    assert reasons(f, batch) == [
        "no_response",
        "empty_response",
        "empty_response",
        "error_response",
        "error_response",
        "truncated_response",
        "truncated_response",
        None,
        None,
    ]
    m = f.measure(batch)
    assert m["filter.failed_response.assistant_turns"].to_list() == [0, 1, 2, 1, 1, 1, 1, 1, 1]
    assert m["filter.failed_response.last_words"].to_list()[-1] == 1


def test_failed_response_complete_endings_are_kept(batch_of):
    f = FailedResponseFilter.from_params()
    endings = [
        "\n```python\nprint('hi')\n```",  # a closing code fence
        "\n- and the last item of the list",  # a list item
        "\n3. the third step of the plan",  # a numbered item
        " see https://example.org/docs/page",  # a URL
        " and that is all 🎉",  # an emoji
        " #happy #friday",  # hashtags
        '\n"Be yourself; everyone else is already taken." - Oscar Wilde',  # attribution
        " the boiling point is 100 °C",  # number with unit
        "\nBest regards,\nJohn Smith, Customer Support Team Lead",  # signature
        " (see the manual)",  # closing bracket
        " as described in the example above; that is it;",
    ]
    batch = batch_of(*("user: q || assistant: " + LONG + e for e in endings))
    assert reasons(f, batch) == [None] * len(endings)


def test_failed_response_colon_ending_is_truncated(batch_of):
    f = FailedResponseFilter.from_params()
    batch = batch_of("user: q || assistant: " + LONG + ". Here are the steps to follow:")
    assert reasons(f, batch) == ["truncated_response"]


def test_failed_response_error_mid_answer_is_kept(batch_of):
    f = FailedResponseFilter.from_params()
    batch = batch_of(
        "user: why? || assistant: Your script printed\nTraceback (most recent call last):\n  File a.py\n"
        "because the file is missing. Create it first."
    )
    assert reasons(f, batch) == [None]


def test_failed_response_params(batch_of):
    batch = batch_of("user: only a prompt", "user: q || assistant: QuotaExhausted: try later")
    f = FailedResponseFilter.from_params(allow_prompt_only=True, extra_error_patterns=[r"quotaexhausted"])
    assert reasons(f, batch) == [None, "error_response"]
    f2 = FailedResponseFilter.from_params(min_words_to_judge=3)
    assert reasons(f2, batch_of("user: q || assistant: one two three four five six and")) == [
        "truncated_response"
    ]
    with pytest.raises(ValueError):
        FailedResponseFilter.from_params(extra_error_patterns=["(?<=x)y"])  # look-behind: not in polars


def test_failed_response_hostile(batch_of):
    f = FailedResponseFilter.from_params()
    batch = batch_of(
        "user: q || assistant: " + "word " * 200_000 + "end.",
        "user: q || assistant: \u200b\u200b",
        "user: q || assistant: \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd.",
        "user: q || assistant: \x00\x01 control.",
    )
    # Zero-width characters are not whitespace: normalise first (clean.normalize) to catch them.
    assert reasons(f, batch) == [None, None, None, None]


def test_failed_response_real_alpaca(shared_data):
    f = FailedResponseFilter.from_params()
    # 5 of the 1000 records: real cut-offs found in this file by reading them ("... model involves").
    batch = alpaca_batch(shared_data, "lm-sys__FastChat__data__alpaca_data_cleaned_1000")
    got = f.reject_reason(f.measure(batch))
    assert got.value_counts().sort("reason").to_dicts() == [
        {"reason": None, "count": 995},
        {"reason": "truncated_response", "count": 5},
    ]
    cut = batch.filter(got == "truncated_response")["turns"].to_list()
    assert any(t[1]["content"].endswith("deploying a machine learning model involves") for t in cut)
