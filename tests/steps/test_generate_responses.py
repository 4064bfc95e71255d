"""generate.responses (ResponseGenerator) against the stdlib fake endpoint: prompts, modes, faults, the runner."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest

from curate.llm.client import EndpointError
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan
from curate.schema import ERROR_COLUMN, content_hash
from curate.steps.base import StepContext
from curate.steps.generate.base import REJECT_COLUMN
from curate.steps.generate.responses import ResponseGenerator

from ._fake_llm import FakeLLM, Reply


@pytest.fixture
def fake():
    with FakeLLM() as f:
        yield f


def ctx_for(tmp_path):
    run = tmp_path / "runs" / "r" / "1"
    return StepContext(run_dir=run, work_dir=run / "01_generate_responses", progress=False)


def prepared(tmp_path, fake, **params):
    step = ResponseGenerator.from_params(llm=fake.llm(), **params)
    step.prepare(ctx_for(tmp_path))
    return step


def texts(batch):
    return [[(t["role"], t["content"]) for t in turns] for turns in batch["turns"].to_list()]


def test_fill_answers_only_missing_and_writes_score_columns(tmp_path, fake, batch_of):
    step = prepared(tmp_path, fake, mode="fill")
    batch = batch_of("user: hi", "user: q || assistant: kept answer", "user: blank || assistant:  ",
                     "system: be brief || user: sys")
    out = step.apply(batch)
    assert texts(out) == [
        [("user", "hi"), ("assistant", "answer: hi")],
        [("user", "q"), ("assistant", "kept answer")],
        [("user", "blank"), ("assistant", "answer: blank")],
        [("system", "be brief"), ("user", "sys"), ("assistant", "answer: sys")],
    ]
    assert out["generate.responses.model"].to_list() == ["fake-model", None, "fake-model", "fake-model"]
    assert out["generate.responses.finish_reason"].to_list() == ["stop", None, "stop", "stop"]
    assert out["generate.responses.completion_tokens"].to_list() == [5, None, 5, 5]
    assert out["content_hash"][0] == content_hash(out["turns"][0].to_list())
    assert out["content_hash"][1] == batch["content_hash"][1]
    assert [{"role": "system", "content": "be brief"}, {"role": "user", "content": "sys"}] in [
        r["messages"] for r in fake.requests]
    assert step.report_extra["generated"] == 3 and step.report_extra["kept_answer"] == 1
    assert step.report_extra["llm_requests"] == 3 and step.report_extra["llm_prompt_tokens"] == 30


def test_replace_and_conversation_prompt(tmp_path, fake, batch_of):
    step = prepared(tmp_path, fake, mode="replace", prompt="conversation", system_prompt="Be kind.")
    out = step.apply(batch_of("user: a || assistant: old || user: b || assistant: old2 || user: c || assistant: x"))
    assert texts(out) == [[("user", "a"), ("assistant", "old"), ("user", "b"), ("assistant", "old2"),
                           ("user", "c"), ("assistant", "answer: c")]]
    assert fake.requests[0]["messages"][0] == {"role": "system", "content": "Be kind."}
    first = prepared(tmp_path, fake, mode="replace", prompt="first_user")
    out = first.apply(batch_of("user: a || assistant: old || user: b || assistant: old2"))
    assert texts(out) == [[("user", "a"), ("assistant", "answer: a")]]


def test_sampling_and_seed_are_sent(tmp_path, fake, batch_of):
    step = ResponseGenerator.from_params(llm=fake.llm(), sampling={"temperature": 0.2, "max_tokens": 7}, seed=13)
    step.prepare(ctx_for(tmp_path))
    step.apply(batch_of("user: hi"))
    body = fake.requests[0]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["model"]) == (0.2, 7, 13, "fake-model")


def test_truncated_answers_are_rejected_unless_kept(tmp_path, fake, batch_of):
    fake.reply = lambda body, n: Reply(text="cut off mid", finish_reason="length")
    out = prepared(tmp_path, fake).apply(batch_of("user: long please"))
    assert out[REJECT_COLUMN].to_list() == ["truncated_generation"]
    kept = prepared(tmp_path, fake, keep_truncated=True, use_cache=False)
    out = kept.apply(batch_of("user: long please"))
    assert REJECT_COLUMN not in out.columns and out["generate.responses.finish_reason"][0] == "length"
    assert kept.report_extra["truncated_kept"] == 1 and kept.report_extra["llm_truncated"] == 1


def test_no_user_turn_and_blank_prompt_are_quarantined(tmp_path, fake, batch_of):
    out = prepared(tmp_path, fake).apply(batch_of("assistant: alone", "user:  ", "user: ok"))
    assert [(e or "").split(":")[0] for e in out[ERROR_COLUMN].to_list()] == ["no_user_turn", "empty_prompt", ""]
    assert len(fake.requests) == 1


def test_server_errors_are_retried_then_quarantined(tmp_path, fake, batch_of):
    calls = {"n": 0}

    def flaky(body, n):
        calls["n"] += 1
        if "bad" in body["messages"][-1]["content"]:
            return Reply(status=500)
        return Reply(status=503) if calls["n"] <= 1 else Reply(text="fine")

    fake.reply = flaky
    step = ResponseGenerator.from_params(llm=fake.llm(max_retries=2, max_concurrency=1))
    step.prepare(ctx_for(tmp_path))
    step.client.backoff_base_s = 0.01
    out = step.apply(batch_of("user: good", "user: bad"))
    assert out[ERROR_COLUMN][0] is None and texts(out)[0][-1] == ("assistant", "fine")
    assert out[ERROR_COLUMN][1].startswith("generation_error: HTTP 500")
    assert "after 3 tries" in out[ERROR_COLUMN][1]
    assert step.report_extra["llm_errors"] == 1 and step.report_extra["llm_retries"] == 3


def test_rate_limit_honours_retry_after(tmp_path, fake, batch_of):
    fake.reply = lambda body, n: Reply(status=429, headers={"retry-after": "0.3"}) if n == 1 else Reply(text="ok")
    step = ResponseGenerator.from_params(llm=fake.llm(max_retries=1))
    step.prepare(ctx_for(tmp_path))
    t0 = time.perf_counter()
    out = step.apply(batch_of("user: hi"))
    assert time.perf_counter() - t0 >= 0.3
    assert texts(out)[0][-1] == ("assistant", "ok") and step.report_extra["llm_retries"] == 1


def test_stalled_server_times_out(tmp_path, fake, batch_of):
    fake.reply = lambda body, n: Reply(text="late", delay_s=2.0)
    step = ResponseGenerator.from_params(llm=fake.llm(timeout_s=0.3))
    step.prepare(ctx_for(tmp_path))
    out = step.apply(batch_of("user: hi"))
    assert out[ERROR_COLUMN][0].startswith("generation_timeout: no answer within 0.3s")
    assert step.report_extra["llm_timeouts"] == 1


def test_malformed_answer_is_an_error_not_a_crash(tmp_path, fake, batch_of):
    fake.reply = lambda body, n: Reply(raw=b"<html>proxy error</html>")
    out = prepared(tmp_path, fake).apply(batch_of("user: hi"))
    assert out[ERROR_COLUMN][0].startswith("generation_error")


def test_unreachable_endpoint_fails_at_prepare_naming_the_url(tmp_path):
    step = ResponseGenerator.from_params(llm={"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": 2})
    with pytest.raises(EndpointError, match=r"http://127.0.0.1:9/v1 is unreachable"):
        step.prepare(ctx_for(tmp_path))


def test_unknown_model_fails_at_prepare(tmp_path, fake):
    step = ResponseGenerator.from_params(llm={**fake.llm(), "model": "other"})
    with pytest.raises(EndpointError, match=r"model 'other' failed .*it lists: fake-model"):
        step.prepare(ctx_for(tmp_path))


def test_params_are_checked():
    with pytest.raises(ValueError, match="model"):
        ResponseGenerator.from_params(llm={"base_url": "http://x/v1"})
    with pytest.raises(ValueError, match="not an http"):
        ResponseGenerator.from_params(llm={"base_url": "localhost:8000", "model": "m"})
    with pytest.raises(ValueError, match="extra"):
        ResponseGenerator.from_params(llm={"model": "m", "temprature": 1})


def test_fingerprint_ignores_speed_only_settings():
    a = ResponseGenerator.from_params(llm={"model": "m", "max_concurrency": 1})
    b = ResponseGenerator.from_params(llm={"model": "m", "max_concurrency": 32, "timeout_s": 5}, cache_path="/x")
    c = ResponseGenerator.from_params(llm={"model": "m2"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_in_a_run_counts_balance_and_the_cache_makes_a_rerun_free(tmp_path, fake, monkeypatch):
    src = tmp_path / "prompts.jsonl"
    rows = [{"instruction": f"Question {i}?", "input": "", "output": ""} for i in range(6)]
    rows.append({"instruction": "Already answered", "input": "", "output": "yes"})
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")

    def reply(body, n):
        text = body["messages"][-1]["content"]
        if text == "Question 0?":
            return Reply(status=500)
        if text == "Question 1?":
            return Reply(text="cut", finish_reason="length")
        return Reply(text=f"A to {text}")

    fake.reply = reply
    recipe = {"name": "gen", "seed": 3, "sources": [{"id": "a", "format": "alpaca", "path": str(src)}],
              "steps": [{"use": "generate.responses", "params": {"llm": fake.llm()}}],
              "limits": {"max_quarantine_frac": 0.5}}
    res = run_pipeline(build_plan(recipe), tmp_path / "runs" / "gen" / "one", progress=False)
    rep = next(s for s in res.report["steps"] if s["step_id"] == "generate_responses")
    assert (rep["n_in"], rep["n_out"], rep["rejected"], rep["quarantined"]) == (
        7, 5, {"truncated_generation": 1}, {"generation_error": 1})
    assert rep["extra"]["llm_requests"] == 6 and rep["extra"]["kept_answer"] == 1
    t = res.report["totals"]
    assert t["read"] == t["kept"] + t["removed"] + t["quarantined"] == 8
    kept = pl.read_parquet(res.run_dir / "01_generate_responses" / "kept.parquet")
    assert sorted(kept["turns"].list.last().struct.field("content").to_list()) == [
        "A to Question 2?", "A to Question 3?", "A to Question 4?", "A to Question 5?", "yes"]
    assert (tmp_path / "runs" / "gen" / "llm_cache.sqlite").exists()
    n = len(fake.requests)
    again = run_pipeline(build_plan(recipe), tmp_path / "runs" / "gen" / "two", progress=False)
    rep2 = next(s for s in again.report["steps"] if s["step_id"] == "generate_responses")
    assert len(fake.requests) == n + 1  # only the failed request is asked again
    assert rep2["extra"]["llm_cache_hits"] == 5 and rep2["extra"]["llm_requests"] == 1


def test_an_unreachable_endpoint_stops_the_run_before_any_record(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"instruction": "hi", "input": "", "output": ""}) + "\n")
    recipe = {"name": "down", "sources": [{"id": "a", "format": "alpaca", "path": str(src)}],
              "steps": [{"use": "generate.responses",
                         "params": {"llm": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": 2}}}]}
    with pytest.raises(EndpointError, match="127.0.0.1:9"):
        run_pipeline(build_plan(recipe), tmp_path / "runs" / "down" / "1", progress=False)


def test_dataset_card_names_the_generating_model(tmp_path, fake):
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps({"instruction": f"Q{i}?", "input": "", "output": ""}) + "\n" for i in range(3)))
    out = tmp_path / "export"
    recipe = {"name": "card", "seed": 9, "sources": [{"id": "a", "format": "alpaca", "path": str(src)}],
              "steps": [{"use": "generate.responses",
                         "params": {"llm": fake.llm(), "sampling": {"temperature": 0.3, "max_tokens": 50}}},
                        {"use": "write.hub_dataset", "params": {"path": str(out)}}]}
    run_pipeline(build_plan(recipe), tmp_path / "runs" / "card" / "1", progress=False)
    card = (out / "README.md").read_text()
    assert ("3 assistant answers were written by the model `fake-model` (step `generate_responses`, "
            "generate.responses; temperature 0.3, top_p 1.0, max_tokens 50, seed 9)") in card


def test_gold_evaluation_measures_the_distill_recipes_filters_without_a_model():
    from pathlib import Path

    from curate.gold import batch_steps
    from curate.pipeline.spec import build_plan, read_yaml_file

    raw = read_yaml_file(Path(__file__).resolve().parents[2] / "pipelines" / "gpt4all-distill.yaml")
    keys = [s.key for s in batch_steps(build_plan(raw).steps)]
    assert "generate.responses" not in keys and "filter.refusal" in keys
