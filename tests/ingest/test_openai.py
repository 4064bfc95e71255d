"""OpenAIReader: string and part-list content, role map, meta, and the real OpenAI-style files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curate.ingest.base import InputError
from curate.ingest.openai import OpenAIReader

from ._helpers import convs, expected_ids, metas, read_all

FIXTURE = Path(__file__).parents[1] / "fixtures" / "openai" / "tiny.jsonl"


def test_fixture_turns_meta_and_quarantine():
    df, quarantined, _ = read_all(OpenAIReader.from_params(), [FIXTURE])
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 3, 7]
    assert df["id"].to_list() == expected_ids(df)
    calls = [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]
    assert convs(df) == [
        [("system", "You are helpful."), ("user", "Hi"), ("assistant", "Hello!")],
        [("system", "Answer in French."), ("user", "Say\nhello"), ("assistant", "Bonjour")],
        [("user", "Empty answer?"), ("assistant", "")],
        [("user", "Weather?"), ("assistant", json.dumps(calls)), ("tool", "sunny")],
    ]
    assert metas(df) == [
        None,
        {"label": True, "turn_meta": [None, None, {"loss_weight": 1.0}]},
        None,
        {"turn_meta": [None, {"tool_calls": calls}, {"name": "weather"}]},
    ]
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (4, 4, "unknown_role"),
        (5, 5, "unsupported_content"),
        (6, 6, "json_decode"),
        (8, 8, "empty_conversation"),
    ]
    assert "'robot'" in quarantined[0].error
    assert "'image_url' part" in quarantined[1].error and "drop_non_text_parts" in quarantined[1].error


def test_ids_stable_across_reads():
    a, _, _ = read_all(OpenAIReader.from_params(), [FIXTURE])
    b, _, _ = read_all(OpenAIReader.from_params(), [FIXTURE])
    assert a["id"].to_list() == b["id"].to_list()


def test_drop_non_text_parts_keeps_the_text():
    df, quarantined, _ = read_all(OpenAIReader.from_params(drop_non_text_parts=True), [FIXTURE])
    row = df.filter(pl.col("provenance").struct.field("record") == 5)
    assert convs(row) == [[("user", "What is this?"), ("assistant", "A cat.")]]
    assert metas(row) == [{"dropped_parts": 1}]
    assert "unsupported_content" not in {q.reason for q in quarantined}


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        ({"role": "user", "content": 3}, "wrong_type"),
        ({"role": "user"}, "missing_field"),
        ({"content": "x"}, "missing_field"),
        ({"role": ["user"], "content": "x"}, "wrong_type"),
        ({"role": "user", "content": [{"type": "text", "text": 1}]}, "wrong_type"),
        ({"role": "user", "content": [7]}, "wrong_type"),
        ("just text", "wrong_type"),
    ],
)
def test_bad_messages(msg, reason):
    with pytest.raises(Exception) as e:
        OpenAIReader.from_params().parse({"messages": [msg]})
    assert getattr(e.value, "reason", None) == reason


def test_role_aliases():
    p = OpenAIReader.from_params().parse(
        {
            "messages": [
                {"role": r, "content": "x"}
                for r in ("developer", "system", "user", "assistant", "tool", "function")
            ]
        }
    )
    assert [t["role"] for t in p.turns] == ["system", "system", "user", "assistant", "tool", "tool"]


def test_sharegpt_file_given_to_openai(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "hi"}]}] * 5
    f = tmp_path / "sg.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="like sharegpt"):
        read_all(OpenAIReader.from_params(), [f])


REAL = {
    # kto_en_demo is OpenAI-style messages plus a KTO `label`: the openai reader reads it
    "hiyouga__LLaMA-Factory__data__kto_en_demo@ff6d4d12.json": (300, 300),
    "hiyouga__LLaMA-Factory__data__oai@1d13f4b0.json": (10, 10),
    "hiyouga__LLaMA-Factory__data__v1_sft_demo@ff6d4d12.jsonl": (500, 500),
    "modelscope__data-juicer__demos__data__demo-dataset-chatml@c07c2d79.jsonl": (4, 4),  # no trailing newline
}


def test_real_openai_files_balance(shared_data):
    files = sorted((shared_data / "openai_chat").iterdir())
    assert sorted(f.name for f in files) == sorted(REAL)
    for f in files:
        df, _, stats = read_all(OpenAIReader.from_params(), [f])
        assert (stats.read, stats.ingested) == REAL[f.name], f.name
        assert df["provenance"].struct.field("record").to_list() == list(range(1, stats.read + 1))


def test_real_quirks(shared_data):
    d = shared_data / "openai_chat"
    kto, _, _ = read_all(
        OpenAIReader.from_params(), [d / "hiyouga__LLaMA-Factory__data__kto_en_demo@ff6d4d12.json"]
    )
    labels = [m["label"] for m in metas(kto)]
    assert set(labels) == {True, False}
    v1, _, _ = read_all(
        OpenAIReader.from_params(), [d / "hiyouga__LLaMA-Factory__data__v1_sft_demo@ff6d4d12.jsonl"]
    )
    assert convs(v1)[0][0] == ("user", "hi")  # {type, value} parts
    assert metas(v1)[0] == {"turn_meta": [{"loss_weight": 0.0}, {"loss_weight": 1.0}]}
    chatml, _, _ = read_all(
        OpenAIReader.from_params(),
        [d / "modelscope__data-juicer__demos__data__demo-dataset-chatml@c07c2d79.jsonl"],
    )
    assert [len(c) for c in convs(chatml)] == [5, 3, 3, 3]
