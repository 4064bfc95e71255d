from __future__ import annotations

import polars as pl
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
    # The 1000 records end in 21 unpunctuated answers; reading them, two are cut mid-sentence
    # ("... model involves", "... reminded him why he"), one mid-list ("..., intermediate", missed: an
    # adjective can end a sentence), and the rest are complete (lists, signatures, hashtags, sentences).
    batch = alpaca_batch(shared_data, "lm-sys__FastChat__data__alpaca_data_cleaned_1000")
    got = f.reject_reason(f.measure(batch))
    assert got.value_counts().sort("reason").to_dicts() == [
        {"reason": None, "count": 998},
        {"reason": "truncated_response", "count": 2},
    ]
    cut = batch.filter(got == "truncated_response")["turns"].to_list()
    assert any(t[1]["content"].endswith("deploying a machine learning model involves") for t in cut)


def test_cut_kind_on_real_endings():
    from curate.steps.filter.failed_response import cut_kind

    body = "Organic food is grown without synthetic pesticides and it is kinder to the soil. "
    cut = {
        body + "So next time, consider reaching for the organic section – your body": "fragment",
        body + "Once you have an account set up, you can choose a coin. While Bitcoin": "fragment",
        body + "Its memory serves as a reminder of the importance of": "open_word",
        body + "The ideal readings for a saltwater aquarium are:": "open_punct",
        body + "We need eggs, flour,": "open_punct",
        "Here is the table:\n```\n2x1=2 | 3x1=3\n2x2=4 | 3x2=6": "open_fence",
    }
    complete = [
        body + "Both systems have their strengths and weaknesses",  # a sentence without its full stop
        body + "\n\n- 1919 Treaty of Versailles\n- 1939 Germany invades Poland",  # a list
        body + "\n\nAnswered by: The Gastrograph Team",  # a signature
        body + "See https://example.org/organic",
        body + "An in the end, you don't get to know what it tastes like. :'(",  # an emoticon
        body + "\n* Windows and Linux: Ctrl + Shift + I",  # a key combination
        "Roses are red,\nviolets are blue,\nsugar is sweet,\nand so are you,",  # verse
        body + "Hope this helps",
        "64",
    ]
    assert {t: cut_kind(t) for t in cut} == cut
    assert [cut_kind(t) for t in complete] == [None] * len(complete)


def test_failed_response_judges_the_final_turn_and_flags_earlier_cuts(batch_of):
    f = FailedResponseFilter.from_params()
    cut = LONG + " and then the"
    batch = batch_of(
        f"user: a || assistant: {cut} || user: continue || assistant: rest of the answer.",
        f"user: a || assistant: {LONG}. || user: go on please || assistant: More of it.",
        f"user: a || assistant: {LONG}. || user: b || assistant: {cut}",
    )
    m = f.measure(batch)
    assert f.reject_reason(m).to_list() == [None, None, "truncated_response"]
    assert f.flag_reason(m).to_list() == ["truncated_earlier_turn", "truncated_earlier_turn", None]
    strict = FailedResponseFilter.from_params(remove_flags=["truncated_earlier_turn"])
    assert reasons(strict, batch)[:2] == ["truncated_earlier_turn", "truncated_earlier_turn"]


def test_failed_response_token_limit_from_meta(batch_of):
    f = FailedResponseFilter.from_params()
    batch = batch_of("user: a || assistant: A complete looking answer.", "user: a || assistant: Fine.")
    batch = batch.with_columns(pl.Series("meta", ['{"finish_reason": "length"}', '{"finish_reason": "stop"}']))
    m = f.measure(batch)
    assert f.reject_reason(m).to_list() == ["truncated_response", None]
    assert m["filter.failed_response.cut"].to_list() == ["token_limit", None]


def test_a_stray_closing_fence_is_not_a_cut():
    from curate.steps.filter.failed_response import cut_kind

    prose = "This code shows how the chatbot manages the conversation flow and answers the user."
    # a closed block, then prose, then a stray fence: complete
    assert cut_kind("Here:\n```scala\nval x = 1\n```\n" + prose + "\n```") is None
    # a fence that opens a block and stops: cut
    assert cut_kind(prose + "\n```scala\nval x = 1\nval y =") == "open_fence"
    assert cut_kind(prose + " Here is the code:\n```python") == "open_fence"
