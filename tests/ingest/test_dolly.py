"""DollyReader: context joins the prompt like Alpaca's input; subset is the category."""

from __future__ import annotations

import json
from pathlib import Path

from curate.ingest.dolly import DollyReader

from ._helpers import expected_ids, read_all

FIXTURE = Path(__file__).parents[1] / "fixtures" / "dolly" / "tiny.jsonl"


def test_fixture_turns_subset_meta_and_quarantine():
    df, quarantined, stats = read_all(DollyReader.from_params(), [FIXTURE])
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 3, 7]
    assert df["id"].to_list() == expected_ids(df)
    assert [[(t["role"], t["content"]) for t in c] for c in df["turns"].to_list()] == [
        [
            (
                "user",
                ("When did Virgin Australia start operating?\n\n"
                 "Virgin Australia commenced services on 31 August 2000."),
            ),
            ("assistant", "31 August 2000."),
        ],
        [("user", "Which is a species of fish?"), ("assistant", "Tope")],
        [("user", "Write a haiku."), ("assistant", "")],
        [("user", "List colours."), ("assistant", "red")],
    ]
    assert df["subset"].to_list() == ["closed_qa", "classification", "creative_writing", None]
    assert [json.loads(m) if m else None for m in df["meta"].to_list()] == [None, None, None, {"extra_id": 7}]
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (4, 4, "empty_prompt"),
        (5, 5, "json_decode"),
        (6, 6, "missing_field"),
    ]
    assert (stats.read, stats.ingested) == (7, 4)


def test_ids_stable_across_reads():
    a, _, _ = read_all(DollyReader.from_params(), [FIXTURE])
    b, _, _ = read_all(DollyReader.from_params(), [FIXTURE])
    assert a["id"].to_list() == b["id"].to_list()
