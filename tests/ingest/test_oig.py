"""OIGReader: turns split at line-start labels, configurable labels, wrapped files, the real joke files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from curate.ingest.base import InputError
from curate.ingest.oig import OIGReader
from curate.pipeline.spec import SpecError, build_plan

from ._helpers import convs, expected_ids, read_all

FIXTURE = Path(__file__).parents[1] / "fixtures" / "oig" / "tiny.jsonl"
JOKES_JSONL = "togethercomputer__together-python__unified_joke_explanations@526466e3.jsonl"
JOKES_WRAPPED = "togethercomputer__together-python__examples__jokes_dataset@81f238bb.json"
ROSEY = {"assistant_labels": ["<bot>:", "Rosey:"]}


def test_fixture_default_labels():
    df, quarantined, _ = read_all(OIGReader.from_params(), [FIXTURE])
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 5]
    assert df["id"].to_list() == expected_ids(df)
    assert convs(df) == [
        [("user", "What is 2+2?"), ("assistant", "4."), ("user", "And 3+3?"), ("assistant", "6.")],
        # a label inside a line is text; the empty bot turn is kept for the failed-response filter
        [("user", "Quote this: <bot>: hi"), ("assistant", "")],
        # OIG's known bot labels are recognised without configuration
        [("user", "Why is this joke funny?"), ("assistant", "Because it is.")],
    ]
    assert df["subset"].to_list() == ["unified_chip2", "tiny", "tiny"]  # metadata.source, else the file stem
    assert [m and json.loads(m) for m in df["meta"].to_list()] == [
        {"metadata": {"source": "unified_chip2"}},
        {"metadata": {}},
        None,
    ]
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (3, 3, "no_turns"),
        (4, 4, "no_turns"),
        (6, 6, "json_decode"),
        (7, 7, "missing_field"),
    ]
    assert "text before the first speaker label: 'Some preamble'" in quarantined[0].error
    only_bot = read_all(OIGReader.from_params(assistant_labels=["<bot>:"]), [FIXTURE])[1]
    assert "labels seen at line starts: ['Rosey:']" in only_bot[2].error


def test_fixture_with_rosey_label():
    df, quarantined, _ = read_all(OIGReader.from_params(**ROSEY), [FIXTURE])
    assert convs(df)[2] == [("user", "Why is this joke funny?"), ("assistant", "Because it is.")]
    assert [q.record for q in quarantined] == [3, 4, 6, 7]


def test_ids_stable_across_reads():
    a, _, _ = read_all(OIGReader.from_params(), [FIXTURE])
    b, _, _ = read_all(OIGReader.from_params(), [FIXTURE])
    assert a["id"].to_list() == b["id"].to_list()


def test_label_params_are_validated():
    with pytest.raises(ValidationError, match="both user and assistant"):
        OIGReader.from_params(user_labels=["A:"], assistant_labels=["A:"])
    with pytest.raises(ValidationError, match="non-blank"):
        OIGReader.from_params(user_labels=[" "])
    with pytest.raises(ValidationError):
        OIGReader.from_params(assistant_labels=[])


def test_labels_at_text_start_and_line_start_only():
    r = OIGReader.from_params(user_labels=["User:"], assistant_labels=["Bot:"])
    p = r.parse({"text": "User: a\nsays Bot: no\nBot: yes\r\nUser: again\n Bot: indented is text\nBot: ok"})
    assert p.turns == [
        {"role": "user", "content": "a\nsays Bot: no"},
        {"role": "assistant", "content": "yes"},
        {"role": "user", "content": "again\n Bot: indented is text"},
        {"role": "assistant", "content": "ok"},
    ]


def test_recipe_level_params(tmp_path):
    plan = build_plan(
        {
            "name": "oig",
            "sources": [
                {
                    "id": "jokes",
                    "format": "oig",
                    "path": str(FIXTURE),
                    "params": {**ROSEY, "records_key": None},
                },
            ],
            "steps": [],
        }
    )
    ((_, reader),) = plan.readers
    assert isinstance(reader, OIGReader) and reader.params.assistant_labels == ["<bot>:", "Rosey:"]
    bad = {
        "name": "oig",
        "sources": [
            {"id": "j", "format": "oig", "path": "x", "params": {"user_labels": ["Rosey:"], **ROSEY}}
        ],
    }
    with pytest.raises(SpecError, match=r"sources\[0\]\.params.*both user and assistant"):
        build_plan(bad)


def test_wrapped_file_needs_records_key(tmp_path):
    f = tmp_path / "wrapped.json"
    f.write_text(json.dumps({"jokes_list": [{"text": "<human>: hi\n<bot>: yo"}, {"text": "nope"}]}, indent=2))
    with pytest.raises(
        InputError,
        match=r"wrapped\.json: the records are wrapped .* under key 'jokes_list' \(2 records\); "
        r"set the source's `records_key: jokes_list`",
    ):
        read_all(OIGReader.from_params(), [f])
    df, quarantined, _ = read_all(OIGReader.from_params(records_key="jokes_list"), [f])
    assert convs(df) == [[("user", "hi"), ("assistant", "yo")]]
    assert [(q.record, q.reason) for q in quarantined] == [(2, "no_turns")]
    with pytest.raises(InputError, match="expected a list under key 'items'"):
        read_all(OIGReader.from_params(records_key="items"), [f])


def test_real_joke_files(shared_data):
    d = shared_data / "oig"
    assert sorted(p.name for p in d.iterdir()) == sorted([JOKES_JSONL, JOKES_WRAPPED])
    df, quarantined, stats = read_all(OIGReader.from_params(**ROSEY), [d / JOKES_JSONL])
    assert (stats.read, stats.ingested) == (356, 356)
    assert df["subset"].unique().to_list() == ["unified_joke_explanations"]
    assert (df["turns"].list.len() == 2).all()
    # OIG's known bot labels are the default: the Rosey file needs no configuration
    default, quarantined, stats = read_all(OIGReader.from_params(), [d / JOKES_JSONL])
    assert (stats.read, stats.ingested, stats.quarantined) == (356, 356, 0)
    assert convs(default) == convs(df)
    # with only <bot>: every joke record names the missing label
    _, quarantined, stats = read_all(OIGReader.from_params(assistant_labels=["<bot>:"]), [d / JOKES_JSONL])
    assert stats.quarantined == 356 and {q.reason for q in quarantined} == {"no_assistant_turn"}
    with pytest.raises(InputError, match="records_key: jokes_list"):
        read_all(OIGReader.from_params(**ROSEY), [d / JOKES_WRAPPED])
    wrapped, quarantined, stats = read_all(
        OIGReader.from_params(**ROSEY, records_key="jokes_list"), [d / JOKES_WRAPPED]
    )
    assert (stats.read, stats.ingested) == (100, 100)
    assert wrapped["provenance"].struct.field("record").to_list() == list(range(1, 101))
    assert wrapped["subset"].unique().to_list() == [JOKES_WRAPPED.removesuffix(".json")]
    assert convs(wrapped)[0] == convs(df)[0]  # the same first joke in both files
