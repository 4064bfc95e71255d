from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from curate.errors import MissingResourceError
from curate.train.data import (
    IGNORE,
    Conversation,
    DatasetError,
    collate,
    encode,
    load_split,
    pack_units,
    render,
)
from curate.train.templates import default_template, resolve_template

from ._data import FACTS, MULTI, qa, write_export


@pytest.fixture(scope="module")
def tok(tiny_model: Path) -> Any:
    from curate.train.trainer import load_tokenizer

    return load_tokenizer(str(tiny_model))


def supervised_spans(ex: Any, tok: Any) -> list[str]:
    return [tok.decode(ex.input_ids[a:b]) for a, b in ex.spans]


def runs_of_labels(ex: Any) -> list[tuple[int, int]]:
    runs, k = [], 0
    while k < len(ex.labels):
        if ex.labels[k] != IGNORE:
            j = k
            while j < len(ex.labels) and ex.labels[j] != IGNORE:
                j += 1
            runs.append((k, j))
            k = j
        else:
            k += 1
    return runs


@pytest.mark.parametrize("name", ["chatml", "alpaca", "vicuna"])
def test_labels_cover_exactly_the_assistant_tokens_in_every_turn(tok: Any, name: str) -> None:
    enc = encode([Conversation("m", MULTI)], tok, default_template(name, tok), max_seq_len=512)
    assert not enc.problems
    (ex,) = enc.examples
    answers = [t["content"] for t in MULTI if t["role"] == "assistant"]
    # vicuna puts the space after "ASSISTANT:" inside the answer, as FastChat does
    assert [s.lstrip() if name == "vicuna" else s for s in supervised_spans(ex, tok)] == [a + "</s>" for a in answers]
    assert runs_of_labels(ex) == ex.spans  # nothing else is supervised
    assert all(ex.labels[k] == ex.input_ids[k] for a, b in ex.spans for k in range(a, b))


def test_mask_agrees_with_transformers_generation_markers(tok: Any) -> None:
    template = default_template("chatml", tok)
    out = tok.apply_chat_template(
        MULTI, chat_template=template, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    (ex,) = encode([Conversation("m", MULTI)], tok, template, max_seq_len=512).examples
    assert list(out["input_ids"]) == ex.input_ids
    assert list(out["assistant_masks"]) == [int(x != IGNORE) for x in ex.labels]


def test_model_own_template_is_used_when_present(tok: Any) -> None:
    own = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    tok2 = type(tok).from_pretrained(tok.name_or_path)
    tok2.chat_template = own
    assert resolve_template("auto", "chatml", tok2) == (own, "model")
    assert resolve_template("auto", "chatml", tok)[1] == "chatml"
    assert resolve_template("alpaca", "chatml", tok2)[1] == "alpaca"


def test_drop_turns_keeps_whole_leading_turns(tok: Any) -> None:
    template = default_template("chatml", tok)
    full = encode([Conversation("m", MULTI)], tok, template, max_seq_len=512).examples[0]
    first_end = full.spans[0][1]
    enc = encode([Conversation("m", MULTI)], tok, template, max_seq_len=first_end + 3, over_length="drop_turns")
    (ex,) = enc.examples
    assert ex.truncated and len(ex.spans) == 1 and ex.n_turns_kept == 3
    assert supervised_spans(ex, tok) == ["Hi! How can I help?</s>"]
    dropped = encode([Conversation("m", MULTI)], tok, template, max_seq_len=first_end + 3, over_length="drop")
    assert not dropped.examples and dropped.dropped == {"too_long": 1}


def test_render_is_prefix_by_prefix(tok: Any) -> None:
    r = render(tok, default_template("chatml", tok), MULTI)
    assert [r.text[a:b] for a, b in r.spans] == ["Hi! How can I help?</s>", "Green is a colour.</s>"]
    assert r.span_turns == [2, 5] and r.turn_ends[-1] == len(r.text)


def test_packed_rows_do_not_attend_across_conversations(tiny_model: Path, tok: Any) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), attn_implementation="sdpa").eval()
    exs = encode([Conversation(str(i), qa(q, a)) for i, (q, a) in enumerate(FACTS[:3])], tok,
                 default_template("chatml", tok), max_seq_len=512).examples
    rows = pack_units([len(e.input_ids) for e in exs], [0, 1, 2], 512, packing=True)
    assert rows == [[0, 1, 2]]
    packed = collate([[exs[i] for i in rows[0]]], tok.pad_token_id, packing=True)
    assert "attention_mask" not in packed
    with torch.no_grad():
        # as in training: without a KV cache transformers derives the block-diagonal mask from position ids
        logits = model(**{k: v for k, v in packed.items() if k != "labels"}, use_cache=False).logits[0]
        start = 0
        for ex in exs:
            alone = model(input_ids=torch.tensor([ex.input_ids])).logits[0]
            n = len(ex.input_ids)
            torch.testing.assert_close(logits[start : start + n], alone, atol=1e-4, rtol=1e-4)
            start += n


def test_missing_folder_split_and_incomplete_shards_are_clear(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError, match="curate export"):
        load_split(tmp_path / "nope", "train")
    root = write_export(tmp_path / "e", {"train": [qa("q", "a")] * 3}, shards=3)
    assert len(load_split(root, "train")) == 3
    with pytest.raises(MissingResourceError, match="no 'validation' split.*splits present: train"):
        load_split(root, "validation")
    (root / "data" / "train-00001-of-00003.parquet").unlink()
    with pytest.raises(DatasetError, match="incomplete shard set"):
        load_split(root, "train")


def test_unknown_role_in_export_names_the_row(tmp_path: Path) -> None:
    root = write_export(tmp_path / "e", {"train": [[{"role": "narrator", "content": "x"}]]})
    with pytest.raises(DatasetError, match="row 0 .*unknown_role"):
        load_split(root, "train")
