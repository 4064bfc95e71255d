from __future__ import annotations

import polars as pl

from curate.schema import ERROR_COLUMN, content_hash
from curate.steps.clean.normalize import NormalizeClean, normalize_whitespace_fenced

from ._real import alpaca_batch


def contents(batch: pl.DataFrame) -> list[list[str]]:
    return [[t["content"] for t in turns] for turns in batch["turns"].to_list()]


def test_normalize_whitespace_controls_zero_width_nfc(batch_of):
    t = NormalizeClean.from_params()
    batch = batch_of(
        "user:   hi \t there  \r\n\r\n\r\n\r\nyou\u200b\ufeff || assistant: e\u0301t\u00e9\x07 ok\x00\u00a0!",
        "user: line1\n\n\n\nline2\n    indented  code-ish",
    )
    out = t.apply(batch)
    assert contents(out) == [
        ["hi there\n\nyou", "\u00e9t\u00e9 ok !"],
        ["line1\n\nline2\n    indented code-ish"],
    ]
    assert out["content_hash"].to_list() == [content_hash(x) for x in out["turns"].to_list()]
    assert t.report_extra["normalize_changed_turns"] == 3


def test_normalize_keeps_fenced_code_exact(batch_of):
    code = "```python\ndef f():\n    return  1   \n\n\n\n    x  = 2\n```"
    batch = batch_of("assistant: Here  it is:\n\n\n\n" + code + "\n\n\n\nDone.  ")
    out = NormalizeClean.from_params().apply(batch)
    assert contents(out) == [["Here it is:\n\n" + code + "\n\nDone."]]


def test_normalize_fenced_helper_counts_newlines_at_fence_boundary():
    assert normalize_whitespace_fenced("a\n\n\n\n```\nx  \n```\n\n\n\nb", 1) == "a\n\n```\nx  \n```\n\nb"
    assert normalize_whitespace_fenced("```\nx\n```", 1) == "```\nx\n```"


def test_normalize_repairs_mojibake_only_where_broken(batch_of):
    t = NormalizeClean.from_params()
    batch = batch_of(
        "user: The Mona Lisa doesnâ€™t have eyebrows. cafÃ©",
        "user: Ð¿Ñ€Ð¸Ð²ÐµÑ‚",
        # Normal text with curly quotes, ligatures, full-width CJK punctuation and Portuguese Ã.
        "user: “quotes” ﬁne ，全角。 São Paulo, IRMÃOS, &amp; <b>",
    )
    out = t.apply(batch)
    assert contents(out) == [
        ["The Mona Lisa doesn’t have eyebrows. café"],
        ["привет"],
        ["“quotes” ﬁne ，全角。 São Paulo, IRMÃOS, &amp; <b>"],
    ]
    assert t.report_extra["mojibake_fixed_turns"] == 2


def test_normalize_switches_off_each_part(batch_of):
    t = NormalizeClean.from_params(
        unicode_nfc=False, whitespace=False, control_chars=False, zero_width=False, fix_mojibake=False
    )
    raw = "  a  b\u200b\x07 e\u0301 cafÃ©\n\n\n\n"
    out = t.apply(batch_of("user: " + raw))
    assert contents(out) == [[raw]]
    assert out["content_hash"].to_list() == batch_of("user: " + raw)["content_hash"].to_list()


def test_normalize_hostile_inputs(batch_of):
    big = ("word   " * 150_000) + "\x00"
    batch = batch_of(
        "user: ",
        "user:  \t \n ",
        "user: \u202eRTL \u05e9\u05dc\u05d5\u05dd 👨\u200d👩\u200d👧 \u200c",
        "user: " + big,
    )
    out = NormalizeClean.from_params().apply(batch)
    got = contents(out)
    assert got[0] == [""] and got[1] == [""]
    # ZWJ (emoji family) and ZWNJ are kept; the bidi override is a format char, not removed.
    assert got[2] == ["\u202eRTL \u05e9\u05dc\u05d5\u05dd 👨\u200d👩\u200d👧 \u200c"]
    assert got[3] == [("word " * 150_000).strip()]
    assert ERROR_COLUMN not in out.columns


def test_normalize_empty_batch_and_empty_turn_list(batch_of):
    batch = batch_of("user: a  b")
    empty_turns = batch.with_columns(pl.lit([], dtype=batch["turns"].dtype).alias("turns"))
    out = NormalizeClean.from_params().apply(pl.concat([batch, empty_turns]))
    assert contents(out) == [["a b"], []]
    assert NormalizeClean.from_params().apply(batch.head(0)).height == 0


def test_normalize_real_alpaca_is_idempotent(shared_data):
    batch = alpaca_batch(shared_data, "lm-sys__FastChat__data__alpaca_data_cleaned_1000", list(range(200)))
    t = NormalizeClean.from_params()
    once = t.apply(batch)
    twice = t.apply(once)
    assert contents(once) == contents(twice)
    # Normalising real, clean text changes little: only whitespace at the ends of turns.
    changed = sum(a != b for a, b in zip(contents(batch), contents(once)))
    assert changed < 40
