"""read.oasst: nested and flat trees, path enumeration, pruning and two-level accounting."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from curate.ingest.base import InputError, Quarantined, ReadStats, read_batches
from curate.ingest.oasst import OasstReader
from curate.schema import content_hash, conversation_id

FIX = Path(__file__).parents[1] / "fixtures" / "oasst"


def read(path: Path, **params):
    reader = OasstReader.from_params(**params)
    stats = ReadStats()
    quarantined: list[Quarantined] = []
    rows = [r for b in read_batches(reader, [str(path)], "oa", stats=stats, on_quarantine=quarantined.append)
            for r in b.iter_rows(named=True)]
    return reader, stats, rows, quarantined


def texts(row) -> list[str]:
    return [f"{t['role']}: {t['content']}" for t in row["turns"]]


def balanced(reader) -> bool:
    extra = reader.report_extra
    skipped = sum(v for k, v in extra.items() if k.startswith("skipped."))
    return extra["messages"] == extra.get("messages_used", 0) + skipped


def test_nested_trees_paths_pruning_and_quarantine():
    reader, stats, rows, quarantined = read(FIX / "tiny.jsonl")
    assert [texts(r) for r in rows] == [
        ["user: What is a hop?", "assistant: A flower used in beer."],  # m4 (unanswered prompt) trimmed
        ["user: What is a hop?", "assistant: The cone of Humulus lupulus.", "user: Why is it bitter?",
         "assistant: Alpha acids."],  # deleted m7 and review-failed m8 cut
        ["user: Hello?", "assistant: Hi there."],
        ["user: A nested message without a tree wrapper.", "assistant: Still read."],
    ]
    assert [r["id"] for r in rows] == [conversation_id("oa", content_hash(r["turns"]), 0) for r in rows]
    assert [r["provenance"]["record"] for r in rows] == [1, 1, 2, 6]
    meta = json.loads(rows[1]["meta"])
    assert meta == {"message_tree_id": "t1", "message_ids": ["m1", "m3", "m5", "m6"], "lang": "en",
                    "ranks": [None, 0, None, 0], "synthetic": False, "path": 1}
    assert json.loads(rows[2]["meta"])["synthetic"] is True
    assert [(q.record, q.reason) for q in quarantined] == [
        (2, "unknown_role"), (2, "empty_turn"), (3, "no_answer"), (4, "deleted_message"), (5, "json_decode"),
    ]
    assert "'bot'" in quarantined[0].error
    assert (stats.read, stats.ingested, stats.quarantined) == (9, 4, 5)
    assert reader.report_extra == {
        "messages": 17, "messages_used": 11, "skipped.deleted_message": 4,
        "skipped.unanswered_prompt": 1, "skipped.no_answer": 1,
    }
    assert balanced(reader)


def test_best_path_only_and_drop_options():
    reader, _, rows, _ = read(FIX / "tiny.jsonl", best_path_only=True, drop_synthetic=True)
    assert texts(rows[0])[-1] == "assistant: Alpha acids." and len(rows[0]["turns"]) == 4
    by_tree = [json.loads(r["meta"])["message_tree_id"] for r in rows]
    assert by_tree == ["t1", "s1"]  # t2's only good answer was synthetic: left with a bot and an empty turn
    assert reader.report_extra["skipped.synthetic_message"] == 1
    assert reader.report_extra["skipped.not_best_path"] == 2  # m2 in t1, the empty turn n3 in t2
    assert balanced(reader)

    reader, _, rows, quarantined = read(FIX / "tiny.jsonl", drop_deleted=False)
    assert ["assistant: Spam spam spam."] == [t for r in rows for t in texts(r) if "Spam" in t]
    assert "deleted_message" not in {q.reason for q in quarantined}
    assert balanced(reader)


def test_flat_messages_grouped_into_trees():
    reader, stats, rows, quarantined = read(FIX / "flat.jsonl")
    assert [texts(r) for r in rows] == [
        ["user: Name a lager.", "assistant: Pilsner."],
        ["user: Name a lager.", "assistant: Helles."],
        ["user: Name an ale.", "assistant: Stout."],
    ]
    assert [r["provenance"]["record"] for r in rows] == [1, 1, 2]
    assert [(q.record, q.reason) for q in quarantined] == [
        (9, "missing_field"), (10, "json_decode"), (8, "duplicate_id"), (6, "orphan_message"),
    ]
    assert (stats.read, stats.ingested, stats.quarantined) == (7, 3, 4)
    assert reader.report_extra == {"messages": 8, "messages_used": 5, "skipped.duplicate_message": 1,
                                   "skipped.orphan_message": 2}
    assert balanced(reader)
    _, _, rows, _ = read(FIX / "flat.jsonl", best_path_only=True)
    assert [texts(r)[-1] for r in rows] == ["assistant: Helles.", "assistant: Stout."]


def test_deep_tree(tmp_path):
    """400 levels (800 JSON nesting levels, near orjson's limit of 1024): read without recursion."""
    depth = 400
    head = "".join(
        f'{{"message_id": "m{i}", "text": "t{i}", "role": "{"prompter" if i % 2 == 0 else "assistant"}", "replies": ['
        for i in range(depth)
    )
    line = '{"message_tree_id": "deep", "prompt": ' + head + "]}" * depth + "}"
    p = tmp_path / "deep.jsonl"
    p.write_text(line + "\n")
    reader, stats, rows, _ = read(p)
    assert stats.ingested == 1 and len(rows[0]["turns"]) == depth
    assert reader.report_extra == {"messages": depth, "messages_used": depth}


def _expected_paths(m: dict) -> int:
    """Independent count: paths after trimming prompter leaves (recursive, fine for real trees)."""
    kids = [k for k in (m.get("replies") or []) if _expected_paths(k) > 0 or k["role"] != "prompter"]
    if not kids:
        return 0 if m["role"] == "prompter" else 1
    return sum(_expected_paths(k) for k in kids)


@pytest.mark.parametrize(
    ("name", "paths", "best", "messages", "trimmed"),
    [
        ("LAION-AI__Open-Assistant__backend__test@a1106ca9.jsonl", 74, 21, 150, 0),
        ("LAION-AI__Open-Assistant__backend__test_data__realistic__realistic_seed_data@f1e6ed95.json", 158, 74, 444, 0),
        ("LAION-AI__Open-Assistant__model__model_eval__manual__data__en_100_message@f1e6ed95.jsonl", 546, 100, 1167, 226),
        ("LAION-AI__Open-Assistant__model__model_eval__manual__data__en_100_tree@f1e6ed95.jsonl", 546, 100, 1167, 226),
    ],
)
def test_real_files_exact_balanced_counts(shared_data, name, paths, best, messages, trimmed):
    path = shared_data / "oasst" / name
    reader, stats, rows, _ = read(path)
    assert (stats.read, stats.ingested, stats.quarantined) == (paths, paths, 0)
    assert reader.report_extra["messages"] == messages
    assert reader.report_extra.get("skipped.unanswered_prompt", 0) == trimmed
    assert balanced(reader)
    assert len({r["id"] for r in rows}) == paths
    assert all(r["turns"][-1]["role"] == "assistant" and r["turns"][0]["role"] == "user" for r in rows)
    if name.endswith(".jsonl"):
        raws = [json.loads(line) for line in path.read_text().splitlines()]
        assert sum(_expected_paths(o.get("prompt", o)) for o in raws) == paths
    reader, stats, rows, _ = read(path, best_path_only=True)
    assert stats.ingested == best
    assert len({json.loads(r["meta"])["message_tree_id"] for r in rows}) == best
    assert balanced(reader)
    # both exports of the same 100 trees give the same conversations
    if "en_100" in name:
        assert Counter(r["turns"][-1]["content"] for r in rows).total() == 100


def test_alpaca_shaped_file_says_use_alpaca(shared_data):
    with pytest.raises(InputError, match="format: alpaca"):
        read(shared_data / "oasst" / "hiyouga__LLaMA-Factory__data__oaast_rm_zh@72be5266.json")


def test_every_real_oasst_file_is_covered(shared_data):
    names = sorted(p.name for p in (shared_data / "oasst").iterdir())
    assert len(names) == 5  # four read above, one refused as Alpaca-shaped


def test_parent_cycles_are_quarantined_and_their_messages_counted(tmp_path):
    msgs = [
        {"message_id": "r", "role": "prompter", "text": "Root?"},
        {"message_id": "a", "parent_id": "r", "role": "assistant", "text": "Answer."},
        {"message_id": "x", "parent_id": "y", "role": "prompter", "text": "x"},  # x <-> y
        {"message_id": "y", "parent_id": "x", "role": "assistant", "text": "y"},
        {"message_id": "z", "parent_id": "y", "role": "prompter", "text": "below the cycle"},
        {"message_id": "s", "parent_id": "s", "role": "prompter", "text": "its own parent"},
    ]
    p = tmp_path / "cycle.jsonl"
    p.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    reader, stats, rows, quarantined = read(p)
    assert [texts(r) for r in rows] == [["user: Root?", "assistant: Answer."]]
    assert [(q.record, q.reason) for q in quarantined] == [(3, "parent_cycle"), (6, "parent_cycle")]
    assert "['x', 'y']" in quarantined[0].error and "3 messages" in quarantined[0].error
    assert (stats.read, stats.ingested, stats.quarantined) == (3, 1, 2)
    assert reader.report_extra == {"messages": 6, "messages_used": 2, "skipped.parent_cycle": 4}
    assert balanced(reader)


def test_message_ids_of_the_wrong_type_are_quarantined(tmp_path):
    p = tmp_path / "ids.jsonl"
    p.write_text(json.dumps({"message_id": ["m1"], "role": "prompter", "text": "x"}) + "\n"
                 + json.dumps({"message_id": "m2", "parent_id": {"a": 1}, "role": "assistant", "text": "y"}) + "\n")
    _, stats, _, quarantined = read(p)
    assert [(q.record, q.reason) for q in quarantined] == [(1, "wrong_type"), (2, "wrong_type")]
    assert stats.read == 2
