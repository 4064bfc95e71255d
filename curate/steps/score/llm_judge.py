"""``score.llm_judge``: a 1-10 quality score with a one-sentence reason from a judge model you run."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field

from curate.llm.config import Sampling
from curate.llm.step import LLMStepMixin, LLMStepParams
from curate.steps.base import GlobalResult, GlobalStep, StepContext
from curate.steps.registry import register

UNPARSED = "judge_unparsed"
CHUNK_ROWS = 2048  # records judged per slice of the input: bounds the prompts held in memory

SYSTEM = "You are a strict, careful reviewer of training data for an AI assistant."
# AlpaGasus (Chen et al. 2023) asked ChatGPT for an accuracy score per (instruction, input, response) and kept
# records scoring >= 4.5 of 5. Here: a 1-10 scale, every criterion spelled out, strict JSON out.
RUBRIC = """Score the assistant's final answer from 1 to 10:
10: correct, complete and helpful; follows every part of the request; clear and well written.
8-9: correct and helpful, with minor omissions or small style problems.
6-7: mostly correct but incomplete, vague, padded, or with a small factual error.
4-5: partly wrong, partly off-topic, or missing much of what was asked.
2-3: mostly wrong, misleading, or not an answer to the request (including refusing a harmless request).
1: empty, gibberish, broken by repetition, cut off mid-sentence, harmful, or entirely wrong.
Judge only the final assistant answer; earlier turns are context. Do not reward length for its own sake."""
ASK = 'Answer with one JSON object and nothing else: {"score": <integer 1-10>, "reason": "<one sentence>"}'
RETRY = ("That was not a JSON object of the required form. " + ASK.replace("Answer with", "Answer again with"))


def middle_cut(text: str, max_chars: int) -> str:
    """``text`` with its middle replaced by a marker when longer than ``max_chars`` (beginning and end kept)."""
    if len(text) <= max_chars:
        return text
    head = max_chars // 2
    tail = max_chars - head
    return f"{text[:head]}\n[... {len(text) - max_chars} characters omitted ...]\n{text[-tail:]}"


def judge_messages(turns: Sequence[Mapping[str, Any]], rubric: str, max_turn_chars: int) -> list[dict[str, str]] | None:
    """The judge request for a conversation up to its last assistant turn; None when it has no answer."""
    last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
    if last is None or not any(t["role"] == "user" for t in turns[:last]):
        return None
    lines = [f"{str(t['role']).upper()}: {middle_cut(str(t['content'] or ''), max_turn_chars)}"
             for t in turns[: last + 1]]
    body = (f"Rate the assistant's final answer in this conversation as a training example for an AI "
            f"assistant.\n\n{rubric}\n\nConversation:\n<<<\n" + "\n\n".join(lines) + f"\n>>>\n\n{ASK}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


def parse_judgement(text: str) -> tuple[float, str] | None:
    """(score, reason) from a judge's answer, or None when it holds no valid judgement.

    Accepts the JSON object alone, in a code fence or after some prose; the score may be a number or a
    numeric string and must lie in 1..10; a missing reason is read as "".
    """
    candidates = [m.group(1) for m in re.finditer(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)] + [text]
    for cand in candidates:
        for obj in _json_objects(cand):
            got = _judgement(obj)
            if got is not None:
                return got
    return None


def _json_objects(text: str) -> list[dict[str, Any]]:
    dec = json.JSONDecoder(strict=False)  # control characters (a raw newline) inside strings are common
    out: list[dict[str, Any]] = []
    i = text.find("{")
    while i != -1 and len(out) < 5:
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            out.append(obj)
        i = text.find("{", end)
    return out


def _judgement(obj: Mapping[str, Any]) -> tuple[float, str] | None:
    score = obj.get("score", obj.get("rating"))
    if isinstance(score, str):
        try:
            score = float(score.strip())
        except ValueError:
            return None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return None
    if not 1 <= score <= 10:
        return None
    reason = obj.get("reason", obj.get("explanation", ""))
    return float(score), " ".join(reason.split()) if isinstance(reason, str) else ""


@register("score.llm_judge")
class LLMJudgeScorer(LLMStepMixin, GlobalStep):
    """Score each conversation's final answer 1-10 with a one-sentence reason from a judge model you run.

    AlpaGasus-style (Chen et al. 2023, who kept records a judge scored >= 4.5 of 5): the judge reads the
    conversation up to its last assistant turn (long turns cut in the middle to ``max_turn_chars``),
    the rubric (``RUBRIC`` in this module, printed in docs/llm.md) and is asked for strict JSON
    ``{"score": <1-10>, "reason": "<one sentence>"}``. The answer is parsed leniently (a code fence or
    prose around the object is fine); an answer without a valid judgement is asked again once, with a
    reminder of the format. Writes ``<id>.score`` (Float64) and ``<id>.reason``; conversations without
    an assistant answer get null (``no_answer`` in the report). Decides nothing: ``filter.score`` removes
    by threshold. Requests go through the request cache; the report has the ``llm_*`` totals.

    Reasons: none (a scorer). Quarantined: judge_unparsed (``on_unparsed: quarantine``, the default),
    generation_error, generation_timeout.
    """

    kind: ClassVar[str] = "score"
    parallel: ClassVar[bool] = False

    class Params(LLMStepParams):
        sampling: Sampling = Field(
            default_factory=lambda: Sampling(temperature=0.0, max_tokens=256),
            description="Sampling of the judge (default greedy, 256 tokens).",
        )
        rubric: str | None = Field(None, description="Rubric text shown to the judge; null = the built-in 1-10 rubric.")
        max_turn_chars: int = Field(6000, ge=200, description="Longer turns are shown with their middle cut out.")
        on_unparsed: Literal["quarantine", "keep"] = Field(
            "quarantine", description="A judge answer with no valid score after one retry: quarantine the record "
            "(judge_unparsed), or keep it with a null score."
        )

    def prepare(self, ctx: StepContext) -> None:
        self.open_client(ctx)

    def judge(self, turns_list: Sequence[Sequence[Mapping[str, Any]] | None]) -> list[tuple[float | None, str | None, str | None]]:
        """(score, reason, error) per conversation; error is a quarantine string or None."""
        p = self.params
        rubric = p.rubric or RUBRIC
        out: list[tuple[float | None, str | None, str | None]] = [(None, None, None)] * len(turns_list)
        asks: list[tuple[int, list[dict[str, str]]]] = []
        for i, turns in enumerate(turns_list):
            msgs = judge_messages(list(turns or []), rubric, p.max_turn_chars)
            if msgs is None:
                self._count("no_answer")
            else:
                asks.append((i, msgs))
        answers = self.client.complete([m for _, m in asks], p.sampling)
        retry: list[tuple[int, list[dict[str, str]]]] = []
        for (i, msgs), ans in zip(asks, answers, strict=True):
            if not ans.ok:
                out[i] = (None, None, ans.error)
                continue
            got = parse_judgement(ans.text or "")
            if got is None:
                retry.append((i, [*msgs, {"role": "assistant", "content": ans.text or ""},
                                  {"role": "user", "content": RETRY}]))
            else:
                out[i] = (got[0], got[1], None)
        if retry:
            self._count("judge_retries", len(retry))
            again = self.client.complete([m for _, m in retry], p.sampling)
            for (i, _), ans in zip(retry, again, strict=True):
                if not ans.ok:
                    out[i] = (None, None, ans.error)
                    continue
                got = parse_judgement(ans.text or "")
                if got is not None:
                    out[i] = (got[0], got[1], None)
                    continue
                self._count(UNPARSED)
                if p.on_unparsed == "quarantine":
                    shown = " ".join((ans.text or "").split())[:200]
                    out[i] = (None, None, f"{UNPARSED}: no valid JSON score in the judge's answer: {shown!r}")
        return out

    def _count(self, key: str, n: int = 1) -> None:
        self.report_extra[key] = self.report_extra.get(key, 0.0) + n

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        n = ds.select(pl.len()).collect().item()
        ids: list[str] = []
        scores: list[float | None] = []
        reasons: list[str | None] = []
        bad_ids: list[str] = []
        bad_errors: list[str] = []
        self.report_extra.update({"no_answer": 0.0, "judge_retries": 0.0, UNPARSED: 0.0})
        try:
            for off in range(0, n, CHUNK_ROWS):
                part = ds.slice(off, CHUNK_ROWS).select("id", "turns").collect()
                for rid, (score, reason, err) in zip(part["id"].to_list(), self.judge(part["turns"].to_list()),
                                                     strict=True):
                    if err is not None:
                        bad_ids.append(rid)
                        bad_errors.append(err)
                        continue
                    ids.append(rid)
                    scores.append(score)
                    reasons.append(reason)
            self.report_extra.update(self.client.stats.to_extra())
        finally:
            self.client.close()
            self._client = None
        judged = [s for s in scores if s is not None]
        if judged:
            self.report_extra["mean_score"] = round(sum(judged) / len(judged), 3)
        return GlobalResult(
            scores=pl.DataFrame({"id": ids, f"{self.id}.score": scores, f"{self.id}.reason": reasons},
                                schema={"id": pl.Utf8, f"{self.id}.score": pl.Float64, f"{self.id}.reason": pl.Utf8}),
            quarantined=pl.DataFrame({"id": bad_ids, "error": bad_errors}, schema={"id": pl.Utf8, "error": pl.Utf8}),
        )
