"""``generate.instructions``: Alpaca's self-instruct, with the step's input records as the seed tasks."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import Field

from curate.errors import ConfigError
from curate.llm.client import EndpointError
from curate.llm.config import Sampling
from curate.llm.step import LLMStepParams
from curate.schema import make_batch, record_id
from curate.steps.base import StepContext
from curate.steps.filter.rouge_l import rouge_l_f, tokenize_expr
from curate.steps.generate.base import REJECT_COLUMN, Generator
from curate.steps.registry import register

# Alpaca's generate_instruction.py post-processing: instructions of <= 3 or > 150 words are dropped, so
# are those asking for non-text output (this word list), "Write a program" ones (the model tacked it onto
# many instructions) and those starting with punctuation or a non-ASCII character.
MIN_WORDS, MAX_WORDS = 4, 150
BLACKLIST = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
             "plot", "go to", "video", "audio", "music", "flowchart", "diagram")
_BLACKLIST_RE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in BLACKLIST) + r")\b", re.IGNORECASE)
_FIELD = re.compile(r"\d+\s*\.\s*(Instruction|Input|Output)\s*:", re.IGNORECASE)
NO_INPUT = "<noinput>"
_NO_INPUT_VALUES = frozenset({"", "<noinput>", "<no input>", "noinput", "none", "n/a"})

PROMPT_HEAD = """You are asked to come up with a set of {total} diverse task instructions. These task instructions \
will be given to a language model, and we will evaluate how well it completes them.

Here are the requirements:
1. Try not to repeat the verb of an instruction, so that the instructions are diverse.
2. Vary the wording: combine questions with imperative instructions.
3. Vary the type of task: open-ended generation, classification, editing, rewriting, extraction, reasoning, \
coding and so on.
4. A text-only language model must be able to complete the instruction: do not ask for visual or audio output, \
and do not ask for actions in the world (such as setting a reminder).
5. The instructions are in English.
6. An instruction is 1 to 2 sentences long: an imperative sentence or a question.
7. Write an input for the instruction when it needs one: a specific, realistic example, never a placeholder, \
at most 100 words. When the instruction needs no input, write "<noinput>" as the input.
8. The output is an appropriate answer to the instruction and the input, at most 100 words.

List of {total} tasks:
"""
PROMPT_TAIL = """###
Continue the list with tasks {first} to {total}, in exactly the same format (a line "N. Instruction: ...", then \
"N. Input:" and "N. Output:" each followed by its text), with "###" between tasks."""


@dataclass(frozen=True)
class Task:
    instruction: str
    input: str
    output: str


def split_prompt(user_turn: str) -> tuple[str, str]:
    """(instruction, input) of an Alpaca-style user turn: ``read.alpaca`` joins them with a blank line."""
    head, _, rest = user_turn.strip().partition("\n\n")
    return head.strip(), rest.strip()


def encode_prompt(seeds: list[Task], total: int) -> str:
    """The request for ``total`` tasks, showing ``seeds`` as tasks 1..k."""
    parts = [PROMPT_HEAD.format(total=total)]
    for i, t in enumerate(seeds, start=1):
        parts.append(f"###\n{i}. Instruction: {t.instruction}\n{i}. Input:\n{t.input or NO_INPUT}\n"
                     f"{i}. Output:\n{t.output}\n")
    parts.append(PROMPT_TAIL.format(first=len(seeds) + 1, total=total))
    return "".join(parts)


def parse_tasks(text: str, truncated: bool) -> tuple[list[Task], int]:
    """The tasks in a model's answer, and how many chunks could not be read as a task.

    Chunks are separated by ``###``; a chunk holds ``N. Instruction:``, ``N. Input:``, ``N. Output:`` in
    that order. When the answer was cut at max_tokens its last chunk is dropped (it may be cut too).
    """
    chunks = [c for c in text.split("###") if c.strip()]
    if truncated and chunks:
        chunks = chunks[:-1]
    tasks: list[Task] = []
    bad = 0
    for chunk in chunks:
        parts = _FIELD.split(chunk)
        labels = [p.lower() for p in parts[1::2]]
        if labels != ["instruction", "input", "output"]:
            bad += 1
            continue
        inst, inp, out = (" ".join(parts[i].split()) if i == 2 else parts[i].strip() for i in (2, 4, 6))
        if inp.strip().lower() in _NO_INPUT_VALUES:
            inp = ""
        tasks.append(Task(inst, inp, out))
    return tasks, bad


def reject_reason(task: Task) -> str | None:
    """Alpaca's rules for a generated task, or None when it passes (ROUGE-L is checked apart)."""
    words = len(task.instruction.split())
    if words < MIN_WORDS or words > MAX_WORDS:
        return "instruction_length"
    if _BLACKLIST_RE.search(task.instruction):
        return "non_text_task"
    if task.instruction.lower().startswith("write a program"):
        return "write_a_program"
    first = task.instruction[0]
    if not first.isalnum() and first not in "\"'":
        return "starts_with_punctuation"
    if not first.isascii():
        return "non_english"
    if not task.output.strip():
        return "empty_output"
    return None


