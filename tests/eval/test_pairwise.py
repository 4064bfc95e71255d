"""The pairwise judge against a stdlib OpenAI-compatible stub: position swapping cancels a judge that always picks
position 1, a judge that prefers the right content gives wins, malformed answers are errors; the whole command with
answers generated locally and read back from files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from steps._fake_llm import FakeLLM, Reply
from train._data import FACTS

from curate.cli import main
from curate.eval.data import Prompt
from curate.eval.pairwise import combine, judge_pairs, parse_verdict, tally
from curate.llm.client import LLMClient
from curate.llm.config import LLMConfig, Sampling

TRUTH = dict(FACTS)
_PARTS = re.compile(
    r"\[User Question\]\n(?P<q>.*?)\n\n\[The Start of Assistant A's Answer\]\n(?P<a>.*?)\n\[The End of Assistant A's Answer\]"
    r"\n\n\[The Start of Assistant B's Answer\]\n(?P<b>.*?)\n\[The End of Assistant B's Answer\]", re.DOTALL)


def shown(body: dict[str, Any]) -> tuple[str, str, str]:
    m = _PARTS.search(body["messages"][-1]["content"])
    assert m, body
    return m["q"], m["a"], m["b"]


def first_position(body: dict[str, Any], n: int) -> Reply:
    return Reply(text="Assistant A's answer is presented first, so it is better. [[A]]")


def knows_the_facts(body: dict[str, Any], n: int) -> Reply:
    q, a, b = shown(body)
    ref = TRUTH.get(q)
    verdict = "A" if a == ref and b != ref else "B" if b == ref and a != ref else "C"
    return Reply(text=f"Comparing with what I know... [[{verdict}]]")


def prompts() -> list[Prompt]:
    return [Prompt(f"p{i}", [{"role": "user", "content": q}]) for i, (q, _) in enumerate(FACTS)]


def judge(fake: FakeLLM, tmp_path: Path) -> LLMClient:
    return LLMClient(LLMConfig(**fake.llm()), cache_path=tmp_path / "cache.sqlite")


SAMPLING = Sampling(temperature=0.0, max_tokens=64)
RIGHT = [a for _, a in FACTS]
WRONG = ["I do not know."] * len(FACTS)


def test_parse_verdict() -> None:
    assert parse_verdict("long reasoning... [[A]]") == "A"
    assert parse_verdict("[[ B ]]") == "B" and parse_verdict("[[C]]") == "tie"
    assert parse_verdict("[[A]] is tempting but [[A]]") == "A"  # repeated, same verdict
    for bad in ("[[A]] ... no, [[B]]", "A is better", "", None, "[A]", "[[D]]"):
        assert parse_verdict(bad) is None, bad


def test_combine_orders() -> None:
    assert combine("A", "B") == ("a", True)  # a first, then a second: a both times
    assert combine("B", "A") == ("b", True)
    assert combine("A", "A") == ("tie", False)  # position 1 both times: the orders disagree
    assert combine("tie", "tie") == ("tie", True)
    assert combine("A", "tie") == ("tie", False)
    assert combine(None, "A") == ("error", False) and combine("B", None) == ("error", False)


def test_swapping_cancels_a_judge_that_always_prefers_position_one(fake: FakeLLM, tmp_path: Path) -> None:
    fake.reply = first_position
    with judge(fake, tmp_path) as client:
        results = judge_pairs(client, SAMPLING, prompts(), RIGHT, WRONG)
    t = tally("good", "bad", results)
    # without swapping this judge would hand every pair to whichever model is shown first
    assert (t.wins_a, t.wins_b, t.ties, t.inconsistent, t.errors) == (0, 0, 4, 4, 0)
    assert t.first_position_share == 1.0 and t.win_rate_a == 0.5
    assert [r.first + r.second for r in results] == ["AA"] * 4
    assert len(fake.requests) == 8  # each pair judged in both orders


def test_a_judge_that_prefers_the_right_content_gives_wins(fake: FakeLLM, tmp_path: Path) -> None:
    fake.reply = knows_the_facts
    with judge(fake, tmp_path) as client:
        results = judge_pairs(client, SAMPLING, prompts(), RIGHT, WRONG)
        t = tally("good", "bad", results)
        assert (t.wins_a, t.wins_b, t.ties, t.errors, t.win_rate_a) == (4, 0, 0, 0, 1.0)
        assert all(r.consistent for r in results) and t.first_position_share == 0.5
        flipped = tally("bad", "good", judge_pairs(client, SAMPLING, prompts(), WRONG, RIGHT))
        assert (flipped.wins_a, flipped.wins_b) == (0, 4)
        assert client.stats.cache_hits == 8  # the swapped call asked the same 8 questions again


def test_malformed_judge_answers_are_errors_not_ties(fake: FakeLLM, tmp_path: Path) -> None:
    def messy(body: dict[str, Any], n: int) -> Reply:
        q, _, _ = shown(body)
        if q == FACTS[0][0]:
            return Reply(text="Both answers have merit.")  # no verdict
        if q == FACTS[1][0]:
            return Reply(text="[[A]] at first sight, but on reflection [[B]]")  # two verdicts
        if q == FACTS[2][0]:
            return Reply(status=400)  # the endpoint refuses
        return knows_the_facts(body, n)

    fake.reply = messy
    with judge(fake, tmp_path) as client:
        results = judge_pairs(client, SAMPLING, prompts(), RIGHT, WRONG)
    assert [r.outcome for r in results] == ["error", "error", "error", "a"]
    assert results[0].first.startswith("no_verdict: 'Both answers") and "HTTP 400" in results[2].first
    t = tally("good", "bad", results)
    assert (t.wins_a, t.errors, t.ties) == (1, 3, 0) and t.win_rate_a == 1.0


def test_command_generates_answers_locally_then_reuses_them(pair_run: dict[str, Any], fake: FakeLLM, tmp_path: Path,
                                                            capsys: Any) -> None:
    fake.reply = knows_the_facts
    out = tmp_path / "eval"
    common = ["eval", "--base", str(pair_run["model"]), "--adapter", f"curated={pair_run['curated']}",
              "--adapter", f"uncurated={pair_run['uncurated']}", "--data", str(pair_run["data"]),
              "--judge-url", fake.url, "--judge-model", "judge", "--max-new-tokens", "12", "--output", str(out)]
    assert main(common) == 0
    printed = capsys.readouterr().out
    right = [json.loads(x)["answer"] for x in (out / "answers" / "curated.jsonl").read_text().splitlines()]
    wrong = [json.loads(x)["answer"] for x in (out / "answers" / "uncurated.jsonl").read_text().splitlines()]
    # greedy answers of the memorising LoRAs (a tiny model may mix up a question; the judge decides on content)
    assert right[0] == "The sky is blue." and wrong[0] == "The sky is green."
    wins = sum(1 for r, w, t in zip(right, wrong, RIGHT) if r == t != w)
    assert wins >= 3 and not any(w == t != r for r, w, t in zip(right, wrong, RIGHT))
    assert f"curated vs uncurated: {wins} wins, 0 losses, {4 - wins} ties" in printed
    report = json.loads((out / "eval.json").read_text())
    pw = report["pairwise"]
    assert (pw["model_a"], pw["model_b"], pw["wins_a"], pw["wins_b"]) == ("curated", "uncurated", wins, 0)
    assert pw["judge"]["requests"] == 8 and report["perplexity"]["models"][1]["name"] == "curated"
    md = (out / "eval.md").read_text()
    assert "| curated wins | uncurated wins |" in md and f"| {wins} | 0 | {4 - wins} | 0 | 0 |" in md

    # the saved answers, read back: no model is loaded, and the judge's answers come from the cache
    out2 = tmp_path / "again"
    argv = ["eval", "--no-perplexity", "--data", str(pair_run["data"]), "--pair", "curated,uncurated",
            "--answers", f"curated={out / 'answers' / 'curated.jsonl'}",
            "--answers", f"uncurated={out / 'answers' / 'uncurated.jsonl'}", "--judge-url", fake.url,
            "--judge-model", "judge", "--judge-cache", str(out / "llm_cache.sqlite"), "--output", str(out2)]
    n_before = len(fake.requests)
    assert main(argv) == 0
    again = json.loads((out2 / "eval.json").read_text())["pairwise"]
    assert again["wins_a"] == wins and again["judge"]["cache_hits"] == 8 and len(fake.requests) == n_before


@pytest.mark.parametrize("extra, words", [
    (["--judge-url", "http://127.0.0.1:9/v1"], "unreachable"),
    (["--pair", "curated,nobody"], "nobody is neither a model"),
    (["--answers", "curated=/nonexistent.jsonl"], "answer file /nonexistent.jsonl: not found"),
    (["--judge-url", "ftp://x"], "not an http(s) URL"),
])
def test_judge_refusals_are_one_line(pair_run: dict[str, Any], fake: FakeLLM, tmp_path: Path, capsys: Any,
                                     extra: list[str], words: str) -> None:
    argv = ["eval", "--no-perplexity", "--base", str(pair_run["model"]), "--adapter", f"curated={pair_run['curated']}",
            "--data", str(pair_run["data"]), "--judge-url", fake.url, "--judge-model", "judge", "--pair",
            "curated,base", "--output", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and words in err, err
