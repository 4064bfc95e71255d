"""score.llm_judge (LLMJudgeScorer): parsing judge answers, the retry, quarantine, and the runner's books."""

from __future__ import annotations

import json

import polars as pl
import pytest

from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan
from curate.steps.base import StepContext
from curate.steps.score.llm_judge import RUBRIC, LLMJudgeScorer, judge_messages, middle_cut, parse_judgement

from ._fake_llm import FakeLLM, Reply


@pytest.fixture
def fake():
    with FakeLLM() as f:
        yield f


def ctx_for(tmp_path):
    run = tmp_path / "runs" / "r" / "1"
    return StepContext(run_dir=run, work_dir=run / "01_score_llm_judge", progress=False)


@pytest.mark.parametrize(("text", "want"), [
    ('{"score": 8, "reason": "Correct and clear."}', (8.0, "Correct and clear.")),
    ('```json\n{"score": 3, "reason": "Off topic."}\n```', (3.0, "Off topic.")),
    ('Here is my rating: {"score": "7", "reason": "Good\n but long."} Hope it helps', (7.0, "Good but long.")),
    ('{"score": 9.5}', (9.5, "")),
    ('{"note": 1} then {"score": 2, "reason": "Wrong."}', (2.0, "Wrong.")),
    ('{"rating": 6, "explanation": "Partly right."}', (6.0, "Partly right.")),
])
def test_parse_judgement_accepts_json_in_common_wrappings(text, want):
    assert parse_judgement(text) == want


@pytest.mark.parametrize("text", [
    "", "8/10, good answer", '{"score": 11, "reason": "x"}', '{"score": 0}', '{"score": true}',
    '{"score": "high"}', '{"score": NaN}', "{score: 8}", '["score", 8]', '{"reason": "no score"}',
])
def test_parse_judgement_refuses_what_is_not_a_valid_judgement(text):
    assert parse_judgement(text) is None


def test_judge_prompt_holds_rubric_conversation_and_cut_turns():
    turns = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "x" * 500},
             {"role": "user", "content": "follow-up"}]
    msgs = judge_messages(turns, RUBRIC, 200)
    assert msgs is not None
    body = msgs[1]["content"]
    assert RUBRIC in body and "USER: Q?" in body and "[... 300 characters omitted ...]" in body
    assert "follow-up" not in body  # only up to the last assistant turn
    assert judge_messages([{"role": "user", "content": "Q?"}], RUBRIC, 200) is None
    assert middle_cut("abcdef", 4) == "ab\n[... 2 characters omitted ...]\nef"


def test_malformed_answer_is_retried_once_then_quarantined(tmp_path, fake, batch_of):
    def reply(body, n):
        conv = body["messages"][1]["content"]
        retried = len(body["messages"]) > 2
        if "good" in conv:
            return Reply(text='{"score": 9, "reason": "Right."}')
        if "fixable" in conv:
            return Reply(text='{"score": 4, "reason": "Vague."}' if retried else "I'd say about a four.")
        return Reply(text="Sure! The answer is fine." if not retried else "Still no JSON here.")

    fake.reply = reply
    step = LLMJudgeScorer.from_params(llm=fake.llm())
    step.prepare(ctx_for(tmp_path))
    out = step.judge([b for b in batch_of("user: good || assistant: a", "user: fixable || assistant: b",
                                          "user: hopeless || assistant: c", "user: no answer")["turns"].to_list()])
    assert out[0] == (9.0, "Right.", None) and out[1] == (4.0, "Vague.", None)
    assert out[2][0] is None and out[2][2].startswith("judge_unparsed: no valid JSON score")
    assert out[3] == (None, None, None)
    assert step.report_extra["judge_retries"] == 2 and step.report_extra["judge_unparsed"] == 1
    assert step.report_extra["no_answer"] == 1
    assert len(fake.requests) == 5
    assert fake.requests[0]["temperature"] == 0.0


def test_on_unparsed_keep_leaves_a_null_score(tmp_path, fake, batch_of):
    fake.reply = lambda body, n: Reply(text="no idea")
    step = LLMJudgeScorer.from_params(llm=fake.llm(), on_unparsed="keep")
    step.prepare(ctx_for(tmp_path))
    assert step.judge(batch_of("user: q || assistant: a")["turns"].to_list()) == [(None, None, None)]


def test_judge_in_a_run_then_filter_score(tmp_path, fake):
    src = tmp_path / "a.jsonl"
    rows = [("Add 2 and 2", "4", '{"score": 9, "reason": "Correct."}'),
            ("Capital of France?", "Berlin", '{"score": 2, "reason": "Wrong city."}'),
            ("Name a colour", "Blue", "garbage"),
            ("Say hi", "Hi!", '{"score": 7, "reason": "Fine."}')]
    src.write_text("".join(json.dumps({"instruction": q, "input": "", "output": a}) + "\n" for q, a, _ in rows))
    answers = {q: j for q, _, j in rows}

    def reply(body, n):
        conv = body["messages"][1]["content"]
        return Reply(text=next(j for q, j in answers.items() if q in conv))

    fake.reply = reply
    recipe = {"name": "judge", "sources": [{"id": "a", "format": "alpaca", "path": str(src)}],
              "steps": [{"use": "score.llm_judge", "params": {"llm": fake.llm()}},
                        {"use": "filter.score", "params": {"column": "score_llm_judge.score", "min_score": 5}}],
              "limits": {"max_quarantine_frac": 0.5}}
    res = run_pipeline(build_plan(recipe), tmp_path / "runs" / "judge" / "1", progress=False)
    judge, filt = (next(s for s in res.report["steps"] if s["step_id"] == k)
                   for k in ("score_llm_judge", "filter_score"))
    assert judge["quarantined"] == {"judge_unparsed": 1} and judge["n_out"] == 3
    assert judge["extra"]["llm_requests"] == 5 and judge["extra"]["mean_score"] == 6.0
    assert filt["rejected"] == {"score_below_min": 1}
    kept = pl.read_parquet(res.run_dir / "02_filter_score" / "kept.parquet")
    assert sorted(kept["score_llm_judge.reason"].to_list()) == ["Correct.", "Fine."]
    q = [json.loads(x) for x in (res.run_dir / "quarantine" / "01_score_llm_judge.jsonl").read_text().splitlines()]
    assert [e["reason"] for e in q] == ["judge_unparsed"]
