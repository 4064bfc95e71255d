"""The generate kind: batch steps that write text with a model through :class:`curate.llm.client.LLMClient`.

A generator is a Transform (the runner drives it batch by batch and counts added rows) that runs in
the main process only (``parallel = False``: its client, cache and concurrency live in the step), opens
its client in ``prepare`` (the endpoint is checked before the first record) and adds the client's
totals (``llm_requests``, ``llm_cache_hits``, ``llm_prompt_tokens``, ...) to each batch's report extras.
A request that fails leaves ``generation_error`` / ``generation_timeout`` on its record, which the runner
quarantines; an answer cut at ``max_tokens`` is rejected as ``truncated_generation`` unless kept by a param.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from curate.llm.step import LLMStepMixin
from curate.steps.base import REJECT_COLUMN, StepContext, Transform

__all__ = ["REJECT_COLUMN", "Generator", "as_messages", "prompt_end"]


class Generator(LLMStepMixin, Transform):
    kind: ClassVar[str] = "generate"
    parallel: ClassVar[bool] = False

    def prepare(self, ctx: StepContext) -> None:
        self.open_client(ctx)


def prompt_end(turns: Sequence[Mapping[str, Any]], scope: str) -> int | None:
    """Index of the user turn a generated answer follows: the first (``first_user``) or the last
    (``conversation``) user turn; None when there is no user turn."""
    users = [i for i, t in enumerate(turns) if t["role"] == "user"]
    if not users:
        return None
    return users[0] if scope == "first_user" else users[-1]


def as_messages(turns: Sequence[Mapping[str, Any]], system_prompt: str | None = None) -> list[dict[str, str]]:
    """Turns as OpenAI chat messages; ``system_prompt`` leads when the turns have no system turn."""
    msgs = [{"role": str(t["role"]), "content": str(t["content"] or "")} for t in turns]
    if system_prompt and not any(m["role"] == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs
