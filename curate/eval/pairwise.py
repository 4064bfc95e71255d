"""Pairwise comparison of two models' answers by a judge model, with position swapping (Vicuna / MT-bench).

LLM judges favour the answer shown first (Zheng et al. 2023, "Judging LLM-as-a-judge with MT-Bench and
Chatbot Arena", measured GPT-4 preferring position 1 in a large share of inconsistent pairs). So each pair
is judged twice, A/B and B/A; a model wins only when both orders pick it. If the orders disagree (the
judge followed the position, not the content) or both say tie, the pair is a tie; a judge that always
picks position 1 therefore yields only ties. A request that fails or an answer without exactly one
verdict makes the pair an error: counted and shown, never read as a tie or a win.

The prompt is MT-bench's "pair-v2" judge prompt (FastChat ``fastchat/llm_judge/data/judge_prompts.jsonl``,
Apache-2.0), verdict ``[[A]]``, ``[[B]]`` or ``[[C]]`` for a tie.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from curate.eval.data import Prompt

Verdict = Literal["A", "B", "tie"]
Outcome = Literal["a", "b", "tie", "error"]

JUDGE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. You should choose the assistant that follows the user's "
    "instructions and answers the user's question better. Your evaluation should consider factors such as "
    "the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. Begin "
    "your evaluation by comparing the two responses and provide a short explanation. Avoid any position "
    "biases and ensure that the order in which the responses were presented does not influence your "
    "decision. Do not allow the length of the responses to influence your evaluation. Do not favor certain "
    "names of the assistants. Be as objective as possible. After providing your explanation, output your "
    'final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant '
    'B is better, and "[[C]]" for a tie.'
)
JUDGE_USER = (
    "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
    "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
    "[The End of Assistant B's Answer]"
)
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
MAX_ANSWER_CHARS = 6000  # keeps a runaway answer from filling the judge's context


class JudgeClient(Protocol):
    """What the judge needs from an endpoint client (``curate.llm.client.LLMClient`` is one)."""

    def complete(self, requests: Sequence[Sequence[Any]], sampling: Any) -> list[Any]: ...


def _cut(text: str) -> str:
    if len(text) <= MAX_ANSWER_CHARS:
        return text
    half = MAX_ANSWER_CHARS // 2
    return f"{text[:half]}\n[... {len(text) - MAX_ANSWER_CHARS} characters omitted ...]\n{text[-half:]}"


def judge_messages(question: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    user = JUDGE_USER.format(question=question, answer_a=_cut(answer_a), answer_b=_cut(answer_b))
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_verdict(text: str | None) -> Verdict | None:
    """The verdict in a judge's answer: exactly one distinct ``[[A]]``/``[[B]]``/``[[C]]``, else None."""
    if not text:
        return None
    found = {m.group(1) for m in _VERDICT.finditer(text)}
    if len(found) != 1:
        return None
    v = found.pop()
    return "tie" if v == "C" else v  # type: ignore[return-value]


@dataclass
class PairResult:
    id: str
    outcome: Outcome  # a, b, tie or error, after both orders
    first: str  # verdict with a's answer shown first: A, B, tie, or an error text
    second: str  # verdict with b's answer shown first
    consistent: bool  # both orders valid and agreeing (including tie/tie)


def combine(v1: Verdict | None, v2: Verdict | None) -> tuple[Outcome, bool]:
    """Outcome of a pair from order 1 (a shown as A) and order 2 (b shown as A)."""
    if v1 is None or v2 is None:
        return "error", False
    w1 = {"A": "a", "B": "b", "tie": "tie"}[v1]
    w2 = {"A": "b", "B": "a", "tie": "tie"}[v2]
    if w1 == w2:
        return w1, True  # type: ignore[return-value]
    return "tie", False


def judge_pairs(client: JudgeClient, sampling: Any, prompts: Sequence[Prompt], answers_a: Sequence[str],
                answers_b: Sequence[str]) -> list[PairResult]:
    """Judge every prompt's pair in both orders (2 requests per prompt, sent together)."""
    requests = []
    for p, a, b in zip(prompts, answers_a, answers_b):
        requests.append(judge_messages(p.question, a, b))
        requests.append(judge_messages(p.question, b, a))
    got = client.complete(requests, sampling)
    out: list[PairResult] = []
    for k, p in enumerate(prompts):
        c1, c2 = got[2 * k], got[2 * k + 1]
        v1 = parse_verdict(c1.text) if c1.ok else None
        v2 = parse_verdict(c2.text) if c2.ok else None
        outcome, consistent = combine(v1, v2)
        out.append(PairResult(p.id, outcome, _shown(v1, c1), _shown(v2, c2), consistent))
    return out


def _shown(v: Verdict | None, completion: Any) -> str:
    if v is not None:
        return v
    if not completion.ok:
        return str(completion.error)
    text = " ".join(str(completion.text or "").split())
    return f"no_verdict: {text[:120]!r}"


@dataclass
class Tally:
    model_a: str
    model_b: str
    pairs: int
    wins_a: int
    wins_b: int
    ties: int  # both orders tie, or the orders disagree
    inconsistent: int  # of the ties: the two orders picked different answers (position bias)
    errors: int  # a request failed or an answer had no single verdict
    first_position_share: float | None  # of valid single verdicts naming a winner: share naming position A

    @property
    def win_rate_a(self) -> float | None:
        """Wins of a plus half the ties, over the pairs without errors."""
        n = self.pairs - self.errors
        return (self.wins_a + 0.5 * self.ties) / n if n else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "win_rate_a": self.win_rate_a}

    def line(self) -> str:
        rate = f"{self.win_rate_a:.1%}" if self.win_rate_a is not None else "n/a"
        return (f"{self.model_a} vs {self.model_b}: {self.wins_a} wins, {self.wins_b} losses, {self.ties} ties "
                f"({self.inconsistent} where the two orders disagreed), {self.errors} errors; "
                f"win rate of {self.model_a} {rate} (ties count half)")


def tally(model_a: str, model_b: str, results: Sequence[PairResult]) -> Tally:
    c = Counter(r.outcome for r in results)
    picks = [v for r in results for v in (r.first, r.second) if v in ("A", "B")]
    first_share = round(picks.count("A") / len(picks), 4) if picks else None
    inconsistent = sum(1 for r in results if r.outcome == "tie" and not r.consistent)
    return Tally(model_a, model_b, len(results), c["a"], c["b"], c["tie"], inconsistent, c["error"], first_share)
