"""LLMClient and RequestCache against the stdlib fake endpoint: cache, concurrency, keys, accounting."""

from __future__ import annotations

import sqlite3

import pytest
from steps._fake_llm import FakeLLM, Reply

from curate.errors import ConfigError
from curate.llm import client as client_mod
from curate.llm.cache import RequestCache, default_cache_path, request_key
from curate.llm.client import LLMClient, LLMStats
from curate.llm.config import LLMConfig, Sampling

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake():
    with FakeLLM() as f:
        yield f


def make(fake, tmp_path, **kw):
    cfg = LLMConfig(**fake.llm(**kw.pop("llm", {})))
    return LLMClient(cfg, cache_path=tmp_path / "cache.sqlite", **kw)


def test_cache_answers_a_second_call_without_a_request(fake, tmp_path):
    with make(fake, tmp_path, seed=3) as c:
        first = c.complete([MSG, [{"role": "user", "content": "yo"}]], Sampling(max_tokens=5))
    assert [a.text for a in first] == ["answer: hi", "answer: yo"] and len(fake.requests) == 2
    with make(fake, tmp_path, seed=3) as c:
        again = c.complete([MSG], Sampling(max_tokens=5))
        assert again[0].text == "answer: hi" and again[0].cached
        assert c.stats.requests == 0 and c.stats.cache_hits == 1 and c.stats.saved_completion_tokens == 5
        c.complete([MSG], Sampling(max_tokens=6))  # other sampling: another request
    with make(fake, tmp_path, seed=4) as c:
        c.complete([MSG], Sampling(max_tokens=5))  # another seed: another request
    assert len(fake.requests) == 4
    db = sqlite3.connect(tmp_path / "cache.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4


def test_errors_are_not_cached(fake, tmp_path):
    fake.reply = lambda body, n: Reply(status=500) if n == 1 else Reply(text="ok")
    with make(fake, tmp_path) as c:
        assert c.complete([MSG], Sampling())[0].error.startswith("generation_error: HTTP 500")
        assert c.complete([MSG], Sampling())[0].text == "ok"
    assert len(fake.requests) == 2


def test_request_key_covers_endpoint_model_messages_sampling():
    base = request_key("http://h/v1", "m", MSG, {"temperature": 0.7})
    assert base == request_key("http://h/v1/", "m", [{"role": "user", "content": "hi", "name": "x"}],
                               {"temperature": 0.7})
    others = [request_key("http://g/v1", "m", MSG, {"temperature": 0.7}),
              request_key("http://h/v1", "m2", MSG, {"temperature": 0.7}),
              request_key("http://h/v1", "m", [{"role": "user", "content": "hi!"}], {"temperature": 0.7}),
              request_key("http://h/v1", "m", MSG, {"temperature": 0.8})]
    assert len({base, *others}) == 5


def test_concurrency_is_bounded_and_used(fake, tmp_path):
    fake.reply = lambda body, n: Reply(text="x", delay_s=0.2)
    with make(fake, tmp_path, llm={"max_concurrency": 3}) as c:
        out = c.complete([[{"role": "user", "content": str(i)}] for i in range(9)], Sampling())
    # the server saw three requests in flight at once, never more (no wall-clock assertion: CI is loaded)
    assert all(a.ok for a in out) and fake.max_in_flight == 3


def test_identical_requests_in_one_call_are_sent_once(fake, tmp_path):
    with make(fake, tmp_path) as c:
        out = c.complete([MSG, MSG, MSG], Sampling())
        assert [a.text for a in out] == ["answer: hi"] * 3
        assert c.stats.requests == 1 and c.stats.cache_hits == 2
    assert len(fake.requests) == 1


def test_api_key_comes_from_the_named_variable(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("CURATE_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="CURATE_TEST_KEY, but that environment variable is not set"):
        make(fake, tmp_path, llm={"api_key_env": "CURATE_TEST_KEY"})
    monkeypatch.setenv("CURATE_TEST_KEY", "s3cret")
    with make(fake, tmp_path, llm={"api_key_env": "CURATE_TEST_KEY"}) as c:
        c.complete([MSG], Sampling())
    assert {k.lower(): v for k, v in fake.headers[0].items()}["authorization"] == "Bearer s3cret"
    with pytest.raises(ValueError, match="not an environment variable name"):
        LLMConfig(model="m", api_key_env="sk-live key")


def test_a_dead_endpoint_fails_the_rest_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(client_mod, "DOWN_AFTER", 2)
    cfg = LLMConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, max_concurrency=1, timeout_s=2)
    with LLMClient(cfg, backoff_base_s=0.01) as c:
        out = c.complete([[{"role": "user", "content": str(i)}] for i in range(5)], Sampling())
    assert all(a.error and a.error.startswith("generation_error") for a in out)
    assert sum("is down" in (a.error or "") for a in out) >= 3
    assert c.stats.errors == 5 and c.stats.attempts <= 3


def test_stats_add_up_and_report_as_extras():
    a, b = LLMStats(requests=2, prompt_tokens=10, seconds=1.5), LLMStats(requests=1, cache_hits=4, seconds=0.25)
    a.add(b)
    ex = a.to_extra()
    assert ex["llm_requests"] == 3 and ex["llm_cache_hits"] == 4 and ex["llm_seconds"] == 1.75
    assert all(isinstance(v, float) for v in ex.values())


def test_progress_bar_counts_requests(fake, tmp_path, capsys):
    with make(fake, tmp_path, progress=True, desc="gen") as c:
        c.complete([[{"role": "user", "content": str(i)}] for i in range(3)], Sampling())
    err = capsys.readouterr().err
    assert "gen requests" in err and ("req/s" in err or "s/req" in err)


def test_default_cache_sits_beside_the_run(tmp_path):
    assert default_cache_path(tmp_path / "runs" / "x" / "2026") == (tmp_path / "runs" / "x" / "llm_cache.sqlite")
    cache = RequestCache(tmp_path / "deep" / "c.sqlite")
    assert cache.get_many(["nope"]) == {} and cache.count() == 0
    cache.close()
