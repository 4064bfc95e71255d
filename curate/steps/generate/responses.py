"""``generate.responses``: answer each conversation's prompt with a model you run (GPT4All's distillation)."""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field

from curate.llm.client import TRUNCATED
from curate.llm.config import Sampling
from curate.llm.step import LLMStepParams
from curate.schema import ERROR_COLUMN, TURN
from curate.steps.base import with_errors
from curate.steps.clean._text import rehash
from curate.steps.generate.base import REJECT_COLUMN, Generator, as_messages, prompt_end
from curate.steps.registry import register


@register("generate.responses")
class ResponseGenerator(Generator):
    """Write a model's answer as the final assistant turn of each conversation (GPT4All's distillation step).

    The prompt is the first user turn (``prompt: first_user``, GPT4All's single prompts) or the
    conversation up to its last user turn (``prompt: conversation``), with any system turns before it.
    The conversation then ends with the new answer: turns after the prompt's answer are dropped, as
    they followed the old answer. ``mode: fill`` answers only conversations whose answer is missing or
    blank (prompt-only records, e.g. ``read.stackexchange`` with ``answer: none``); ``mode: replace``
    answers every one. Per record it writes ``<id>.model``, ``<id>.finish_reason``,
    ``<id>.prompt_tokens`` and ``<id>.completion_tokens`` (null where nothing was generated); the
    sampling parameters are in the run's spec.yaml and the dataset card. Requests go through the
    request cache, so a rerun or a resumed run asks the endpoint nothing twice.

    Reasons: truncated_generation (the answer hit ``max_tokens``; ``keep_truncated: true`` keeps it).
    Quarantined: generation_error, generation_timeout (after the retries), no_user_turn, empty_prompt.
    """

    class Params(LLMStepParams):
        prompt: Literal["first_user", "conversation"] = Field(
            "first_user", description="What the model answers: the first user turn, or the conversation up to "
            "its last user turn."
        )
        mode: Literal["fill", "replace"] = Field(
            "fill", description="fill: answer only conversations without a (non-blank) answer; replace: answer all."
        )
        system_prompt: str | None = Field(
            None, description="System message sent first when the conversation has none (not written to the record)."
        )
        sampling: Sampling = Field(
            default_factory=Sampling,
            description="temperature, top_p, max_tokens, stop; the run's seed is sent as `seed`.",
        )
        keep_truncated: bool = Field(
            False, description="Keep answers cut at max_tokens (finish_reason length) instead of rejecting them."
        )

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        p = self.params
        client = self.client
        before = self.llm_totals()
        rows: list[list[dict[str, Any]] | None] = batch["turns"].to_list()
        n = len(rows)
        errors: list[str | None] = [None] * n
        todo: list[tuple[int, int]] = []  # (row, prompt end)
        requests: list[list[dict[str, str]]] = []
        skipped = 0
        for i, turns in enumerate(rows):
            turns = turns or []
            end = prompt_end(turns, p.prompt)
            if end is None:
                errors[i] = "no_user_turn: the conversation has no user turn to answer"
                continue
            if not (turns[end]["content"] or "").strip():
                errors[i] = "empty_prompt: the user turn to answer is blank"
                continue
            if p.mode == "fill" and _has_answer(turns, end):
                skipped += 1
                continue
            todo.append((i, end))
            requests.append(as_messages(turns[: end + 1], p.system_prompt))
        answers = client.complete(requests, p.sampling)
        new_turns = list(rows)
        changed = [False] * n
        model: list[str | None] = [None] * n
        finish: list[str | None] = [None] * n
        ptok: list[int | None] = [None] * n
        ctok: list[int | None] = [None] * n
        reject: list[str | None] = [None] * n
        generated = truncated_kept = 0
        for (i, end), ans in zip(todo, answers, strict=True):
            if not ans.ok:
                errors[i] = ans.error
                continue
            turns = rows[i] or []
            new_turns[i] = [*turns[: end + 1], {"role": "assistant", "content": ans.text or ""}]
            changed[i] = True
            model[i], finish[i] = p.llm.model, ans.finish_reason
            ptok[i], ctok[i] = ans.prompt_tokens, ans.completion_tokens
            generated += 1
            if ans.truncated:
                if p.keep_truncated:
                    truncated_kept += 1
                else:
                    reject[i] = TRUNCATED
        out = batch.with_columns(pl.Series("turns", new_turns, dtype=pl.List(TURN)))
        out = out.with_columns(
            rehash(out, pl.Series(changed, dtype=pl.Boolean)),
            pl.Series(f"{self.id}.model", model, dtype=pl.Utf8),
            pl.Series(f"{self.id}.finish_reason", finish, dtype=pl.Utf8),
            pl.Series(f"{self.id}.prompt_tokens", ptok, dtype=pl.Int64),
            pl.Series(f"{self.id}.completion_tokens", ctok, dtype=pl.Int64),
        )
        if any(r is not None for r in reject):
            out = out.with_columns(pl.Series(REJECT_COLUMN, reject, dtype=pl.Utf8))
        out = with_errors(out, pl.Series(ERROR_COLUMN, errors, dtype=pl.Utf8))
        self.report_extra.update(self.llm_delta(before))
        self.report_extra.update({"generated": float(generated), "kept_answer": float(skipped),
                                  "truncated_kept": float(truncated_kept)})
        return out


def _has_answer(turns: list[dict[str, Any]], end: int) -> bool:
    nxt = turns[end + 1] if end + 1 < len(turns) else None
    return nxt is not None and nxt["role"] == "assistant" and bool((nxt["content"] or "").strip())

