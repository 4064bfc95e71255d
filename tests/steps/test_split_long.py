from __future__ import annotations

import pytest

from curate.errors import MissingResourceError
from curate.schema import content_hash
from curate.steps.clean.split_long import SplitLongClean, part_id, split_turns


def roles(turns):
    return [t["role"] for t in turns]


def test_split_long_pieces_ids_and_parent(batch_of):
    t = SplitLongClean.from_params(max_tokens=6)
    batch = batch_of(
        "system: be nice || user: a b || assistant: c d || user: e f || assistant: g h "
        "|| user: i || assistant: j k l m n o p q",
        "user: short || assistant: ok",
    )
    out = t.apply(batch)
    pid = batch["id"][0]
    assert out["id"].to_list() == [part_id(pid, 0), part_id(pid, 1), part_id(pid, 2), batch["id"][1]]
    assert len(part_id(pid, 0)) == 16
    assert out["clean.split_long.parent_id"].to_list() == [pid, pid, pid, None]
    assert out["clean.split_long.part"].to_list() == [0, 1, 2, None]
    pieces = out["turns"].to_list()
    assert [roles(p) for p in pieces[:3]] == [["system", "user", "assistant"]] * 3
    assert [p[1]["content"] for p in pieces[:3]] == ["a b", "e f", "i"]
    # The over-long last exchange (10 tokens + 2 system) stays whole in its own piece.
    assert pieces[2][2]["content"] == "j k l m n o p q"
    assert out["content_hash"].to_list() == [content_hash(p) for p in pieces]
    assert t.report_extra == {"split_records": 1, "split_added_rows": 2}


def test_split_turns_keeps_every_turn():
    turns = [{"role": r, "content": "x"} for r in ["assistant", "user", "assistant", "tool", "user"]]
    pieces = split_turns(turns, [3, 3, 3, 3, 3], max_tokens=4)
    assert [roles(p) for p in pieces] == [["assistant"], ["user", "assistant", "tool"], ["user"]]
    assert sum(len(p) for p in pieces) == len(turns)
    assert split_turns(turns, [1] * 5, max_tokens=100) == [turns]


def test_split_long_unsplit_batch_and_hostile(batch_of):
    t = SplitLongClean.from_params(max_tokens=5)
    batch = batch_of(
        "user: " + "w " * 100_000 + "|| assistant: done",
        "user: ",
        "user: a || assistant: b",
    )
    out = t.apply(batch)
    # One exchange over budget: nothing to split, the row stays as it is.
    assert out["id"].to_list() == batch["id"].to_list()
    assert out["clean.split_long.parent_id"].to_list() == [None, None, None]
    assert t.apply(batch.head(0)).height == 0


def test_split_long_missing_tokenizer_is_a_clear_error(batch_of, tmp_path):
    t = SplitLongClean.from_params(max_tokens=5, tokenizer=str(tmp_path / "no-such-tokenizer"))
    with pytest.raises(MissingResourceError, match="no-such-tokenizer"):
        t.apply(batch_of("user: a b c d e f || assistant: g"))


def test_split_long_with_local_tokenizer(batch_of, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.save_pretrained(tmp_path / "tok")
    t = SplitLongClean.from_params(max_tokens=4, tokenizer=str(tmp_path / "tok"))
    # "a,a" is 3 tokens for the tokenizer (a , a) but one whitespace token.
    out = t.apply(batch_of("user: a,a || assistant: a || user: a || assistant: a,a"))
    assert [roles(p) for p in out["turns"].to_list()] == [["user", "assistant"], ["user", "assistant"]]
