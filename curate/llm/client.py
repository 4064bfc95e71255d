"""One client for OpenAI-compatible endpoints: concurrency, retries with jitter, the request cache, accounting.

Built on the ``openai`` package with its own retries turned off (``max_retries=0``): the client here
retries itself so that every retry, timeout and error is counted in the step report, a request that
still fails becomes a per-record error string (never an exception), and an endpoint that stops answering
altogether fails the remaining requests at once instead of waiting out every retry of every record.

    client = LLMClient(config, cache_path=default_cache_path(ctx.run_dir), seed=13)
    client.check()                                   # fails at once, naming the URL, when unreachable
    answers = client.complete([[{"role": "user", "content": "Hi"}]], Sampling(max_tokens=64))
    step.report_extra.update(client.stats.to_extra())
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Self

from curate.errors import ConfigError
from curate.llm.cache import CachedAnswer, RequestCache, request_key
from curate.llm.config import LLMConfig, Sampling

Message = Mapping[str, str]
# Reasons a failed request leaves on its record (quarantine reason = the text before the first colon).
GENERATION_ERROR = "generation_error"
GENERATION_TIMEOUT = "generation_timeout"
TRUNCATED = "truncated_generation"
_RETRY_STATUS = frozenset({408, 409, 425, 429})
# After this many requests in a row could not even connect, the endpoint counts as down: the remaining
# requests fail at once (and are quarantined) instead of each waiting out its retries.
DOWN_AFTER = 20


class EndpointError(ConfigError):
    """The endpoint cannot be used (unreachable, wrong URL, unknown model, key refused); names the URL."""


@dataclass
class Completion:
    """One answer, or why there is none (``error`` = ``"generation_error: ..."`` / ``"generation_timeout: ..."``)."""

    text: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def truncated(self) -> bool:
        """The answer was cut at ``max_tokens`` (``finish_reason == "length"``)."""
        return self.finish_reason == "length"


@dataclass
class LLMStats:
    """Totals of one client (or one step): all additive, so per-batch figures can be summed."""

    requests: int = 0  # distinct requests sent to the endpoint (retries apart)
    attempts: int = 0  # HTTP calls, retries included
    retries: int = 0
    cache_hits: int = 0  # requests answered from the cache (or by an identical request of the same call)
    errors: int = 0  # requests that failed after their retries (timeouts included)
    timeouts: int = 0
    truncated: int = 0  # answers cut at max_tokens
    prompt_tokens: int = 0  # as the endpoint's `usage` reports them, for requests sent
    completion_tokens: int = 0
    saved_prompt_tokens: int = 0  # tokens of cache hits: what the cache saved
    saved_completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: LLMStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_extra(self, prefix: str = "llm_") -> dict[str, float]:
        """For ``Step.report_extra``: ``llm_requests``, ``llm_cache_hits``, ``llm_prompt_tokens``, ..."""
        return {f"{prefix}{k}": float(round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _short(text: object, n: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= n else s[: n - 3] + "..."


class LLMClient:
    """Chat completions against one endpoint and model; see the module docstring."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        cache_path: str | Path | None = None,
        seed: int | None = None,
        progress: bool = False,
        desc: str = "llm",
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 20.0,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise ConfigError("LLM steps need the openai client: pip install 'curate[llm]'") from None
        self.config = config
        self.seed = seed
        self.progress = progress
        self.desc = desc
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.stats = LLMStats()
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key(), max_retries=0, timeout=config.timeout_s
        )
        self.cache = RequestCache(cache_path) if cache_path is not None else None
        self._lock = threading.Lock()
        self._conn_failures = 0  # connection failures in a row (after retries), across threads
        self._jitter = random.Random()  # only timing depends on it, never an answer

    # -- endpoint check -----------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Fail at once with a clear error when the endpoint cannot serve the model; return its model list.

        ``GET /models`` first; when the model is not listed (llama.cpp and others answer to any name, some
        servers have no list), one 1-token request decides.
        """
        url = self.config.base_url
        served: list[str] = []
        try:
            page = self._client.models.list()
            served = [str(m.id) for m in page.data]
        except self._openai.APIConnectionError as e:
            raise EndpointError(
                f"LLM endpoint {url} is unreachable ({_short(e.__cause__ or e, 160)}); start the server or fix "
                "llm.base_url (it includes the API prefix, e.g. http://localhost:8000/v1)"
            ) from None
        except self._openai.APIStatusError as e:
            if e.status_code in (401, 403):
                raise EndpointError(
                    f"LLM endpoint {url} refused the API key (HTTP {e.status_code}); check llm.api_key_env"
                ) from None
            served = []  # no model list here: the test request below decides
        except self._openai.APIError:
            served = []
        if self.config.model in served:
            return served
        probe = self._request([{"role": "user", "content": "Say OK."}], {"max_tokens": 1, "temperature": 0.0})
        if probe.ok:
            return served
        listed = f"; it lists: {', '.join(served[:10])}" if served else ""
        raise EndpointError(
            f"LLM endpoint {url}: a 1-token test request for model {self.config.model!r} failed "
            f"({probe.error}){listed}. Check llm.model and llm.base_url (most servers need the /v1 suffix)."
        )

    # -- completions --------------------------------------------------------------------------------
    def sampling_params(self, sampling: Sampling) -> dict[str, Any]:
        """The request's sampling fields (with the step's seed): sent with the request and hashed into its key."""
        d: dict[str, Any] = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                             "max_tokens": sampling.max_tokens}
        if sampling.stop:
            d["stop"] = list(sampling.stop)
        if self.seed is not None:
            d["seed"] = int(self.seed)
        return d

    def key(self, messages: Sequence[Message], sampling: Sampling) -> str:
        return request_key(self.config.base_url, self.config.model, messages, self.sampling_params(sampling))

    def complete(self, requests: Sequence[Sequence[Message]], sampling: Sampling) -> list[Completion]:
        """One Completion per request, in order. Cached answers cost nothing; failures come back as errors."""
        t0 = time.perf_counter()
        params = self.sampling_params(sampling)
        keys = [request_key(self.config.base_url, self.config.model, r, params) for r in requests]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        results: list[Completion | None] = [None] * len(requests)
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            hit = found.get(k)
            if hit is not None:
                results[i] = Completion(hit.text, hit.finish_reason, hit.prompt_tokens, hit.completion_tokens,
                                        cached=True)
            elif k in todo:
                todo[k].append(i)
            else:
                todo[k] = [i]
        if todo:
            self._send(requests, params, todo, results)
        out: list[Completion] = []
        for r in results:
            assert r is not None
            if r.cached:
                self.stats.cache_hits += 1
                self.stats.saved_prompt_tokens += r.prompt_tokens
                self.stats.saved_completion_tokens += r.completion_tokens
            if r.ok and r.truncated:
                self.stats.truncated += 1
            out.append(r)
        self.stats.seconds += time.perf_counter() - t0
        return out

    def _send(self, requests: Sequence[Sequence[Message]], params: dict[str, Any], todo: dict[str, list[int]],
              results: list[Completion | None]) -> None:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="req", desc=f"{self.desc} requests", disable=not self.progress,
                   leave=False)
        workers = min(self.config.max_concurrency, len(todo))
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="curate-llm") as pool:
                futures = {pool.submit(self._request, requests[idx[0]], params): k for k, idx in todo.items()}
                for fut in as_completed(futures):
                    k = futures[fut]
                    c = fut.result()
                    self.stats.requests += 1
                    self.stats.attempts += c.attempts
                    self.stats.retries += max(0, c.attempts - 1)
                    if c.ok:
                        self.stats.prompt_tokens += c.prompt_tokens
                        self.stats.completion_tokens += c.completion_tokens
                        if self.cache is not None:
                            assert c.text is not None
                            self.cache.put(k, self.config.model, CachedAnswer(
                                c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens))
                    else:
                        self.stats.errors += 1
                        self.stats.timeouts += int((c.error or "").startswith(GENERATION_TIMEOUT))
                    first, *dups = todo[k]
                    results[first] = c
                    for i in dups:  # the same request twice in one call: asked once, the rest are free
                        results[i] = Completion(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens,
                                                cached=c.ok, error=c.error)
                    bar.update(1)
                    bar.set_postfix(cached=self.stats.cache_hits, errors=self.stats.errors, refresh=False)
        finally:
            bar.close()

    def _request(self, messages: Sequence[Message], params: dict[str, Any]) -> Completion:
        """One request with retries; runs in a worker thread and never raises."""
        oa = self._openai
        url = self.config.base_url
        attempts = 0
        last = ""
        timed_out = False
        for attempt in range(self.config.max_retries + 1):
            if self._conn_failures >= DOWN_AFTER:
                return Completion(
                    error=f"{GENERATION_ERROR}: endpoint {url} is down ({self._conn_failures} requests in a row "
                    f"could not connect; last: {last or 'connection failed'})", attempts=attempts)
            attempts += 1
            retry_after: float | None = None
            try:
                resp = self._client.chat.completions.create(
                    model=self.config.model, messages=[dict(m) for m in messages],  # type: ignore[misc]
                    **params,
                )
            except oa.APITimeoutError:
                timed_out = True
                last = f"no answer within {self.config.timeout_s:g}s from {url}"
            except oa.APIConnectionError as e:
                timed_out = False
                last = f"cannot connect to {url}: {_short(e.__cause__ or e, 160)}"
                with self._lock:
                    self._conn_failures += 1
                if attempt < self.config.max_retries:
                    self._sleep(attempt, None)
                continue
            except oa.APIStatusError as e:
                timed_out = False
                last = f"HTTP {e.status_code} from {url}: {_short(e.message, 200)}"
                if e.status_code not in _RETRY_STATUS and e.status_code < 500:
                    return Completion(error=f"{GENERATION_ERROR}: {last}", attempts=attempts)
                retry_after = _retry_after(e.response.headers.get("retry-after"))
            except Exception as e:  # noqa: BLE001 - a malformed answer fails this request, never the run
                return Completion(error=f"{GENERATION_ERROR}: {type(e).__name__}: {_short(e, 200)}", attempts=attempts)
            else:
                with self._lock:
                    self._conn_failures = 0
                return _parse(resp, attempts)
            with self._lock:
                self._conn_failures = 0  # it answered (with an error): it is up
            if attempt < self.config.max_retries:
                self._sleep(attempt, retry_after)
        kind = GENERATION_TIMEOUT if timed_out else GENERATION_ERROR
        tries = f" (after {attempts} tries)" if attempts > 1 else ""
        return Completion(error=f"{kind}: {last}{tries}", attempts=attempts)

    def _sleep(self, attempt: int, retry_after: float | None) -> None:
        """Exponential backoff with full jitter; a server's Retry-After (capped at 60 s) is a lower bound."""
        delay = self._jitter.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2**attempt))
        if retry_after is not None:
            delay = max(delay, min(retry_after, 60.0))
        time.sleep(delay)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _parse(resp: Any, attempts: int) -> Completion:
    """A chat.completion response as a Completion; an answer without text is an error."""
    choices = getattr(resp, "choices", None) or []
    if not choices:
        return Completion(error=f"{GENERATION_ERROR}: the answer has no choices", attempts=attempts)
    choice = choices[0]
    text = getattr(getattr(choice, "message", None), "content", None)
    if not isinstance(text, str):
        return Completion(error=f"{GENERATION_ERROR}: the answer has no text content", attempts=attempts)
    usage = getattr(resp, "usage", None)
    return Completion(
        text=text,
        finish_reason=getattr(choice, "finish_reason", None),
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        attempts=attempts,
    )
