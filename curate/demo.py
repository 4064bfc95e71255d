"""``curate demo-data DIR``: a deterministic synthetic raw corpus in five native formats, with planted problems.

Why synthetic: the real sources (OIG, Stack Overflow, P3, ShareGPT, Alpaca) are gigabytes, carry
licences we cannot ship, and nothing in them tells you which records *should* be removed. This corpus
is small, offline, byte-identical for a given seed, and every planted problem is listed in
``ground_truth.jsonl`` so each pipeline step can be scored (precision/recall per kind).

Layout under DIR (the Makefile's ``make demo`` uses these paths)::

    oig/unified_chip2.jsonl        LAION OIG lines {"text": "<human>: ...\\n<bot>: ...", "metadata": {...}}
    stackoverflow/Posts.xml        Stack Exchange dump rows (BOM, HTML-escaped Body/Tags)
    p3/p3.jsonl                    BigScience P3 records: the homogeneous, low-diversity source
    sharegpt/sharegpt.json         ShareGPT array [{id, conversations: [{from, value}]}]
    alpaca/alpaca.json             Alpaca array [{instruction, input, output}]
    ground_truth.jsonl             one line per planted record: {file, record, kind, of, detail}
    ground_truth_summary.json      counts per kind and source, low_diversity_source

Locators (``record``) are what readers put in ``provenance.record``: the 1-based line number in JSONL,
the 1-based element ordinal in a JSON array, the question's ``Id`` in Posts.xml. Planted kinds are
disjoint: a record has exactly one kind, and the record a duplicate points to (``of``) is never planted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import string
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import numpy as np

from curate import demo_text as T
from curate.errors import ConfigError
from curate.steps.filter.rouge_l import rouge_l_f  # the rule the Alpaca recipe applies

OIG_FILE = "oig/unified_chip2.jsonl"
SO_FILE = "stackoverflow/Posts.xml"
P3_FILE = "p3/p3.jsonl"
SHAREGPT_FILE = "sharegpt/sharegpt.json"
ALPACA_FILE = "alpaca/alpaca.json"
FILES: dict[str, str] = {
    "oig": OIG_FILE,
    "stackoverflow": SO_FILE,
    "p3": P3_FILE,
    "sharegpt": SHAREGPT_FILE,
    "alpaca": ALPACA_FILE,
}
# Share of the requested records per source (Stack Overflow counts questions).
SHARES: dict[str, float] = {"oig": 0.30, "stackoverflow": 0.20, "p3": 0.25, "sharegpt": 0.125, "alpaca": 0.125}
DEFAULT_RECORDS = 20_000

# Planted kinds and the fraction of a source's records that get each, before --plant-scale. Chosen so
# each kind is "a few percent" at most, as in the real sources, and appears at least once per source.
RATES: dict[str, dict[str, float]] = {
    "oig": {
        "exact_dup": 0.02, "near_dup": 0.02, "failed_empty": 0.005,
        "failed_truncated": 0.01, "failed_error": 0.005, "refusal": 0.015, "non_english": 0.02,
        "pii": 0.005, "repetitive": 0.005, "malformed": 0.0005,
    },
    # cross_source_dup: a question whose ingested title+body and accepted answer equal an OIG record (OIG
    # covers programming too); both sources run together in the gpt4all recipe, so dedup.exact sees the pair.
    "stackoverflow": {"exact_dup": 0.02, "near_dup": 0.02, "cross_source_dup": 0.021, "pii": 0.005},
    "p3": {"exact_dup": 0.02, "malformed": 0.0005},
    "sharegpt": {
        "exact_dup": 0.02, "near_dup": 0.02, "failed_empty": 0.005,
        "failed_truncated": 0.01, "failed_error": 0.005, "refusal": 0.015, "non_english": 0.02,
        "html": 0.08, "overlong": 0.004, "malformed": 0.002, "pii": 0.005, "repetitive": 0.005,
    },
    "alpaca": {
        "exact_dup": 0.02, "near_dup": 0.02, "failed_empty": 0.005, "failed_truncated": 0.01,
        "failed_error": 0.005, "refusal": 0.015, "non_english": 0.02, "pii": 0.005, "repetitive": 0.005,
        "malformed": 0.0005,
    },
}
# Planted near-duplicates keep this word-5-gram Jaccard to their original (dedup.minhash's threshold is 0.8;
# the margin covers small differences between the generator's text and what a reader yields).
NEAR_DUP_MIN_NGRAM_JACCARD = 0.82
# Largest token-set Jaccard between two composed prompts about the same entity (see Writer.question).
PROMPT_MAX_JACCARD = 0.5
# Largest token-set Jaccard between two chat prompts of one topic (near duplicates start at 0.8).
PROMPT_TOPIC_MAX_JACCARD = 0.7
# Largest ROUGE-L F between two unplanted Alpaca instructions that share a task, a detail fact or an entity
# (filter.rouge_l drops at 0.7; real Alpaca data loses a few percent to it, not half).
ALPACA_MAX_ROUGE_L = 0.55
# A planted truncated response keeps this many words (filter.failed_response judges from 20); its
# record is regenerated until the response is longer than that.
TRUNCATED_MIN_WORDS = 24
# Overlong conversations must exceed this many words (clean.split_long's default budget).
OVERLONG_WORDS = 4_000

_TOKEN = re.compile(r"\w+")
_LIST_LINE = re.compile(r"(?m)^(?:\d+\.|-) ")


def tokens(text: str) -> set[str]:
    """Lowercased word tokens: the unit of the near-duplicate guarantee (token-set Jaccard)."""
    return set(_TOKEN.findall(text.lower()))


def jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# ---------------------------------------------------------------------------------------------- records


@dataclass
class Conv:
    """One conversation before it is written in a source's format: alternating user/assistant turns."""

    turns: list[tuple[str, str]]  # (role, text), role "user" or "assistant"
    topic: str = ""
    html: bool = False  # assistant turns are ChatGPT-style HTML (ShareGPT only)
    alpaca_input: str = ""  # the Alpaca ``input`` field, when the record has one

    @property
    def prompt(self) -> str:
        return self.turns[0][1]

    @property
    def text(self) -> str:
        return "\n".join(t for _, t in self.turns)

    @property
    def full_text(self) -> str:
        """All text in reader order: the Alpaca input follows the instruction."""
        if not self.alpaca_input:
            return self.text
        return "\n".join([self.turns[0][1], self.alpaca_input, *(t for _, t in self.turns[1:])])


@dataclass
class Slot:
    """One record position in a file: clean content, or a planted kind with its target."""

    conv: Any = None  # Conv, a P3 dict, an SO question dict, or raw bytes (malformed)
    kind: str | None = None
    of: tuple[str, int] | None = None  # (file, slot index) of the record this one duplicates
    detail: Any = None


@dataclass
class Plan:
    """Record counts per source and planted counts per (source, kind)."""

    records: dict[str, int]
    planted: dict[str, dict[str, int]] = field(default_factory=dict)


