"""ShareGPTReader: role map, system/tools/orig_id, preference pairs, and the real ShareGPT files' quirks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from curate.ingest.base import InputError, RecordError
from curate.ingest.sharegpt import ShareGPTReader

from ._helpers import convs, expected_ids, metas, read_all

FIXTURE = Path(__file__).parents[1] / "fixtures" / "sharegpt" / "tiny.jsonl"


def test_fixture_turns_meta_and_quarantine():
    df, quarantined, _ = read_all(ShareGPTReader.from_params(), [FIXTURE])
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 5, 7]
    assert df["id"].to_list() == expected_ids(df)
    assert convs(df) == [
        [("user", "What is <b>HTML</b>?"), ("assistant", "A <i>markup</i> language.")],  # HTML kept as is
        [("system", "Be brief."), ("user", "Hi"), ("assistant", "")],  # empty turn kept
        [
            ("system", "You can call tools."),
            ("user", "Weather in Paris?"),
            ("tool", '{"name": "get_weather", "arguments": {"city": "Paris"}}'),
            ("tool", '{"temp": 21}'),
            ("assistant", "It is 21 C."),
        ],
        [("user", "Pick one."), ("assistant", "Option A.")],
    ]
    assert metas(df) == [
        {"orig_id": "conv_1"},
        None,  # no id: fine
        {"tools": '[{"name": "get_weather"}]', "orig_id": "conv_5"},
        {"orig_id": 7, "rejected": {"from": "gpt", "value": "No."}},
    ]
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (3, 3, "unknown_role"),
        (4, 4, "json_decode"),
        (6, 6, "empty_conversation"),
        (8, 8, "wrong_type"),
        (9, 9, "wrong_type"),
    ]
    assert "'narrator'" in quarantined[0].error and "conversations[1]" in quarantined[0].error


def test_ids_stable_and_independent_of_orig_id():
    a, _, _ = read_all(ShareGPTReader.from_params(), [FIXTURE])
    b, _, _ = read_all(ShareGPTReader.from_params(), [FIXTURE])
    assert a["id"].to_list() == b["id"].to_list()
    assert "conv_1" not in a["id"].to_list()


@pytest.mark.parametrize(
    ("preference", "last", "meta_keys"),
    [
        ("chosen", [("assistant", "Option A.")], {"orig_id", "rejected"}),
        ("rejected", [("assistant", "No.")], {"orig_id", "chosen"}),
        ("skip", [], {"orig_id", "chosen", "rejected"}),
    ],
)
def test_preference_param(preference, last, meta_keys):
    df, _, _ = read_all(ShareGPTReader.from_params(preference=preference), [FIXTURE])
    row = df.filter(pl.col("provenance").struct.field("record") == 7)
    assert convs(row)[0] == [("user", "Pick one."), *last]
    assert set(metas(row)[0]) == meta_keys


def test_preference_param_is_validated():
    with pytest.raises(ValueError, match="preference"):
        ShareGPTReader.from_params(preference="best")


@pytest.mark.parametrize(
    ("speaker", "role"),
    [
        ("human", "user"),
        ("user", "user"),
        ("gpt", "assistant"),
        ("chatgpt", "assistant"),
        ("bard", "assistant"),
        ("bing", "assistant"),
        ("assistant", "assistant"),
        ("model", "assistant"),
        ("system", "system"),
        ("function_call", "tool"),
        ("observation", "tool"),
        ("tool", "tool"),
        ("function", "tool"),
        ("Human", "user"),
        ("GPT", "assistant"),
        ("ChatGPT", "assistant"),
        ("Bing", "assistant"),
        (" HUMAN ", "user"),
    ],
)
def test_role_map(speaker, role):
    p = ShareGPTReader.from_params().parse({"conversations": [{"from": speaker, "value": "x"}]})
    assert p.turns == [{"role": role, "content": "x"}]


def test_capitalised_speakers_read_and_role_map_param_extends_the_default(tmp_path):
    rows = [
        {"conversations": [{"from": "Human", "value": "hi"}, {"from": "GPT", "value": "yo"}]},
        {"conversations": [{"from": "Human", "value": "hi"}, {"from": "Bing", "value": "hello"}]},
        {"conversations": [{"from": "Narrator", "value": "Once"}, {"from": "human", "value": "go"},
                           {"from": "Claude", "value": "ok"}]},
    ]
    f = tmp_path / "caps.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    df, quarantined, stats = read_all(ShareGPTReader.from_params(), [f])
    assert [(q.record, q.reason) for q in quarantined] == [(3, "unknown_role")]
    assert "'Narrator'" in quarantined[0].error and "role_map" in quarantined[0].error
    assert (stats.read, stats.ingested, stats.quarantined) == (3, 2, 1)
    df, quarantined, _ = read_all(
        ShareGPTReader.from_params(role_map={"narrator": "system", "CLAUDE": "assistant"}), [f]
    )
    assert quarantined == [] and convs(df)[2] == [("system", "Once"), ("user", "go"), ("assistant", "ok")]


def test_role_map_param_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="role_map"):
        ShareGPTReader.from_params(role_map={"narrator": "moderator"})
    with pytest.raises(ValidationError, match="same name"):
        ShareGPTReader.from_params(role_map={"Bot": "assistant", "bot": "user"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ShareGPTReader.from_params(rolemap={"narrator": "system"})
    # a default name can be re-pointed
    p = ShareGPTReader.from_params(role_map={"Model": "user"}).parse({"conversations": [{"from": "model", "value": "x"}]})
    assert p.turns == [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        ({"from": ["human"], "value": "x"}, "wrong_type"),
        ({"value": "x"}, "missing_field"),
        ({"from": "human"}, "missing_field"),
        ({"from": "human", "value": None}, "missing_field"),
        ({"from": "Narrator", "value": "x"}, "unknown_role"),
        ("human: x", "wrong_type"),
    ],
)
def test_bad_messages(msg, reason):
    with pytest.raises(RecordError) as e:
        ShareGPTReader.from_params().parse({"conversations": [{"from": "human", "value": "ok"}, msg]})
    assert e.value.reason == reason and "conversations[1]" in str(e.value)


def test_single_object_and_array_files(tmp_path):
    rec = {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    one = tmp_path / "one.json"
    one.write_text(json.dumps(rec, indent=2))
    arr = tmp_path / "arr.json"
    arr.write_text(
        json.dumps([rec, {"id": "b", "conversations": [{"from": "narrator", "value": "x"}]}, rec], indent=2)
    )
    df1, q1, _ = read_all(ShareGPTReader.from_params(), [one])
    assert len(df1) == 1 and q1 == []
    df2, q2, _ = read_all(ShareGPTReader.from_params(), [arr])
    assert df2["provenance"].struct.field("record").to_list() == [1, 3]
    assert [(q.record, q.reason) for q in q2] == [(2, "unknown_role")]


def test_messages_file_is_reported_as_openai(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "hi"}]}] * 6
    f = tmp_path / "oai.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="like openai"):
        read_all(ShareGPTReader.from_params(), [f])


# --------------------------------------------------------------------------- real files

REAL = {
    "hiyouga__LLaMA-Factory__data__dpo_en_demo@ff6d4d12.json": (300, 300),
    "hiyouga__LLaMA-Factory__data__glaive_toolcall_en_demo@ff6d4d12.json": (300, 300),
    "hiyouga__LLaMA-Factory__data__qa@7b6f87ef.json": (624, 624),  # the whole file is one line
    "lm-sys__FastChat__data__dummy_conversation@0e6d3e4b.json": (500, 500),
    # HEAD side (CRLF, 910 records) and main side (LF, 500 records) both parse; the three
    # marker lines are quarantined as conflict_marker.
    "lm-sys__FastChat__data__dummy_conversation@de6f49fa.json": (1413, 1410),
    "lm-sys__FastChat__data__dummy_conversation@f70de6be.json": (910, 910),
    "lm-sys__FastChat__data__dummy_conversation_with_system@8adb09ce.json": (500, 500),
}
LFS = "hiyouga__LLaMA-Factory__data__sharegpt_zh_27k@7cdb720d.json"


def test_real_sharegpt_files_balance(shared_data):
    files = sorted((shared_data / "sharegpt").iterdir())
    assert sorted(f.name for f in files) == sorted([*REAL, LFS])
    for f in files:
        if f.name == LFS:
            continue
        _, _, stats = read_all(ShareGPTReader.from_params(), [f])
        assert (stats.read, stats.ingested) == REAL[f.name], f.name


def test_real_lfs_pointer_is_a_clear_error(shared_data):
    with pytest.raises(InputError, match="git-lfs pointer, not data.*git lfs pull"):
        read_all(ShareGPTReader.from_params(), [shared_data / "sharegpt" / LFS])


def test_real_conflict_markers_are_quarantined(shared_data):
    f = shared_data / "sharegpt" / "lm-sys__FastChat__data__dummy_conversation@de6f49fa.json"
    df, quarantined, _ = read_all(ShareGPTReader.from_params(), [f])
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (1, 1, "conflict_marker"),
        (912, 11842, "conflict_marker"),
        (1413, 22345, "conflict_marker"),
    ]
    orig = [m["orig_id"] for m in metas(df)]
    assert (
        orig[0] == "identity_0"
        and orig[909] == "identity_909"
        and orig[910] == "identity_0"
        and orig[-1] == "identity_499"
    )
    assert not any("\r" in c for conv in convs(df) for _, c in conv)  # CRLF sits between tokens only


def test_real_variants(shared_data):
    d = shared_data / "sharegpt"
    sysf, _, _ = read_all(
        ShareGPTReader.from_params(),
        [d / "lm-sys__FastChat__data__dummy_conversation_with_system@8adb09ce.json"],
    )
    assert sum(c[0][0] == "system" for c in convs(sysf)) == 6
    tools, _, _ = read_all(
        ShareGPTReader.from_params(),
        [d / "hiyouga__LLaMA-Factory__data__glaive_toolcall_en_demo@ff6d4d12.json"],
    )
    assert all(isinstance(json.loads(m["tools"]), list) for m in metas(tools) if m)
    roles = Counter(r for c in convs(tools) for r, _ in c)
    assert roles == {"user": 746, "assistant": 746, "tool": 422}  # function_call + observation
    dpo, _, _ = read_all(
        ShareGPTReader.from_params(), [d / "hiyouga__LLaMA-Factory__data__dpo_en_demo@ff6d4d12.json"]
    )
    assert all(c[-1][0] == "assistant" for c in convs(dpo))
    assert all("rejected" in m and "orig_id" not in m for m in metas(dpo))


def test_crafted_conflict_markers_with_crlf(tmp_path):
    rec = {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    ours = json.dumps([rec, rec], indent=2).replace("\n", "\r\n")
    theirs = json.dumps([rec], indent=2)
    f = tmp_path / "conflict.json"
    f.write_bytes(f"<<<<<<< HEAD\n{ours}\n=======\n{theirs}\n>>>>>>> main\n".encode())
    df, quarantined, _ = read_all(ShareGPTReader.from_params(), [f])
    assert len(df) == 3
    assert [(q.record, q.reason) for q in quarantined] == [
        (1, "conflict_marker"),
        (4, "conflict_marker"),
        (6, "conflict_marker"),
    ]
