"""What every LLM step shares: the ``llm:`` and cache parameters, opening the client, the fingerprint.

A step that calls a model inherits :class:`LLMStepParams` for its ``Params`` and mixes in
:class:`LLMStepMixin` before its kind's base class. ``prepare`` opens the client and checks the endpoint
before the first record (an unreachable endpoint fails the step at once, naming the URL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from curate.llm.cache import default_cache_path
from curate.llm.client import LLMClient
from curate.llm.config import LLMConfig
from curate.steps.base import StepContext, StepParams

# llm fields that change speed or access, never an answer: left out of the step fingerprint, so
# changing them does not recompute a finished step.
_SPEED_ONLY = ("api_key_env", "max_concurrency", "timeout_s", "max_retries")


class LLMStepParams(StepParams):
    llm: LLMConfig = Field(
        description="The endpoint: {base_url, model, api_key_env, max_concurrency, timeout_s, max_retries} "
        "(see docs/llm.md)."
    )
    cache_path: str | None = Field(
        None,
        description="Request cache (SQLite); null = llm_cache.sqlite beside the run directory "
        "(runs/<name>/llm_cache.sqlite), shared by every run of the recipe.",
    )
    use_cache: bool = Field(True, description="Read and write the request cache (false: ask the endpoint every time).")


class LLMStepMixin:
    """Mixed in before the kind's base class (``class X(LLMStepMixin, Transform)``)."""

    params: Any
    id: str
    seed: int
    _client: LLMClient | None = None

    def open_client(self, ctx: StepContext) -> LLMClient:
        """Open the client for this run (cache beside the run) and check the endpoint. Raises EndpointError."""
        p = self.params
        cache: Path | None = None
        if p.use_cache:
            cache = Path(p.cache_path).expanduser() if p.cache_path else default_cache_path(ctx.run_dir)
        client = LLMClient(p.llm, cache_path=cache, seed=self.seed, progress=ctx.progress, desc=self.id)
        try:
            client.check()
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    @property
    def client(self) -> LLMClient:
        if self._client is None:
            from curate.errors import ConfigError

            raise ConfigError(f"{self.id}: the LLM client is opened by prepare(ctx), which runs before the first "
                              "record of a run; call step.prepare(ctx) first")
        return self._client

    def llm_totals(self) -> dict[str, float]:
        """The client's totals now (``llm_requests``, ...): take them before a batch, pass them to llm_delta after."""
        return self.client.stats.to_extra()

    def llm_delta(self, before: dict[str, float]) -> dict[str, float]:
        """The client's totals since ``before``: one batch's share, which the runner adds up over batches."""
        return {k: round(v - before.get(k, 0.0), 3) for k, v in self.llm_totals().items()}

    def fingerprint(self) -> dict[str, Any]:
        fp: dict[str, Any] = super().fingerprint()  # type: ignore[misc]
        params = dict(fp["params"])
        params["llm"] = {k: v for k, v in params["llm"].items() if k not in _SPEED_ONLY}
        for k in ("cache_path", "use_cache"):
            params.pop(k, None)
        fp["params"] = params
        return fp
