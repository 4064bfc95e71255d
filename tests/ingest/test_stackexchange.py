"""read.stackexchange: pairing, accounting of every row, safety, and the real coffee/beer dumps."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from curate.ingest.base import InputError, Quarantined, ReadStats, read_batches
from curate.ingest.stackexchange import StackExchangeReader, parse_tags
from curate.schema import content_hash, conversation_id

from ._helpers import read_all

FIX = Path(__file__).parents[1] / "fixtures" / "stackexchange"


def read(path: Path | list[Path], **params):
    reader = StackExchangeReader.from_params(**params)
    stats = ReadStats()
    quarantined: list[Quarantined] = []
    paths = [str(p) for p in (path if isinstance(path, list) else [path])]
    rows = [r for b in read_batches(reader, paths, "se", stats=stats, on_quarantine=quarantined.append)
            for r in b.iter_rows(named=True)]
    return reader, stats, rows, quarantined


def skipped(reader) -> dict[str, int]:
    return {k.removeprefix("skipped."): v for k, v in reader.report_extra.items() if k.startswith("skipped.")}


def test_accepted_answer_pairs_and_every_row_is_accounted():
    reader, stats, rows, quarantined = read(FIX / "Posts.xml")
    by_q = {r["provenance"]["record"]: r for r in rows}
    assert sorted(by_q) == [10, 20]
    q10 = by_q[10]
    assert q10["id"] == conversation_id("se", content_hash(q10["turns"]), 0)
    assert q10["subset"] == "stackexchange"
    assert q10["turns"] == [
        {"role": "user", "content": "Double a list\n\nHow do I double every item of a `list`?"},
        {"role": "assistant", "content": "Use a list comprehension:\n\n```py\n[x * 2 for x in xs]\n```"},
    ]
    meta = json.loads(q10["meta"])
    assert meta == {
        "question_id": 10, "tags": ["python", "list"], "score": 5, "view_count": 120, "answer_count": 2,
        "creation_date": "2020-01-01T00:00:00.000", "answer_id": 11, "answer_score": 7, "answer_accepted": True,
    }
    # no accepted answer: falls back to the top-scored one
    assert by_q[20]["turns"][1]["content"] == "Medium-fine, see [this chart](https://example.org/grind)."
    assert json.loads(by_q[20]["meta"])["tags"] == ["coffee", "grind"]
    assert [(q.record, q.reason, q.line) for q in quarantined] == [
        (30, "no_answer", 9), (40, "malformed_row", 10), (12, "malformed_row", 12)
    ]
    assert "no Title" in quarantined[1].error
    assert stats.as_dict() | {"by_reason": None} == {
        "read": 5, "ingested": 2, "quarantined": 3, "by_reason": None, "files": 1
    }
    assert skipped(reader) == {
        "answer_paired": 2, "answer_not_chosen": 2, "answer_of_quarantined": 1, "answer_unmatched": 1,
        "answer_malformed": 1, "tag_wiki_excerpt": 1, "tag_wiki": 1, "wiki_placeholder": 1,
    }
    assert reader.report_extra["rows"] == 15 == stats.read + sum(skipped(reader).values())


def test_top_and_no_fallback_and_none_modes():
    _, _, rows, _ = read(FIX / "Posts.xml", answer="top", site="python.stackexchange.com")
    q10 = next(r for r in rows if r["provenance"]["record"] == 10)
    assert q10["turns"][1]["content"] == "Use numpy." and q10["subset"] == "python.stackexchange.com"
    assert json.loads(q10["meta"])["answer_accepted"] is False

    _, stats, rows, quarantined = read(FIX / "Posts.xml", fallback_top=False)
    assert [r["provenance"]["record"] for r in rows] == [10]
    assert Counter(q.reason for q in quarantined) == {"no_answer": 2, "malformed_row": 2}

    reader, stats, rows, quarantined = read(FIX / "Posts.xml", answer="none", markdown=False)
    assert sorted(r["provenance"]["record"] for r in rows) == [10, 20, 30]
    assert all(len(r["turns"]) == 1 for r in rows)
    assert rows[0]["turns"][0]["content"].startswith("Double a list\n\n<p>How do I")  # HTML kept
    assert skipped(reader)["answer_not_used"] == 6
    assert reader.report_extra["rows"] == stats.read + sum(skipped(reader).values())


def test_spilling_held_bodies_to_sqlite_gives_the_same_records():
    _, _, in_memory, _ = read(FIX / "Posts.xml")
    reader, stats, spilled, _ = read(FIX / "Posts.xml", buffer_mb=0)
    assert reader.report_extra["spilled_to_sqlite"] == 2  # answer 11 (before its question) and question 20
    assert spilled == in_memory and stats.ingested == 2


def test_held_bodies_release_memory_accounting():
    from curate.ingest.stackexchange import _HeldBodies

    held = _HeldBodies(limit_bytes=10_000)
    for i in range(100):  # 100 pairs of ~1 KB, one held at a time: never spills
        held.put(f"q{i}", {"body": "x" * 1000})
        assert held.pop(f"q{i}") == {"body": "x" * 1000}
    assert held.mem_bytes == 0 and held.spilled == 0 and held.db is None
    held.close()


def test_malformed_xml_names_file_and_line():
    with pytest.raises(InputError, match=r"malformed\.xml:5: malformed XML"):
        read(FIX / "malformed.xml")
    # answer=none is single-pass: records before the error were already emitted
    reader = StackExchangeReader.from_params(answer="none")
    got = []
    batches = read_batches(reader, [str(FIX / "malformed.xml")], "se", batch_size=1)
    with pytest.raises(InputError, match=r"malformed\.xml:5"):
        got.extend(batches)
    assert [b["provenance"][0]["record"] for b in got] == [1]


def test_doctype_and_entities_are_refused(tmp_path):
    with pytest.raises(InputError, match="DTD subset or an ENTITY"):
        read(FIX / "doctype.xml")
    # an external DTD is never loaded; an entity it would define is refused, not dropped
    ext = tmp_path / "ext.xml"
    ext.write_text('<?xml version="1.0"?>\n<!DOCTYPE p SYSTEM "file:///etc/passwd">\n<posts>\n'
                   '<row Id="1" PostTypeId="1" Title="T" Body="&secret;" />\n</posts>\n')
    with pytest.raises(InputError, match="ext.xml:4: malformed XML \\(undefined entity"):
        read(ext)
    param = tmp_path / "param.xml"
    param.write_text('<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY % x SYSTEM "http://x/y.dtd"> %x;]>\n<posts/>\n')
    with pytest.raises(InputError, match="DTD subset"):
        read(param)


def test_real_dump_with_an_external_doctype_reads_exactly(shared_data, tmp_path):
    """Older dumps open with <!DOCTYPE posts SYSTEM "posts.dtd">: read, with the same records and counts."""
    src = shared_data / "stackexchange_posts_xml" / "kevswanberg__beer_tentrr__Posts@9573647b.xml"
    if not src.is_file():
        pytest.skip(f"{src} is not in the shared data folder")
    raw = src.read_bytes()
    head, _, rest = raw.partition(b"?>")
    doctyped = tmp_path / "Posts.xml"
    doctyped.write_bytes(head + b'?>\n<!DOCTYPE posts SYSTEM "posts.dtd">' + rest)
    plain = read_all(StackExchangeReader.from_params(), [str(src)])
    got = read_all(StackExchangeReader.from_params(), [str(doctyped)])
    assert got[0]["turns"].to_list() == plain[0]["turns"].to_list() and got[0].height > 0
    assert [q.reason for q in got[1]] == [q.reason for q in plain[1]]
    assert got[2].read == plain[2].read


def test_not_xml_is_a_clear_error(tmp_path):
    p = tmp_path / "Posts.xml"
    p.write_text('{"instruction": "x"}\n')
    with pytest.raises(InputError, match="not XML"):
        read(p)


@pytest.mark.parametrize(
    ("raw", "tags"),
    [("<python><pandas>", ["python", "pandas"]), ("&lt;c++&gt;&lt;c#&gt;", ["c++", "c#"]),
     ("|python|pandas|", ["python", "pandas"]), ("", []), (None, [])],
)
def test_parse_tags(raw, tags):
    assert parse_tags(raw) == tags


def _truth(path: Path) -> dict[str, object]:
    """Independent counts with ElementTree: questions, answered questions, post types."""
    types: Counter[str] = Counter()
    questions, answered, accepted = set(), set(), {}
    answers: list[tuple[int, int]] = []
    for _, el in ET.iterparse(path):
        if el.tag == "row":
            types[el.get("PostTypeId")] += 1
            if el.get("PostTypeId") == "1":
                questions.add(int(el.get("Id")))
                if el.get("AcceptedAnswerId"):
                    accepted[int(el.get("Id"))] = int(el.get("AcceptedAnswerId"))
            elif el.get("PostTypeId") == "2":
                answers.append((int(el.get("Id")), int(el.get("ParentId"))))
        el.clear()
    answered = {p for _, p in answers if p in questions}
    return {"types": types, "questions": questions, "answered": answered, "accepted": accepted, "answers": answers}


@pytest.mark.parametrize(
    ("name", "rows", "ingested", "no_answer", "skips"),
    [
        ("Yoav-Shafir__Elasticsearch-Coffee-Search-Engine-JS__Posts@97e93c92.xml", 592, 212, 13,
         {"answer_paired": 212, "answer_not_chosen": 115, "tag_wiki": 20, "tag_wiki_excerpt": 20}),
        ("kevswanberg__beer_tentrr__Posts@9573647b.xml", 2354, 644, 19,
         {"answer_paired": 644, "answer_not_chosen": 928, "tag_wiki": 58, "tag_wiki_excerpt": 58,
          "wiki_placeholder": 3}),
    ],
)
def test_real_dumps_exact_balanced_counts(shared_data, name, rows, ingested, no_answer, skips):
    path = shared_data / "stackexchange_posts_xml" / name
    truth = _truth(path)
    reader, stats, recs, _ = read(path)
    assert stats.read == len(truth["questions"]) == ingested + no_answer
    assert stats.ingested == ingested == len(truth["answered"])
    assert stats.by_reason == {"no_answer": no_answer}
    assert skipped(reader) == skips
    assert reader.report_extra["rows"] == rows == sum(truth["types"].values())
    assert rows == stats.read + sum(skips.values())
    # the accepted answer is chosen whenever there is one
    for r in recs:
        meta = json.loads(r["meta"])
        q = r["provenance"]["record"]
        assert meta["question_id"] == q
        if q in truth["accepted"]:
            assert meta["answer_id"] == truth["accepted"][q] and meta["answer_accepted"]
        assert "<p>" not in r["turns"][0]["content"] and "<p>" not in r["turns"][1]["content"]
    assert len({r["id"] for r in recs}) == len(recs)


def _posts(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "site" / "Posts.xml"
    path.parent.mkdir()
    body = 'Body="&lt;p&gt;text&lt;/p&gt;"'
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
                    + "".join(f"  <row {r.replace('BODY', body)} />\n" for r in rows) + "</posts>\n")
    return path


CHOICE_ROWS = [
    'Id="5" PostTypeId="2" ParentId="4" Score="1" BODY',  # accepted, arrives before its question
    'Id="4" PostTypeId="1" AcceptedAnswerId="5" Title="t4" BODY',
    'Id="6" PostTypeId="2" ParentId="4" Score="9" BODY',
    'Id="1" PostTypeId="1" AcceptedAnswerId="99" Title="t1" BODY',  # accepted answer absent
    'Id="3" PostTypeId="2" ParentId="1" Score="2" BODY',  # tie on score 2: the older id (2) wins
    'Id="2" PostTypeId="2" ParentId="1" Score="2" BODY',
    'Id="7" PostTypeId="2" ParentId="1" BODY',  # no score counts as 0
    'Id="8" PostTypeId="1" AcceptedAnswerId="6" Title="t8" BODY',  # accepted id belongs to question 4
    'Id="9" PostTypeId="2" ParentId="8" Score="-3" BODY',
    'Id="10" PostTypeId="1" Title="t10" BODY',  # no answers
    'Id="11" PostTypeId="2" ParentId="77" Score="50" BODY',  # its question is absent
]


@pytest.mark.parametrize(
    ("params", "pairs"),
    [
        ({}, {1: 2, 4: 5, 8: 9}),
        ({"fallback_top": False}, {4: 5}),
        ({"answer": "top"}, {1: 2, 4: 6, 8: 9}),
    ],
)
def test_answer_choice_in_any_order(tmp_path, params, pairs):
    path = _posts(tmp_path, CHOICE_ROWS)
    reader, stats, rows, quarantined = read(path, **params)
    got = {r["provenance"]["record"]: json.loads(r["meta"])["answer_id"] for r in rows}
    assert got == pairs
    assert sorted(q.record for q in quarantined) == sorted({1, 4, 8, 10} - set(pairs))
    assert {q.reason for q in quarantined} <= {"no_answer"}
    sk = skipped(reader)
    assert sk["answer_paired"] == len(pairs) and sk["answer_unmatched"] == 1
    assert sk["answer_not_chosen"] == 6 - len(pairs)
    assert reader.report_extra["rows"] == len(CHOICE_ROWS) == stats.read + sum(sk.values())


def test_pass_one_keeps_compact_int64_tables(tmp_path):
    import numpy as np

    path = _posts(tmp_path, CHOICE_ROWS)
    reader = StackExchangeReader.from_params()
    chosen = reader._choose_answers(str(path))
    assert chosen.qids.dtype == chosen.answer.dtype == np.int64
    assert chosen.qids.tolist() == [1, 4, 8, 10]
    assert chosen.has_answer(1) and not chosen.has_answer(10) and not chosen.has_answer(77)
    assert chosen.is_chosen(5, 4) and not chosen.is_chosen(6, 4) and not chosen.is_chosen(5, 1 << 70)
    assert chosen.qids.nbytes + chosen.answer.nbytes + chosen.dead.nbytes == 17 * 4


def test_repeated_question_id_is_quarantined_not_written_twice(tmp_path):
    rows = [
        'Id="1" PostTypeId="1" AcceptedAnswerId="2" Title="first" BODY',
        'Id="2" PostTypeId="2" ParentId="1" Score="1" BODY',
        'Id="1" PostTypeId="1" AcceptedAnswerId="3" Title="again" BODY',  # the same Id again
        'Id="2" PostTypeId="2" ParentId="1" Score="1" BODY',  # the chosen answer's row again
        'Id="4" PostTypeId="1" Title="other" BODY',
        'Id="5" PostTypeId="2" ParentId="4" Score="0" BODY',
    ]
    for params in ({}, {"answer": "none"}):
        (tmp_path / str(len(params))).mkdir()
        path = _posts(tmp_path / str(len(params)), rows)
        reader, stats, out, quarantined = read(path, **params)
        assert [(q.record, q.reason) for q in quarantined] == [(1, "duplicate_id")], params
        assert "question 1 appears again (line 5)" in quarantined[0].error
        assert sorted(r["provenance"]["record"] for r in out) == [1, 4]
        assert [r["turns"][0]["content"].split("\n")[0] for r in out if r["provenance"]["record"] == 1] == ["first"]
        assert len({r["id"] for r in out}) == len(out) == 2
        assert reader.report_extra["rows"] == len(rows) == stats.read + sum(skipped(reader).values()), params
    assert skipped(reader) == {"answer_not_used": 3}
    (tmp_path / "x").mkdir()
    reader, _, out, _ = read(_posts(tmp_path / "x", rows))
    assert skipped(reader) == {"answer_paired": 2, "answer_duplicate": 1}
    assert json.loads(next(r for r in out if r["provenance"]["record"] == 1)["meta"])["answer_id"] == 2