def tokens_of(texts: list[str]) -> list[list[str]]:
    """rouge_score tokens of each text, by filter.rouge_l's own tokenizer."""
    if not texts:
        return []
    col = pl.Series("t", texts, dtype=pl.Utf8).to_frame().select(tokenize_expr(pl.col("t")))
    return [list(x) for x in col.to_series().to_list()]


class RougePool:
    """The instructions seen so far; a new one is novel when its ROUGE-L F to every one is below the limit."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.tokens: list[list[str]] = []

    def add(self, toks: list[str]) -> None:
        self.tokens.append(toks)

    def max_f(self, toks: list[str]) -> float:
        """Largest ROUGE-L F to the pool, stopping early once it reaches the limit."""
        best = 0.0
        n = len(toks)
        for other in self.tokens:
            m = len(other)
            if not n or not m or 2 * min(n, m) / (n + m) < max(best, 1e-9):  # F <= 2 min/(n+m): cannot beat best
                continue
            f = rouge_l_f(toks, other)
            if f > best:
                best = f
                if best >= self.limit:
                    break
        return best


@register("generate.instructions")
class InstructionGenerator(Generator):
    """Generate new instruction/input/output conversations from the input records by self-instruct (Alpaca).

    The step's input records are the seed tasks (e.g. ``read.alpaca`` over a Self-Instruct
    ``seed_tasks.jsonl``; the first user turn splits at its first blank line into instruction and input,
    as read.alpaca joins them). Each request shows ``num_prompt_tasks`` seed tasks drawn with the run's
    seed and asks for tasks up to ``tasks_per_request`` (Alpaca: 3 seed tasks, 20 per request,
    temperature 1.0, top_p 1.0, 3072 tokens). Answers are parsed and filtered by Alpaca's rules, then an
    instruction is kept only if its ROUGE-L F to every instruction seen so far (the input's and the
    kept generated ones) is below ``max_rouge_l`` (0.7, Alpaca's threshold), in request order, so the
    result depends only on the seed and the answers. Requests go out ``requests_per_round`` at a
    time until ``num_instructions`` are kept or ``max_requests`` were sent. The new conversations
    (source ``source``; meta holds ``instruction`` and ``input``; ``<id>.model``, ``<id>.max_rouge_l``)
    are added to the first batch; candidates that fail a rule are counted in the report extras
    (``rejected_<rule>``), never records. The pool comparison is quadratic in the kept instructions:
    for tens of thousands, follow with ``filter.rouge_l`` (sub-quadratic) instead of a low ``max_rouge_l``.

    Reasons: seed_task (an input record, with ``keep_seeds: false``).
    """

    class Params(LLMStepParams):
        num_instructions: int = Field(100, ge=1, description="New conversations to generate.")
        tasks_per_request: int = Field(20, ge=2, le=100, description="Tasks in the list each request asks for "
                                       "(the shown seed tasks included; Alpaca: 20).")
        num_prompt_tasks: int = Field(3, ge=1, le=20, description="Seed tasks shown in each request (Alpaca: 3).")
        requests_per_round: int = Field(8, ge=1, description="Requests sent together before the answers are "
                                        "filtered (the result does not depend on it beyond where generation stops).")
        max_requests: int | None = Field(None, ge=1, description="Stop after this many requests; null = four times "
                                         "the requests needed if every task were kept.")
        max_rouge_l: float = Field(0.7, gt=0, le=1, description="An instruction is kept only if its ROUGE-L F to "
                                   "every instruction seen is below this (Alpaca: 0.7).")
        sampling: Sampling = Field(
            default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, max_tokens=3072),
            description="temperature, top_p, max_tokens, stop (default: Alpaca's 1.0, 1.0, 3072).",
        )
        keep_seeds: bool = Field(True, description="Keep the input (seed) records; false: reject them as seed_task.")
        source: str = Field("self_instruct", pattern=r"^[A-Za-z0-9_.-]+$",
                            description="`source` of the generated conversations.")

    _pending: pl.DataFrame | None = None
    _added: bool = False

    def prepare(self, ctx: StepContext) -> None:
        p = self.params
        if p.num_prompt_tasks >= p.tasks_per_request:
            raise ConfigError(f"{self.id}: num_prompt_tasks ({p.num_prompt_tasks}) must be below tasks_per_request "
                              f"({p.tasks_per_request}): the model writes the rest of the list")
        source = ctx.input_path
        seeds = self._read_seeds(source) if source is not None else []
        if len(seeds) < p.num_prompt_tasks:
            raise ConfigError(f"{self.id}: {len(seeds)} seed tasks in the input (records with a user turn and an "
                              f"answer), fewer than num_prompt_tasks={p.num_prompt_tasks}; check the source")
        self.open_client(ctx)
        self._pending = self.generate(seeds)
        self._added = False

    @staticmethod
    def _read_seeds(path: Any) -> list[Task]:
        turns = pl.scan_parquet(path).select("turns").collect()["turns"].to_list()
        seeds = []
        for conv in turns:
            conv = conv or []
            user = next((t["content"] for t in conv if t["role"] == "user"), None)
            answer = next((t["content"] for t in conv if t["role"] == "assistant"), None)
            if user and user.strip() and answer and answer.strip():
                inst, inp = split_prompt(user)
                seeds.append(Task(inst, inp, answer.strip()))
        return seeds

    def generate(self, seeds: list[Task]) -> pl.DataFrame:
        """The kept generated tasks as conversations (at most num_instructions)."""
        p = self.params
        client = self.client
        pool = RougePool(p.max_rouge_l)
        for toks in tokens_of([s.instruction for s in seeds]):
            pool.add(toks)
        per_request = p.tasks_per_request - p.num_prompt_tasks
        max_requests = p.max_requests or 4 * math.ceil(p.num_instructions / per_request)
        stop = [f"\n{p.tasks_per_request + 1}."]
        sampling = p.sampling if p.sampling.stop else p.sampling.model_copy(update={"stop": stop})
        kept: list[tuple[Task, float]] = []
        counts: dict[str, int] = {}
        sent = 0
        while len(kept) < p.num_instructions and sent < max_requests:
            n = min(p.requests_per_round, max_requests - sent)
            prompts = []
            for r in range(sent, sent + n):
                rng = random.Random(f"{self.seed}:{r}")
                shown = rng.sample(seeds, p.num_prompt_tasks)
                prompts.append([{"role": "user", "content": encode_prompt(shown, p.tasks_per_request)}])
            answers = client.complete(prompts, sampling)
            sent += n
            for ans in answers:  # in request order: the result does not depend on arrival order
                if len(kept) >= p.num_instructions:
                    break
                if not ans.ok:
                    counts["request_failed"] = counts.get("request_failed", 0) + 1
                    continue
                tasks, bad = parse_tasks(ans.text or "", ans.truncated)
                counts["unparsed"] = counts.get("unparsed", 0) + bad
                counts["candidates"] = counts.get("candidates", 0) + len(tasks) + bad
                for task, toks in zip(tasks, tokens_of([t.instruction for t in tasks]), strict=True):
                    if len(kept) >= p.num_instructions:
                        break
                    why = reject_reason(task)
                    score = pool.max_f(toks) if why is None else 0.0
                    if why is None and score >= p.max_rouge_l:
                        why = "rouge_l"
                    if why is not None:
                        counts[why] = counts.get(why, 0) + 1
                        continue
                    pool.add(toks)
                    kept.append((task, score))
        if sent and client.stats.requests and client.stats.errors == client.stats.requests and not kept:
            raise EndpointError(f"{self.id}: all {client.stats.requests} requests to {p.llm.base_url} failed; "
                                "see the quarantine of an earlier step or run again with the server up")
        self.report_extra.update(client.stats.to_extra())
        self.report_extra["requests_sent"] = float(sent)
        self.report_extra["generated"] = float(len(kept))
        for k, v in counts.items():
            self.report_extra[k if k in ("candidates", "request_failed") else f"rejected_{k}"] = float(v)
        rows = []
        for i, (task, _) in enumerate(kept):
            user = task.instruction + (f"\n\n{task.input}" if task.input else "")
            rows.append({
                "id": record_id(p.source, f"{self.key}:{self.id}", i),
                "source": p.source,
                "subset": None,
                "turns": [{"role": "user", "content": user}, {"role": "assistant", "content": task.output}],
                "meta": {"instruction": task.instruction, "input": task.input},
                "provenance": {"file": f"{self.key}:{self.id}", "record": i},
            })
        return make_batch(rows).with_columns(
            pl.lit(p.llm.model, dtype=pl.Utf8).alias(f"{self.id}.model"),
            pl.Series(f"{self.id}.max_rouge_l", [s for _, s in kept], dtype=pl.Float64),
        )

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        out = batch
        if not self.params.keep_seeds:
            out = out.with_columns(pl.lit("seed_task", dtype=pl.Utf8).alias(REJECT_COLUMN))
        if self._pending is not None and not self._added:
            self._added = True
            new = self._pending
            if REJECT_COLUMN in out.columns:
                new = new.with_columns(pl.lit(None, dtype=pl.Utf8).alias(REJECT_COLUMN))
            out = pl.concat([out, new], how="diagonal_relaxed")
        return out