def make_plan(n_records: int, plant_scale: float = 1.0) -> Plan:
    """Split ``n_records`` over the sources and derive every planted count from it (one scale knob)."""
    if n_records < 50:
        raise ConfigError(f"--records must be at least 50 (got {n_records}) so every source gets records")
    if plant_scale < 0:
        raise ConfigError(f"--plant-scale must be >= 0 (got {plant_scale})")
    records = {s: max(10, round(n_records * f)) for s, f in SHARES.items()}
    planted: dict[str, dict[str, int]] = {}
    for src, rates in RATES.items():
        planted[src] = {}
        for kind, rate in rates.items():
            want = rate * records[src] * plant_scale
            planted[src][kind] = 0 if plant_scale == 0 else max(1, math.ceil(want) if kind == "malformed" else round(want))
        if src in ("oig", "p3") and plant_scale > 0:
            planted[src]["malformed"] = max(2, planted[src]["malformed"])  # one broken JSON, one invalid UTF-8
        budget = records[src] // 3  # keep most records clean even at large --plant-scale
        total = sum(planted[src].values())
        if total > budget:
            planted[src] = {k: max(1, v * budget // total) for k, v in planted[src].items()}
    return Plan(records, planted)


# ---------------------------------------------------------------------------------------------- text


class Writer:
    """Composes varied topical prompts and answers, avoiding accidental near-duplicates.

    Every answer draws several facts of its topic. Two answers about the same entity never share three
    facts, two answers in a topic never share four, and no two use the same fact set, so unplanted records stay below the
    near-duplicate threshold while still sharing the topic's vocabulary (which the map and c-TF-IDF need).
    """

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self._used: set[tuple[Any, ...]] = set()
        self._prompts: set[str] = set()  # normalised prompts already written: unplanted prompts are distinct
        self._asked: dict[tuple[str, str], list[set[str]]] = {}  # (topic, entity) -> token sets of its prompts
        self._alpaca_seen: dict[tuple[Any, ...], list[list[str]]] = {}  # task/fact/entity -> instruction tokens
        self._topic_prompts = NearGuard()  # chat prompts per topic

    def facts(self, topic: T.Topic, entity: str, k: int, exclude: set[int] | None = None) -> list[str]:
        """``k`` facts about ``entity``; indices in ``exclude`` (facts a conversation already used) are
        skipped and the picks are added to it, so no fact sentence repeats within one conversation."""
        rng = self.rng
        pool = [i for i in range(len(topic.facts)) if exclude is None or i not in exclude]
        k = min(k, len(pool))
        pick: list[int] = []
        for _ in range(30):
            pick = rng.sample(pool, k)
            keys = self._keys(topic, entity, pick)
            if not any(key in self._used for key in keys):
                self._used.update(keys)
                break
        if exclude is not None:
            exclude.update(pick)
        return [topic.facts[i].replace("{e}", entity).replace("{t}", topic.name) for i in pick]

    @staticmethod
    def _keys(topic: T.Topic, entity: str, pick: Sequence[int]) -> list[tuple[Any, ...]]:
        s = sorted(pick)
        keys: list[tuple[Any, ...]] = [(topic.name, "set", *s)]
        if len(s) >= 3:
            keys += [(topic.name, entity, *c) for c in itertools.combinations(s, 3)]
        if len(s) >= 4:  # across entities, answers may share at most three facts
            keys += [(topic.name, "any", *c) for c in itertools.combinations(s, 4)]
        else:
            keys.append((topic.name, entity, *s))
        return keys

    def fill(self, template: str, topic: T.Topic, entity: str, entity2: str = "") -> str:
        return (
            template.replace("{E}", entity[:1].upper() + entity[1:])
            .replace("{e2}", entity2)
            .replace("{e}", entity)
            .replace("{t}", topic.name)
        )

    def slots(self, text: str, topic: T.Topic) -> str:
        """Fill the generic slots: {n} a small number, {a} an audience."""
        rng = self.rng
        if "{a}" in text:
            text = text.replace("{a}", rng.choice(T.AUDIENCES).replace("{t}", topic.name))
        return text.replace("{n}", str(rng.randint(2, 12))).replace("{v}", f"{rng.randint(1, 5)}.{rng.randint(0, 19)}")

    def question(self, topic: T.Topic, entity: str) -> str:
        """A first user turn: context (the user's situation and/or a fact they heard), a question about
        ``entity``, sometimes a constraint and a closing request. Distinct from every earlier prompt."""
        earlier = self._asked.setdefault((topic.name, entity), [])
        best, best_sim, best_toks = "", 2.0, set[str]()
        key: tuple[Any, ...] = ()
        for _ in range(40):
            q, parts = self._compose(topic, entity)
            key = ("prompt", entity, *parts)  # the same context and question frame only once per entity
            if " ".join(q.lower().split()) in self._prompts or key in self._used:
                continue
            toks = tokens(q)
            # Reworded prompts that share most of their words embed within cosine ~0.95 of each other:
            # keep the word overlap with earlier prompts about the same entity low, and never reach a
            # near-duplicate of any earlier prompt in the topic (entities differ by a word or two).
            sim = max((jaccard(toks, t) for t in earlier), default=0.0)
            bits = self._topic_prompts.bits(q)
            if self._topic_prompts.max_jaccard(topic.name, bits) >= PROMPT_TOPIC_MAX_JACCARD:
                sim += 1.0
            if sim < best_sim:
                best, best_sim, best_toks = q, sim, toks
            if sim < PROMPT_MAX_JACCARD:
                break
        self._prompts.add(" ".join(best.lower().split()))
        self._used.add(key)
        earlier.append(best_toks)
        self._topic_prompts.add(topic.name, self._topic_prompts.bits(best))
        return best

    def _compose(self, topic: T.Topic, entity: str) -> tuple[str, tuple[str, str, str]]:
        """The prompt and its (situation, fact, frame) choice."""
        rng = self.rng
        parts = [self.fill(rng.choice(T.PREFIXES), topic, entity).strip()]
        r = rng.random()
        situation = fact = ""
        if r < 0.75:
            situation = rng.choice(T.SITUATIONS[topic.name])
            parts.append(situation)
        if r > 0.55:
            fact = rng.choice(topic.facts).replace("{e}", entity).replace("{t}", topic.name)
            parts.append(rng.choice(T.FACT_LEADS).replace("{f}", fact[:1].lower() + fact[1:]))
            parts.append(rng.choice(T.FACT_CHECKS))
        frame = rng.choice(topic.questions if rng.random() < 0.4 else T.ASK_FRAMES)
        parts.append(self.fill(frame, topic, entity))
        if rng.random() < 0.35:
            c = rng.choice(T.CONSTRAINTS)
            parts.append(rng.choice(("Ideally I'd manage it {c}.", "It has to work {c}.", "Keep in mind I'm doing this {c}.",
                                     "I'm looking for something that works {c}.")).replace("{c}", c))
        parts.append(rng.choice(T.ASK_TAILS))
        return self.slots(" ".join(p for p in parts if p), topic), (situation, fact, frame)

    def answer(self, topic: T.Topic, entity: str, k: int | None = None, style: str | None = None,
               seen: ConvSeen | None = None) -> str:
        """An answer of ``k`` facts; with ``seen`` (one per conversation) no fact, opener or closer that
        an earlier turn of the conversation used comes back."""
        rng = self.rng
        facts = self.facts(topic, entity, k or rng.choice((3, 4, 4, 5)), None if seen is None else seen.facts)
        opener_t = rng.choice([o for o in T.OPENERS if seen is None or o not in seen.phrases] or T.OPENERS)
        closer = rng.choice([c for c in T.CLOSERS if seen is None or not c or c not in seen.phrases])
        if seen is not None:
            seen.phrases.update((opener_t, closer))
        opener = self.fill(opener_t, topic, entity)
        style = style or rng.choice(("para", "para", "para", "list", "bullets"))
        if style == "list":
            body = "\n".join(f"{i}. {f}" for i, f in enumerate(facts, 1))
            out = f"{opener}\n\n{body}"
        elif style == "bullets":
            out = opener + "\n\n" + "\n".join(f"- {f}" for f in facts)
        else:
            out = " ".join([opener, *facts])
        return f"{out}\n\n{closer}" if closer else out

    def pick(self, topics: Sequence[T.Topic] = T.TOPICS) -> tuple[T.Topic, str]:
        topic = self.rng.choice(topics)
        return topic, self.rng.choice(topic.entities)

    def qa(self, topics: Sequence[T.Topic] = T.TOPICS) -> Conv:
        topic, e = self.pick(topics)
        return Conv([("user", self.question(topic, e)), ("assistant", self.answer(topic, e))], topic.name)

    def chat(self, n_exchanges: int) -> Conv:
        """A multi-turn conversation that stays on one topic, moving between its entities; no fact
        sentence (nor opener or closer) is used twice in it, the user's prompt included."""
        rng = self.rng
        topic, e = self.pick()
        q = self.question(topic, e)
        seen = ConvSeen({i for i, f in enumerate(topic.facts) if f.replace("{e}", e).replace("{t}", topic.name)[1:] in q})
        turns = [("user", q), ("assistant", self.answer(topic, e, k=rng.choice((3, 4)), seen=seen))]
        for _ in range(n_exchanges - 1):
            e2 = rng.choice([x for x in topic.entities if x != e])
            turns.append(("user", self.fill(rng.choice(T.FOLLOW_UPS), topic, e2)))
            turns.append(("assistant", self.answer(topic, e2, k=rng.choice((2, 3)), style="para", seen=seen)))
            e = e2
        return Conv(turns, topic.name)

    def alpaca(self) -> Conv:
        """An Alpaca record: a task from many worded structures, often with an entity-specific detail,
        a context or a format request; a fifth carry an input field with real content. Instructions
        sharing a task, a detail fact or an entity keep ROUGE-L below ``ALPACA_MAX_ROUGE_L``."""
        rng = self.rng
        topic, e = self.pick()
        if rng.random() < 0.2:
            return self._alpaca_with_input(topic, e)
        best: tuple[float, str, list[str], list[tuple[Any, ...]], int, str, str] | None = None
        for _ in range(40):
            ti = rng.randrange(len(T.ALPACA_TASKS))
            if ("alpaca", ti, e) in self._used:  # one task per entity at most
                topic, e = self.pick()
                continue
            tmpl, style = T.ALPACA_TASKS[ti]
            e2 = rng.choice([x for x in topic.entities if x != e])
            extras = []
            buckets: list[tuple[Any, ...]] = [("task", ti), ("entity", topic.name, e)]
            if rng.random() < 0.5:
                fi = rng.randrange(len(topic.facts))
                fact = topic.facts[fi].replace("{e}", e).replace("{t}", topic.name).rstrip(".")
                extras.append(rng.choice(T.ALPACA_DETAILS).replace("{f}", fact[:1].lower() + fact[1:]))
                buckets.append(("fact", topic.name, fi))
            if rng.random() < 0.3:
                extras.append(rng.choice(T.ALPACA_CONTEXTS))
            if rng.random() < 0.45:
                extras.append(rng.choice(T.ALPACA_FORMATS))
            rng.shuffle(extras)
            instr = self.slots(" ".join([self.fill(tmpl, topic, e, e2), *extras]), topic)
            if " ".join(instr.lower().split()) in self._prompts:
                continue
            toks = rouge_tokens(instr)
            sim = max((rouge_l_f(toks, t) for b in buckets for t in self._alpaca_seen.get(b, ())), default=0.0)
            if best is None or sim < best[0]:
                best = (sim, instr, toks, buckets, ti, style, e2)
            if sim < ALPACA_MAX_ROUGE_L:
                break
        assert best is not None
        _, instr, toks, buckets, ti, style, e2 = best
        e = next(b[2] for b in buckets if b[0] == "entity")
        topic = next(t for t in T.TOPICS if t.name == buckets[1][1])
        self._used.add(("alpaca", ti, e))
        for b in buckets:
            self._alpaca_seen.setdefault(b, []).append(toks)
        self._prompts.add(" ".join(instr.lower().split()))
        if style == "list":
            out = self.answer(topic, e, k=rng.choice((3, 4, 5)), style="list")
        elif style == "compare":
            out = f"Both {e} and {e2} belong to {topic.name}. " + self.answer(topic, e2, k=3, style="para")
        elif style == "short":
            out = self.answer(topic, e, k=2, style="para")
        else:
            out = self.answer(topic, e, style="para")
        return Conv([("user", instr), ("assistant", out)], topic.name)

    def _alpaca_with_input(self, topic: T.Topic, e: str) -> Conv:
        rng = self.rng
        instr = inp = ""
        facts: list[str] = []
        for _ in range(20):
            tmpl, kind = rng.choice(T.ALPACA_INPUT_TASKS)
            instr = self.fill(tmpl, topic, e)
            facts = self.facts(topic, e, {"paragraph": 4, "notes": 4, "sentence": 1}[kind])
            inp = "\n".join(f"- {f}" for f in facts) if kind == "notes" else " ".join(facts)
            if " ".join(f"{instr} {inp}".lower().split()) not in self._prompts:
                break
        self._prompts.add(" ".join(f"{instr} {inp}".lower().split()))
        opener = self.fill(rng.choice(T.OPENERS), topic, e)
        if len(facts) > 1:
            out = opener + " " + " ".join(facts[:2])
        else:
            out = f"{opener} {facts[0]} " + " ".join(self.facts(topic, e, 2))
        return Conv([("user", instr), ("assistant", out)], topic.name, alpaca_input=inp)


@dataclass
class ConvSeen:
    """What one conversation already used: fact indices of its topic and opener/closer templates."""

    facts: set[int] = field(default_factory=set)
    phrases: set[str] = field(default_factory=set)


_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """rouge_score's tokens (lowercase ASCII letter/digit runs), as filter.rouge_l compares them."""
    return _ROUGE_TOKEN.findall(text.lower())


# ---------------------------------------------------------------------------------------------- plants


_SWAPS = {
    "usually": "often", "often": "frequently", "good": "great", "best": "ideal", "quickly": "fast",
    "small": "little", "large": "big", "important": "essential", "easier": "simpler", "help": "assist",
    "simple": "easy", "start": "begin", "much": "far", "helps": "assists", "keep": "maintain",
}
_FILLERS = ("really", "actually", "just", "also", "generally", "typically")


# Largest token-set Jaccard between two unplanted P3 records of one template (the near-duplicate
# threshold is 0.8; the margin keeps MinHash and Jaccard-0.8 checks clear of templated neighbours).
P3_MAX_JACCARD = 0.7


class NearGuard:
    """Token-set Jaccard of a new text against the earlier texts of its group, on hashed bitsets.

    Tokens hash into ``BITS`` bits, so collisions can only raise the estimate (conservative). The last
    ``window`` texts of a group are compared, which keeps the cost linear in the corpus size.
    """

    BITS = 2048

    def __init__(self, window: int = 4096) -> None:
        self.window = window
        self._mat: dict[str, np.ndarray] = {}  # group -> (window, BITS / 64) ring buffer of bitsets
        self._count: dict[str, int] = {}

    def bits(self, text: str) -> np.ndarray:
        v = np.zeros(self.BITS, dtype=bool)
        v[[zlib.crc32(t.encode()) % self.BITS for t in tokens(text)]] = True
        return np.packbits(v).view(np.uint64)

    def max_jaccard(self, group: str, v: np.ndarray) -> float:
        n = min(self._count.get(group, 0), self.window)
        if not n:
            return 0.0
        m = self._mat[group][:n]
        inter = np.bitwise_count(m & v).sum(axis=1, dtype=np.int64)
        union = np.bitwise_count(m | v).sum(axis=1, dtype=np.int64)
        return float((inter / np.maximum(union, 1)).max())

    def add(self, group: str, v: np.ndarray) -> None:
        if group not in self._mat:
            self._mat[group] = np.zeros((self.window, len(v)), dtype=np.uint64)
        c = self._count.get(group, 0)
        self._mat[group][c % self.window] = v
        self._count[group] = c + 1


def near_dup_edit(rng: Random, text: str, n_edits: int) -> str:
    """A few small, human-looking edits: a word swapped or inserted, case, punctuation."""
    words = text.split(" ")
    for _ in range(n_edits):
        op = rng.choice(("swap", "insert", "case", "punct", "swap"))
        i = rng.randrange(len(words))
        w = words[i]
        core = w.strip(string.punctuation).lower()
        if op == "swap" and core in _SWAPS:
            words[i] = w.replace(core, _SWAPS[core]) if core in w else w
        elif op == "insert" and len(words) > 3:
            words.insert(i, rng.choice(_FILLERS))
        elif op == "case" and w[:1].isalpha():
            words[i] = w.upper() if rng.random() < 0.3 else w.swapcase()[:1] + w[1:]
        elif op == "punct":
            if w.endswith("."):
                words[i] = w[:-1] + rng.choice(("!", ";", ","))
            elif w.endswith(","):
                words[i] = w[:-1]
            else:
                words[i] = w + ","
        else:
            words.insert(i, rng.choice(_FILLERS))
    return " ".join(words)


def normalized(text: str) -> str:
    """What exact dedup compares: case and whitespace ignored (a near-duplicate must differ here)."""
    return " ".join(text.lower().split())


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Lowercased word n-grams, as dedup.minhash compares them (a shorter text is one shingle)."""
    toks = _TOKEN.findall(text.lower())
    return {tuple(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))} if toks else set()


def near_dup_conv(rng: Random, conv: Conv) -> Conv:
    """Edit an earlier conversation so the text differs but both its token-set Jaccard and its word
    5-gram Jaccard to the original stay >= 0.8: a near-duplicate at the threshold MinHash dedup uses."""
    full = conv.full_text
    base, base_sh = tokens(full), shingles(full)
    for attempt in range(30):
        n = 3 if attempt < 10 else 2 if attempt < 20 else 1
        turns = []
        for j, (role, text) in enumerate(conv.turns):
            edits = rng.randint(1, n) if j < 2 or rng.random() < 0.5 else 0
            turns.append((role, near_dup_edit(rng, text, edits) if edits else text))
        out = Conv(turns, conv.topic, conv.html, conv.alpaca_input)
        out_full = out.full_text
        if (normalized(out_full) != normalized(full) and jaccard(base, tokens(out_full)) >= 0.8
                and jaccard(base_sh, shingles(out_full)) >= NEAR_DUP_MIN_NGRAM_JACCARD):
            return out
    # Guaranteed fallback: a case change and an added comma keep the token set identical.
    role, text = conv.turns[0]
    return Conv([(role, text.upper() + ",")] + conv.turns[1:], conv.topic, conv.html, conv.alpaca_input)


def with_response(conv: Conv, response: str) -> Conv:
    """The conversation with its last assistant turn replaced (failed/refusal/pii/repetitive plants)."""
    turns = list(conv.turns)
    turns[-1] = ("assistant", response)
    return Conv(turns, conv.topic, conv.html, conv.alpaca_input)


def failure(rng: Random, kind: str, conv: Conv, topic_entities: dict[str, tuple[str, ...]]) -> tuple[Conv, str]:
    """Replace the response with one planted failure; returns the new conversation and a detail string."""
    last = conv.turns[-1][1]
    entity = rng.choice(topic_entities.get(conv.topic, ("that",)))
    if kind == "failed_empty":
        blank = rng.choice(("", " ", "\n", "  \n "))
        return with_response(conv, blank), "empty" if not blank else "whitespace"
    if kind == "failed_truncated":
        words = last.replace("\n", " ").split()
        # filter.failed_response judges responses of 20+ words only (a short answer can end anywhere)
        cut = max(min(TRUNCATED_MIN_WORDS, len(words) - 1), len(words) // 2 + rng.randint(-3, 3))
        head = " ".join(words[:cut]).rstrip(".!?,;:")
        tail = rng.choice(T.TRUNCATION_TAILS)
        return with_response(conv, f"{head} {tail}"), tail
    if kind == "failed_error":
        err = rng.choice(T.ERRORS)
        return with_response(conv, err), err.split("\n")[0][:40]
    if kind == "refusal":
        i = rng.randrange(len(T.REFUSALS))
        return with_response(conv, T.REFUSALS[i].replace("{e}", entity)), f"family_{i}"
    if kind == "pii":
        i = rng.randrange(len(T.PII))
        alnum = string.ascii_letters + string.digits
        snippet_ = T.PII[i].format(
            name=rng.choice(T.PII_NAMES), surname=rng.choice(T.PII_SURNAMES), domain=rng.choice(T.PII_DOMAINS),
            n3=f"{rng.randrange(1000):03d}", n4=f"{rng.randrange(10000):04d}",
            key="".join(rng.choice(alnum) for _ in range(36)),
        )
        kinds = ("email", "phone", "api_key", "phone", "email", "api_key")
        return with_response(conv, last + "\n\n" + snippet_), kinds[i]
    if kind == "repetitive":
        if rng.random() < 0.5:
            line = rng.choice(T.REPEAT_LINES)
            reps = rng.randint(15, 40)
            return with_response(conv, "\n".join([last.split("\n")[0]] + [line] * reps)), f"line x{reps}"
        words = last.split()[:6]
        gram = " ".join(words[-3:]) if len(words) >= 3 else "and so on"
        reps = rng.randint(20, 50)
        return with_response(conv, " ".join(words[:3] + [gram] * reps)), f"ngram x{reps}"
    raise ValueError(f"unknown failure kind {kind!r}")


def non_english_pool(rng: Random) -> dict[str, list[Conv]]:
    """Every distinct (question, 3-sentence set) per language, shuffled; used without repeats."""
    pools: dict[str, list[Conv]] = {}
    for lang, groups in T.NON_ENGLISH.items():
        joiner = "" if lang in ("zh", "ja") else " "
        convs = []
        for questions, sentences in groups:
            for q in questions:
                for combo in itertools.combinations(sentences, 3):
                    s = list(combo)
                    rng.shuffle(s)
                    convs.append(Conv([("user", q), ("assistant", joiner.join(s))], f"lang_{lang}"))
        rng.shuffle(convs)
        pools[lang] = convs
    return pools


def overlong_chat(rng: Random, w: Writer) -> Conv:
    """A long tour across topics (> OVERLONG_WORDS words) without repeating a fact within it."""
    topics = list(T.TOPICS)
    rng.shuffle(topics)
    turns: list[tuple[str, str]] = []
    words = 0
    seen = ConvSeen()
    for topic in itertools.cycle(topics):
        seen.facts = set()  # fact indices are per topic
        e = rng.choice(topic.entities)
        turns.append(("user", f"Next, tell me everything important about {e} in {topic.name}."))
        ans = w.answer(topic, e, k=len(topic.facts), style=rng.choice(("para", "list")), seen=seen)
        turns.append(("assistant", ans))
        words += len(turns[-2][1].split()) + len(ans.split())
        if words > OVERLONG_WORDS * 1.1:
            break
    return Conv(turns, "mixed")


# ---------------------------------------------------------------------------------------------- sources


def assign(rng: Random, n: int, counts: dict[str, int], reserved: Sequence[int] = (0,)) -> dict[int, str]:
    """Pick disjoint slot indices for each planted kind (never slot 0: JSONL sniffing reads line 1)."""
    free = [i for i in range(n) if i not in set(reserved)]
    total = sum(counts.values())
    if total > len(free):
        raise ConfigError(f"too many planted records ({total}) for {n} records; lower --plant-scale")
    chosen = rng.sample(free, total)
    out: dict[int, str] = {}
    it = iter(chosen)
    for kind, c in counts.items():
        for _ in range(c):
            out[next(it)] = kind
    return out


def earlier_clean(rng: Random, slots: list[Slot], j: int, pred: Callable[[Slot], bool] = lambda s: True) -> int:
    """An earlier unplanted slot (the original a duplicate points to)."""
    for _ in range(50):
        i = rng.randrange(j)
        if slots[i].kind is None and slots[i].conv is not None and pred(slots[i]):
            return i
    for i in range(j):
        if slots[i].kind is None and slots[i].conv is not None and pred(slots[i]):
            return i
    raise RuntimeError("no earlier clean record to duplicate")  # slot 0 is always clean


class Corpus:
    """Builds all five sources in a fixed order from one seeded random stream."""

    def __init__(self, n_records: int = DEFAULT_RECORDS, seed: int = 0, plant_scale: float = 1.0) -> None:
        self.plan = make_plan(n_records, plant_scale)
        self.seed = seed
        self.rng = Random(seed)
        self.w = Writer(self.rng)
        self.slots: dict[str, list[Slot]] = {}
        self.so_ids: list[int] = []  # question Id per SO slot
        self.entities = {t.name: t.entities for t in T.TOPICS}
        self.lang_pool = non_english_pool(self.rng)
        self._lang_cycle = itertools.cycle(sorted(self.lang_pool))

    # -- shared planting for the chat-like sources ---------------------------------------------------
    def _chat_source(self, src: str, make: Callable[[], Conv]) -> list[Slot]:
        rng = self.rng
        n = self.plan.records[src]
        counts = dict(self.plan.planted[src])
        kinds = assign(rng, n, counts)
        slots = [Slot() for _ in range(n)]
        for j in range(n):  # clean content first, so plants can copy earlier clean records
            if kinds.get(j) not in ("malformed", "overlong", "non_english", "exact_dup", "near_dup"):
                slots[j].conv = make()
            if kinds.get(j) == "failed_truncated":
                for _ in range(50):
                    last = slots[j].conv.turns[-1][1]
                    # a list's last line may end without punctuation, so the filter (rightly) keeps
                    # lists; a cut-off response is planted in prose
                    if len(last.split()) > TRUNCATED_MIN_WORDS + 2 and not _LIST_LINE.search(last):
                        break
                    slots[j].conv = make()
        for j in range(n):
            kind = kinds.get(j)
            if kind is None:
                continue
            s = slots[j]
            s.kind = kind
            if kind == "exact_dup":
                i = earlier_clean(rng, slots, j)
                s.conv, s.of = slots[i].conv, (FILES[src], i)
            elif kind == "near_dup":
                i = earlier_clean(rng, slots, j)
                s.conv, s.of = near_dup_conv(rng, slots[i].conv), (FILES[src], i)
            elif kind == "non_english":
                lang = next(self._lang_cycle)
                if not self.lang_pool[lang]:
                    s.kind = None
                    s.conv = make()
                    continue
                s.conv, s.detail = self.lang_pool[lang].pop(), lang
            elif kind in ("failed_empty", "failed_truncated", "failed_error", "refusal", "pii", "repetitive"):
                s.conv, s.detail = failure(rng, kind, s.conv, self.entities)
            elif kind == "html":
                s.conv.html = True
            elif kind == "overlong":
                s.conv = overlong_chat(rng, self.w)
                s.detail = sum(len(t.split()) for _, t in s.conv.turns)
            elif kind == "malformed":
                s.conv, s.detail = self._malformed(src, j)
        return slots

    def _malformed(self, src: str, j: int) -> tuple[Any, str]:
        """Raw bytes for a JSONL line, an object with an unknown role for ShareGPT, or an Alpaca element
        with a missing comma (the reader must resync at the next element and lose only this one)."""
        if src == "alpaca":
            return _BrokenElement(self.w.alpaca()), "json_decode"
        if src == "sharegpt":
            conv = self.w.chat(1)
            return {"id": self._sg_id(), "conversations": [
                {"from": "human", "value": conv.prompt},
                {"from": "narrator", "value": "The assistant thinks for a moment before answering."},
                {"from": "gpt", "value": conv.turns[1][1]},
            ]}, "unknown_role"
        # Alternate so each JSONL file gets both kinds: broken JSON first, then invalid UTF-8. The detail
        # is the reason code the readers give (curate.ingest.base), so evaluation can match it exactly.
        count = self._malformed_count.get(src, 0)
        self._malformed_count[src] = count + 1
        which = ("json_decode", "invalid_utf8")[count % 2]
        if which == "json_decode":
            line = '{"text": "<human>: How do I fix a leaky faucet?\\n<bot>: Turn off the water supply first'
            if src == "p3":
                line = '{"inputs_pretokenized": "Review: A dull film. Is this review positive or negative?", "targ'
            return line.encode(), which
        text = "<human>: Qu\xe9 es un buen caf\xe9?\n<bot>: Un caf\xe9 reci\xe9n molido."
        body = json.dumps({"text": text} if src == "oig" else {"inputs_pretokenized": text}, ensure_ascii=False)
        return body.encode("latin-1"), which

    def _sg_id(self) -> str:
        return "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(7))

    # -- P3 ------------------------------------------------------------------------------------------
    def _p3_record(self, kind: str) -> dict[str, Any]:
        """One P3 record of template ``kind`` (imdb, rotten, amazon, ag_news, boolq)."""
        rng = self.rng
        if kind in ("imdb", "rotten"):
            pos = rng.random() < 0.5
            pool = T.P3_POSITIVE if pos else T.P3_NEGATIVE
            slots = {"title": f"{rng.choice(T.P3_TITLE_A)} {rng.choice(T.P3_TITLE_B)}",
                     "actor": rng.choice(T.P3_ACTORS), "n": str(rng.randint(85, 170)), "year": str(rng.randint(1995, 2022))}
            sents = [s.format(**slots) for s in rng.sample(pool, rng.randint(3, 4))]
            adj = rng.choice(T.P3_REVIEW_POS_ADJ if pos else T.P3_REVIEW_NEG_ADJ)
            sents.insert(rng.randrange(len(sents) + 1), f"{rng.choice(T.P3_SCENES).capitalize()} with "
                         f"{rng.choice(T.P3_ROLES)} is {adj}, and {rng.choice(T.P3_DIRECTORS)} directs it "
                         f"{'with real care' if pos else 'without any energy'}.")
            review = " ".join(sents)
            if kind == "imdb":
                return {"inputs_pretokenized": f"{review} Did the reviewer find this movie good or bad?",
                        "targets_pretokenized": "good" if pos else "bad", "answer_choices": ["bad", "good"],
                        "subset": "imdb_Reviewer_Opinion_bad_good_choices"}
            return {"inputs_pretokenized": f"{review} The sentiment expressed for the movie is",
                    "targets_pretokenized": "positive" if pos else "negative",
                    "answer_choices": ["negative", "positive"], "subset": "rotten_tomatoes_Movie_Expressed_Sentiment"}
        if kind == "amazon":
            pos = rng.random() < 0.5
            p = rng.choice(T.P3_PRODUCTS)
            products: tuple[str, ...] = T.P3_PRODUCT_POS if pos else T.P3_PRODUCT_NEG
            title = rng.choice(("Great value", "Love it", "Works well")) if pos else rng.choice(("Disappointed", "Junk", "Avoid"))
            review = (f"I bought the {rng.choice(T.P3_COLORS)} {rng.choice(T.P3_BRANDS)} {p} {rng.choice(T.P3_WHEN)}. "
                      + " ".join(s.format(p=p, n=rng.randint(2, 40)) for s in rng.sample(products, 3)))
            return {"inputs_pretokenized": "Title: " + title + "\nReview: " + review
                    + "\nIs this product review positive?", "targets_pretokenized": "Yes" if pos else "No",
                    "answer_choices": ["No", "Yes"], "subset": "amazon_polarity_Is_this_review"}
        if kind == "ag_news":
            label = rng.choice(sorted(T.P3_NEWS))
            city = rng.choice(T.P3_CITIES)
            fill = {"city": city, "team": rng.choice(T.P3_TEAMS), "company": rng.choice(T.P3_COMPANIES),
                    "n": str(rng.randint(2, 90)), "person": rng.choice(T.P3_PEOPLE), "day": rng.choice(T.P3_WEEKDAYS)}
            lead = f"{city.upper()} ({rng.choice(T.P3_AGENCIES)}) - "
            body = [s.format(**fill) for s in rng.sample(T.P3_NEWS[label], 3)]
            body.insert(rng.randrange(4), T.P3_NEWS_LEAD[label].format(n=rng.randint(2, 60), person=fill["person"],
                                                                       day=fill["day"]))
            article = lead + " ".join(body)
            choices = ["World politics", "Sports", "Business", "Science and technology"]
            target = {"World": "World politics", "Science": "Science and technology"}.get(label, label)
            return {"inputs_pretokenized": f"What label best describes this news article?\n{article}",
                    "targets_pretokenized": target, "answer_choices": choices, "subset": "ag_news_classify_question_first"}
        topic, e = self.w.pick()
        other = rng.choice([t for t in T.TOPICS if t is not topic])
        passage_t, q_t, target = rng.choice(T.P3_BOOLQ)
        f, f2 = rng.sample(topic.facts, 2)
        passage = passage_t.format(E=e[:1].upper() + e[1:], t=topic.name, f=f, f2=f2)
        question = q_t.format(e=e, t=topic.name, t2=other.name)
        return {"inputs_pretokenized": f"{passage}\nQuestion: {question}\nAnswer:", "targets_pretokenized": target,
                "answer_choices": ["No", "Yes"], "subset": "super_glue_boolq_yes_no_question"}

    def _p3(self) -> list[Slot]:
        rng = self.rng
        n = self.plan.records["p3"]
        kinds = assign(rng, n, self.plan.planted["p3"])
        slots = [Slot() for _ in range(n)]
        seen: set[str] = set()
        guard = NearGuard()
        for j in range(n):
            if kinds.get(j) in ("exact_dup", "malformed"):
                continue
            # Templated texts can collide or nearly so; only planted duplicates may be identical or close.
            best, best_sim, best_bits = None, 2.0, None
            kind = rng.choice(("imdb", "rotten", "amazon", "ag_news", "boolq"))
            for _ in range(30):
                rec = self._p3_record(kind)
                if rec["inputs_pretokenized"] in seen:
                    continue
                bits = guard.bits(rec["inputs_pretokenized"] + " " + rec["targets_pretokenized"])
                sim = guard.max_jaccard(rec["subset"], bits)
                if sim < best_sim:
                    best, best_sim, best_bits = rec, sim, bits
                if sim < P3_MAX_JACCARD:
                    break
            assert best is not None and best_bits is not None
            seen.add(best["inputs_pretokenized"])
            guard.add(best["subset"], best_bits)
            slots[j].conv = best
        for j, kind in sorted(kinds.items()):
            slots[j].kind = kind
            if kind == "exact_dup":
                i = earlier_clean(rng, slots, j)
                slots[j].conv, slots[j].of = dict(slots[i].conv), (P3_FILE, i)
            else:
                slots[j].conv, slots[j].detail = self._malformed("p3", j)
        return slots

    # -- Stack Overflow -------------------------------------------------------------------------------
    def _so_question(self) -> dict[str, Any]:
        rng, w = self.rng, self.w
        topic, e = w.pick(T.PROGRAMMING_TOPICS)
        ids = ("data", "items", "result", "config", "user", "orders", "row", "payload", "cache", "score",
               "total", "path", "node", "value", "records", "report", "count", "batch", "name", "entry")

        def code() -> str:
            a, b = rng.sample(ids, 2)
            return rng.choice(topic.code).format(
                a=a, b=b, C=b.capitalize(), n=rng.randint(2, 99), f=rng.choice(SO_FILES),
                h="".join(rng.choice("0123456789abcdef") for _ in range(7)),
            )

        project = rng.choice(SO_PROJECTS)
        title = ""
        for _ in range(40):  # distinct titles: an entity with a concrete symptom, or a how-to question
            e2 = rng.choice([x for x in topic.entities if x != e])
            title = w.slots(w.fill(rng.choice(T.SO_TITLES if rng.random() < 0.7 else topic.questions), topic, e, e2),
                            topic)
            if rng.random() < 0.3:
                title = title.rstrip("?") + rng.choice((" - what am I missing?", " (beginner)", "?", " in production?"))
            if title.lower() not in w._prompts:
                w._prompts.add(title.lower())
                break
            topic, e = w.pick(T.PROGRAMMING_TOPICS)
        body = [
            f"I'm working on {project} and I'm stuck with {e}.",
            code(),
            rng.choice(SO_PROBLEMS).format(n=rng.randint(3, 60), e=e),
            rng.choice(SO_TRIED).format(e=e, t=topic.name),
        ]
        facts = w.facts(topic, e, rng.choice((2, 3)))
        accepted = {"text": [" ".join(facts[:-1]), facts[-1]], "code": code(), "score": rng.randint(2, 120)}
        extra = []
        for _ in range(rng.choice((0, 1, 1, 2))):
            f2 = w.facts(topic, rng.choice(topic.entities), 2)
            extra.append({"text": [" ".join(f2), rng.choice(SO_ASIDES)], "code": "", "score": rng.randint(-2, 30)})
        has_accepted = rng.random() < 0.85
        return {"title": title, "body": body, "tags": list(topic.tags), "answers": [accepted, *extra],
                "accepted": 0 if has_accepted else None, "score": rng.randint(0, 200), "topic": topic.name}

    def _oig_original(self, j: int) -> int:
        """An unplanted two-turn OIG record that no planted OIG record copies (its text is replaced)."""
        oig = self.slots["oig"]
        if not hasattr(self, "_oig_free"):
            copied = {x.of[1] for x in oig if x.of is not None and x.of[0] == OIG_FILE}
            self._oig_free = [i for i, x in enumerate(oig) if i > 0 and x.kind is None and i not in copied
                              and isinstance(x.conv, Conv) and len(x.conv.turns) == 2]
            self.rng.shuffle(self._oig_free)
        if not self._oig_free:
            raise ConfigError("too few clean OIG records for the Stack Overflow cross-source duplicates")
        return self._oig_free.pop()

    def _so(self) -> list[Slot]:
        rng = self.rng
        n = self.plan.records["stackoverflow"]
        kinds = assign(rng, n, self.plan.planted["stackoverflow"])
        slots = [Slot() for _ in range(n)]
        for j in range(n):
            q = self._so_question()
            if q["accepted"] is None:  # only scored answers: the reader takes the top score, make it ours
                q["answers"][0]["score"] = max(a["score"] for a in q["answers"]) + rng.randint(1, 9)
            slots[j].conv = q
        for j, kind in sorted(kinds.items()):
            s = slots[j]
            s.kind = kind
            if kind == "exact_dup":
                i = earlier_clean(rng, slots, j)
                s.conv, s.of = json.loads(json.dumps(slots[i].conv)), (SO_FILE, i)
            elif kind == "near_dup":
                i = earlier_clean(rng, slots, j)
                orig = slots[i].conv
                base = _so_text(orig)
                for attempt in range(30):
                    q = json.loads(json.dumps(orig))
                    q["title"] = near_dup_edit(rng, q["title"], 1)
                    q["answers"][0]["text"][0] = near_dup_edit(rng, q["answers"][0]["text"][0],
                                                               rng.randint(1, 2 if attempt < 15 else 1))
                    text = _so_text(q)
                    if (normalized(text) != normalized(base) and jaccard(tokens(text), tokens(base)) >= 0.8
                            and jaccard(shingles(text), shingles(base)) >= NEAR_DUP_MIN_NGRAM_JACCARD):
                        break
                else:  # a case change and an added comma keep tokens and shingles identical
                    q = json.loads(json.dumps(orig))
                    q["title"] = q["title"].upper() + ","
                s.conv, s.of = q, (SO_FILE, i)
            elif kind == "cross_source_dup":
                s.conv["accepted"] = 0
                i = self._oig_original(j)
                self.slots["oig"][i].conv = Conv([("user", so_user_text(s.conv)), ("assistant", so_answer_text(s.conv))],
                                                 s.conv["topic"])
                s.of = (OIG_FILE, i)
            elif kind == "pii":
                c = failure(rng, "pii", Conv([("user", ""), ("assistant", s.conv["answers"][0]["text"][-1])]), {})
                s.conv["answers"][0]["text"][-1], s.detail = c[0].turns[-1][1], c[1]
        return slots

    # -- build --------------------------------------------------------------------------------------
    def build(self) -> None:
        self._malformed_count: dict[str, int] = {}
        w = self.w
        # OIG before Stack Overflow: SO's cross-source duplicates turn unplanted OIG records into their originals.
        self.slots["alpaca"] = self._chat_source("alpaca", w.alpaca)
        self.slots["oig"] = self._chat_source("oig", w.qa)
        self.slots["sharegpt"] = self._chat_source("sharegpt", lambda: w.chat(self.rng.choice((1, 2, 2, 3, 4))))
        self.slots["p3"] = self._p3()
        self.slots["stackoverflow"] = self._so()

    # -- write --------------------------------------------------------------------------------------
    def locator(self, file: str, index: int) -> int:
        return self.so_ids[index] if file == SO_FILE else index + 1

    def write(self, out: Path) -> dict[str, Any]:
        for rel in FILES.values():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / OIG_FILE).write_bytes(b"".join(_oig_line(s) for s in self.slots["oig"]))
        (out / P3_FILE).write_bytes(b"".join(_p3_line(s) for s in self.slots["p3"]))
        (out / ALPACA_FILE).write_bytes(_json_array([_alpaca_obj(s, self.rng) for s in self.slots["alpaca"]]))
        (out / SHAREGPT_FILE).write_bytes(_json_array([self._sharegpt_obj(s) for s in self.slots["sharegpt"]]))
        (out / SO_FILE).write_bytes(self._posts_xml())
        gt_lines = []
        for src, rel in FILES.items():
            for j, s in enumerate(self.slots[src]):
                if s.kind is None:
                    continue
                of = None if s.of is None else {"file": s.of[0], "record": self.locator(s.of[0], s.of[1])}
                gt_lines.append({"file": rel, "record": self.locator(rel, j), "kind": s.kind, "of": of,
                                 "detail": s.detail})
        (out / "ground_truth.jsonl").write_bytes(
            b"".join(json.dumps(g, ensure_ascii=False).encode() + b"\n" for g in gt_lines)
        )
        by_kind: dict[str, Counter[str]] = {}
        for g in gt_lines:
            src = next(k for k, v in FILES.items() if v == g["file"])
            by_kind.setdefault(g["kind"], Counter())[src] += 1
        summary = {
            "seed": self.seed,
            "files": FILES,
            "records": {src: len(self.slots[src]) for src in FILES},
            "planted": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
            "planted_total": len(gt_lines),
            "low_diversity_source": "p3",
            "topics": [t.name for t in T.TOPICS],
            "locators": {"jsonl": "1-based line number", "json_array": "1-based element ordinal",
                         "posts_xml": "question Id"},
        }
        (out / "ground_truth_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return summary

    def _sharegpt_obj(self, s: Slot) -> dict[str, Any]:
        if isinstance(s.conv, dict):  # the planted unknown-role record
            return s.conv
        conv: Conv = s.conv
        out = []
        for role, text in conv.turns:
            value = to_chatgpt_html(text, conv.topic, self.rng) if conv.html and role == "assistant" else text
            out.append({"from": "human" if role == "user" else "gpt", "value": value})
        return {"id": self._sg_id(), "conversations": out}

    def _posts_xml(self) -> bytes:
        rng = self.rng
        rows: list[str] = []
        next_id = 1
        day = 0.0
        wiki_at = set(rng.sample(range(len(self.slots["stackoverflow"])), min(4, len(self.slots["stackoverflow"]))))
        for j, s in enumerate(self.slots["stackoverflow"]):
            q = s.conv
            if j in wiki_at:  # tag wiki excerpt + body, as real dumps interleave them
                tag = q["tags"][0]
                for ptype, body in ((4, f"{tag} is a tag for questions about {q['topic']}."),
                                    (5, (f"<p>Use the {tag} tag for questions about {q['topic']}. Include a "
                                         "minimal example and the full error message.</p>"))):
                    rows.append(_row(Id=next_id, PostTypeId=ptype, CreationDate=_date(day), Score=0,
                                     Body=body, OwnerUserId=-1, CommentCount=0))
                    next_id += 1
            qid = next_id
            self.so_ids.append(qid)
            ans_ids = list(range(qid + 1, qid + 1 + len(q["answers"])))
            next_id = qid + 1 + len(q["answers"])
            day += rng.random() * 0.5
            qattrs: dict[str, Any] = {"Id": qid, "PostTypeId": 1}
            if q["accepted"] is not None:
                qattrs["AcceptedAnswerId"] = ans_ids[q["accepted"]]
            body = so_body_html(q)
            qattrs.update(
                CreationDate=_date(day), Score=q["score"], ViewCount=q["score"] * 37 + rng.randint(5, 900),
                Body=body, OwnerUserId=rng.randint(2, 9000), LastActivityDate=_date(day + 0.2), Title=q["title"],
                Tags="".join(f"<{t}>" for t in q["tags"]), AnswerCount=len(q["answers"]),
                CommentCount=rng.randint(0, 6),
            )
            rows.append(_row(**qattrs))
            order = list(range(len(q["answers"])))
            rng.shuffle(order)  # answers arrive in any order after their question
            for k in order:
                a = q["answers"][k]
                rows.append(_row(Id=ans_ids[k], PostTypeId=2, ParentId=qid, CreationDate=_date(day + 0.01 * (k + 1)),
                                 Score=a["score"], Body=so_answer_html(a), OwnerUserId=rng.randint(2, 9000),
                                 CommentCount=rng.randint(0, 3)))
        rows.sort(key=lambda r: int(r.split('"', 2)[1]))  # dumps are sorted by Id
        head = '\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
        return (head + "".join(rows) + "</posts>\n").encode("utf-8")


SO_PROJECTS = (
    "a small inventory tool for my team", "a Flask API for a school project", "a data pipeline at work",
    "a command line tool for log analysis", "an internal dashboard", "a hobby web scraper",
    "a reporting job that runs every night", "my first open source contribution", "a chat bot for our Discord",
    "a migration from an old PHP system", "a home automation script", "a thesis analysis notebook",
    "a billing service", "a static site generator", "a game server plugin", "a deployment script",
)
SO_PROBLEMS = (
    "It runs, but the output is wrong for about {n} percent of the inputs.",
    "I get an error on line {n} and I don't understand the message.",
    "This works locally but fails on the server.",
    "The result is empty even though I am sure the data is there.",
    "It takes {n} seconds on a tiny input, which seems far too slow.",
    "Everything looks right, yet the value never changes.",
    "The docs on {e} did not make it clear to me what is going on.",
    "Sometimes it works and sometimes it doesn't, which is the confusing part.",
)
SO_TRIED = (
    "I already searched for similar questions about {e} but none matched my case.",
    "I tried rewriting it a few ways and restarting everything, with no luck.",
    "I'm fairly new to {t}, so sorry if this is obvious.",
    "What is the idiomatic way to do this?",
    "Is this a bug or am I misunderstanding {e}?",
    "Any pointers would be appreciated.",
)
SO_ASIDES = (
    "This is what worked for me.", "See the documentation for more details.",
    "Hope that helps.", "I ran into the same issue last year.", "Worth checking your versions too.",
)
SO_FILES = ("data.csv", "report.txt", "app.py", "main.js", "users", "orders", "config.yaml", "logs", "sales.csv")


# ---------------------------------------------------------------------------------------------- formats


def _esc_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc_attr(s: str) -> str:
    return _esc_text(s).replace('"', "&quot;").replace("\r", "&#xD;").replace("\n", "&#xA;")


def _row(**attrs: Any) -> str:
    return "  <row " + " ".join(f'{k}="{_esc_attr(str(v))}"' for k, v in attrs.items()) + " />\n"


def _date(day: float) -> str:
    base = time.gmtime(1420070400 + int(day * 86400))  # 2015-01-01, shifted by a deterministic offset
    ms = int((day * 86400 % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", base) + f".{ms:03d}"


def so_body_html(q: dict[str, Any]) -> str:
    """A question's Body: paragraphs, the second part a code block."""
    return "".join(
        f"<pre><code>{_esc_text(part)}\n</code></pre>\n" if k == 1 else f"<p>{_esc_text(part)}</p>\n\n"
        for k, part in enumerate(q["body"])
    )


def so_answer_html(a: dict[str, Any]) -> str:
    """An answer's Body: a paragraph, an optional code block, a paragraph."""
    parts = [f"<p>{_esc_text(a['text'][0])}</p>\n"]
    if a["code"]:
        parts.append(f"\n<pre><code>{_esc_text(a['code'])}\n</code></pre>\n")
    parts.append(f"\n<p>{_esc_text(a['text'][1])}</p>\n")
    return "".join(parts)


def so_user_text(q: dict[str, Any]) -> str:
    """The user turn read.stackexchange makes of a question: title, blank line, body as Markdown."""
    from curate.textutil import html_to_markdown

    return f"{q['title']}\n\n{html_to_markdown(so_body_html(q))}"


def so_answer_text(q: dict[str, Any]) -> str:
    """The assistant turn read.stackexchange makes of the question's first (accepted) answer."""
    from curate.textutil import html_to_markdown

    return str(html_to_markdown(so_answer_html(q["answers"][0])))


def _so_text(q: dict[str, Any]) -> str:
    """A question's text as the reader yields it: title, body, then the answer it picks (ours is first)."""
    a = q["answers"][0]
    return "\n".join([q["title"], *q["body"], a["text"][0], a["code"], a["text"][1]])


def _oig_line(s: Slot) -> bytes:
    if isinstance(s.conv, bytes):
        return s.conv + b"\n"
    conv: Conv = s.conv
    text = "\n".join(f"<human>: {t}" if r == "user" else f"<bot>: {t}" for r, t in conv.turns)
    return json.dumps({"text": text, "metadata": {"source": "unified_chip2"}}, ensure_ascii=False).encode() + b"\n"


def _p3_line(s: Slot) -> bytes:
    if isinstance(s.conv, bytes):
        return s.conv + b"\n"
    return json.dumps(s.conv, ensure_ascii=False).encode() + b"\n"


@dataclass
class _BrokenElement:
    """An Alpaca record written with the comma after its instruction missing (invalid JSON)."""

    conv: Conv


def _alpaca_obj(s: Slot, rng: Random) -> dict[str, str] | str:
    if isinstance(s.conv, _BrokenElement):
        good = _alpaca_obj(Slot(s.conv.conv), rng)
        text = json.dumps(good, ensure_ascii=False, indent=2)
        return text.replace('",\n  "input"', '"\n  "input"', 1)
    conv: Conv = s.conv
    if conv.alpaca_input:
        inp = conv.alpaca_input
    else:  # most real Alpaca records have "", the seed tasks write "<noinput>"
        inp = "<noinput>" if rng.random() < 0.15 else ""
    return {"instruction": conv.prompt, "input": inp, "output": conv.turns[-1][1]}


def _json_array(objs: Sequence[dict[str, Any] | str]) -> bytes:
    """Indented like the published Alpaca/ShareGPT files: one element starts per top-level line.

    A string is an element already rendered (a planted broken one)."""
    parts = [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False, indent=2) for o in objs]
    body = ",\n".join("  " + p.replace("\n", "\n  ") for p in parts)
    return ("[\n" + body + "\n]\n").encode()


def to_chatgpt_html(text: str, topic: str, rng: Random) -> str:
    """Render an answer the way scraped ChatGPT pages store it: <p>, <ol>/<ul>, <pre><code class=...>."""
    out = []
    lines = [ln for ln in text.split("\n") if ln.strip()]
    items: list[str] = []
    tag = ""
    for ln in lines + [""]:
        m = re.match(r"^(\d+\.|-)\s+(.*)$", ln)
        if m:
            tag = "ol" if m.group(1) != "-" else "ul"
            items.append(f"<li>{_esc_text(m.group(2))}</li>")
            continue
        if items:
            out.append(f"<{tag}>" + "".join(items) + f"</{tag}>")
            items = []
        if ln:
            out.append(f"<p>{_esc_text(ln)}</p>")
    prog = next((t for t in T.PROGRAMMING_TOPICS if t.name == topic), None)
    if prog is not None:
        lang = {"python programming": "python", "pandas dataframes": "python", "regular expressions": "python",
                "javascript": "javascript", "sql databases": "sql", "docker containers": "dockerfile"}.get(topic, "bash")
        snippet_ = rng.choice(prog.code).format(a="value", b="item", C="Item", n=rng.randint(2, 9), f="data.csv",
                                                h="3f2a9c1")
        code = (f'<pre><div class="bg-black rounded-md"><code class="!whitespace-pre hljs language-{lang}">'
                f"{_esc_text(snippet_)}</code></div></pre>")
        out.insert(min(1, len(out)), code)
    return '<div class="markdown prose w-full break-words dark:prose-invert light">' + "".join(out) + "</div>"


# ---------------------------------------------------------------------------------------------- API + CLI


def generate(out_dir: str | Path, n_records: int = DEFAULT_RECORDS, seed: int = 0, plant_scale: float = 1.0) -> dict[str, Any]:
    """Write the demo corpus under ``out_dir``; returns the ground-truth summary."""
    out = Path(out_dir)
    corpus = Corpus(n_records, seed, plant_scale)
    corpus.build()
    return corpus.write(out)


def iter_ground_truth(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    with open(Path(out_dir) / "ground_truth.jsonl", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


# The recipes ``make demo`` runs on the corpus: the sources each reads (recipe source id -> demo file).
RECIPE_SOURCES: dict[str, dict[str, str]] = {
    "gpt4all": {"oig": OIG_FILE, "stackoverflow": SO_FILE, "p3": P3_FILE},
    "vicuna": {"sharegpt": SHAREGPT_FILE},
    "alpaca": {"alpaca": ALPACA_FILE},
}


def recipe_overrides(recipe: str, raw_dir: str | Path, export_dir: str | Path) -> list[str]:
    """The ``--set`` overrides that point ``pipelines/<recipe>.yaml`` at the demo files (as ``make demo``)."""
    sets = [f"sources.{src}.path={Path(raw_dir) / rel}" for src, rel in RECIPE_SOURCES[recipe].items()]
    return [*sets, f"steps.write_hub_dataset.params.path={export_dir}"]


def recipe_plan(recipe_path: str | Path, raw_dir: str | Path, export_dir: str | Path,
                skip: Sequence[str] = ()) -> Any:
    """``pipelines/<name>.yaml`` pointed at the demo files, as a validated Plan; steps whose ``use`` is in
    ``skip`` are left out (e.g. the embedding steps, which need a model)."""
    import yaml

    from curate.pipeline.spec import apply_overrides, build_plan

    path = Path(recipe_path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["steps"] = [st for st in raw["steps"] if st["use"] not in skip]
    sets = recipe_overrides(raw["name"], raw_dir, export_dir)
    if not any(st["use"] == "write.hub_dataset" for st in raw["steps"]):
        sets = sets[:-1]
    return build_plan(apply_overrides(raw, sets), origin=str(path))


def planted_outcomes(raw_dir: str | Path, run_dirs: Sequence[str | Path]) -> Any:
    """What the runs did to each planted record of the corpus under ``raw_dir``.

    Returns a polars DataFrame, one row per planted record in a file the runs read: the ground truth
    (``file``, ``record``, ``kind``, ``detail``, ``of_file``, ``of_record``), then ``step`` and
    ``reason`` of the first removal (ledger: the step id; quarantine: ``quarantine:<step>``; both null
    when the record was kept), ``dup_file``/``dup_record`` of the record named in ``duplicate_of``,
    ``dup_matches_of`` (that record is the planted original or has the same content hash as it), and
    for duplicates the original's fate: ``of_step``, ``of_reason`` and ``of_removed_for_it`` (the
    original was removed as a duplicate of this record, or of one with the same content hash), which
    is how a dedup step that keeps the longer copy finds a pair.
    Records map through provenance: the file path ends with the ground-truth path, the record locator
    is equal.
    """
    import polars as pl

    runs = [Path(r) for r in run_dirs]
    ing = pl.concat(
        [pl.read_parquet(r / "00_ingest" / "kept.parquet", columns=["id", "provenance", "content_hash"])
         for r in runs], how="vertical_relaxed",
    ).select("id", pl.col("provenance").struct.field("file").alias("path"),
             pl.col("provenance").struct.field("record"), "content_hash")
    removed = []
    for r in runs:
        for f in sorted((r / "ledger").glob("*.parquet")):
            led = pl.read_parquet(f, columns=["id", "provenance", "step", "reason", "duplicate_of"])
            removed.append(led.select(
                pl.col("provenance").struct.field("file").alias("path"),
                pl.col("provenance").struct.field("record"), "step", "reason", "duplicate_of",
                pl.lit(f"{r}/{f.stem}").alias("_order"),
            ))
        for f in sorted((r / "quarantine").glob("*.jsonl")):
            with f.open(encoding="utf-8") as fh:
                q = [json.loads(line) for line in fh if line.strip()]
            removed.append(pl.DataFrame(
                {"path": [e["file"] for e in q], "record": [e["record"] for e in q],
                 "step": [f"quarantine:{e['step']}" for e in q], "reason": [e["reason"] for e in q],
                 "duplicate_of": [None] * len(q), "_order": [f"{r}/{f.stem}"] * len(q)},
                schema={"path": pl.Utf8, "record": pl.Int64, "step": pl.Utf8, "reason": pl.Utf8,
                        "duplicate_of": pl.Utf8, "_order": pl.Utf8},
            ))
    rem = pl.concat(removed, how="vertical_relaxed").sort("_order", maintain_order=True)
    paths = set(ing["path"].unique().to_list()) | set(rem["path"].unique().to_list())
    gt = [g for g in iter_ground_truth(raw_dir)]
    to_path = {rel: next((p for p in paths if p == rel or p.endswith("/" + rel)), None) for rel in FILES.values()}
    gt = [g for g in gt if to_path[g["file"]] is not None]
    truth = pl.DataFrame(
        {"file": [g["file"] for g in gt], "record": [g["record"] for g in gt], "kind": [g["kind"] for g in gt],
         "detail": [None if g["detail"] is None else str(g["detail"]) for g in gt],
         "of_file": [g["of"]["file"] if g["of"] else None for g in gt],
         "of_record": [g["of"]["record"] if g["of"] else None for g in gt]},
        schema={"file": pl.Utf8, "record": pl.Int64, "kind": pl.Utf8, "detail": pl.Utf8, "of_file": pl.Utf8,
                "of_record": pl.Int64},
    )
    rel_of = {p: rel for rel, p in to_path.items() if p is not None}
    ing = ing.with_columns(pl.col("path").replace_strict(rel_of, default=None).alias("file"))
    by_id = ing.select(pl.col("id").alias("duplicate_of"), pl.col("file").alias("dup_file"),
                       pl.col("record").alias("dup_record"), pl.col("content_hash").alias("dup_hash")).unique(
        "duplicate_of")
    first = (
        rem.with_columns(pl.col("path").replace_strict(rel_of, default=None).alias("file"))
        .unique(["file", "record"], keep="first", maintain_order=True)
        .join(by_id, on="duplicate_of", how="left")
        .select("file", "record", "step", "reason", "dup_file", "dup_record", "dup_hash")
    )
    hashes = ing.select("file", "record", pl.col("content_hash").alias("hash")).unique(["file", "record"])
    of = first.select(pl.col("file").alias("of_file"), pl.col("record").alias("of_record"),
                      pl.col("step").alias("of_step"), pl.col("reason").alias("of_reason"),
                      pl.col("dup_file").alias("of_dup_file"), pl.col("dup_record").alias("of_dup_record"))
    out = (
        truth.join(first, on=["file", "record"], how="left")
        .join(hashes, on=["file", "record"], how="left")
        .join(of, on=["of_file", "of_record"], how="left")
        .join(hashes.rename({"file": "of_file", "record": "of_record", "hash": "of_hash"}),
              on=["of_file", "of_record"], how="left")
        .with_columns(
            (((pl.col("dup_file") == pl.col("of_file")) & (pl.col("dup_record") == pl.col("of_record")))
             | (pl.col("dup_hash") == pl.col("of_hash"))).fill_null(False).alias("dup_matches_of"),
            (((pl.col("of_dup_file") == pl.col("file")) & (pl.col("of_dup_record") == pl.col("record")))
             | (pl.col("hash") == pl.col("of_hash"))).fill_null(False).alias("of_removed_for_it"),
        )
    )
    return out.drop("dup_hash", "hash", "of_hash", "of_dup_file", "of_dup_record")


def outcome_table(outcomes: Any) -> dict[str, Counter[str]]:
    """Per planted kind: how many records each ``step: reason`` removed (``kept`` when none did; a kept
    duplicate whose original was removed as its duplicate names that step instead)."""
    table: dict[str, Counter[str]] = {}
    cols = ("kind", "step", "reason", "of_step", "of_reason", "of_removed_for_it")
    for kind, step, reason, of_step, of_reason, of_for_it in outcomes.select(*cols).iter_rows():
        if step is not None:
            key = f"{step}: {reason}"
        elif of_for_it:
            key = f"kept, its original removed by {of_step}: {of_reason}"
        else:
            key = "kept"
        table.setdefault(kind, Counter())[key] += 1
    return dict(sorted(table.items()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="output folder (created; existing demo files are overwritten)")
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS,
                        help=f"total records over the five sources (default {DEFAULT_RECORDS:,})")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    parser.add_argument("--plant-scale", type=float, default=1.0,
                        help="multiplies every planted-problem rate (0 = a clean corpus; default 1)")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    summary = generate(args.dir, args.records, args.seed, args.plant_scale)
    secs = time.perf_counter() - t0
    recs = summary["records"]
    print(f"wrote {sum(recs.values()):,} records to {args.dir} in {secs:.1f}s (seed {args.seed})")
    for src, rel in summary["files"].items():
        print(f"  {rel:<28} {recs[src]:>7,}")
    planted = ", ".join(f"{k}={sum(v.values())}" for k, v in summary["planted"].items())
    print(f"  planted {summary['planted_total']:,}: {planted}")
    print(f"  ground truth: {Path(args.dir) / 'ground_truth.jsonl'}")
    return 0
