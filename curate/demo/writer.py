"""Composing conversations: the text writer that turns topics into prompts and answers."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

from curate.demo import text as T
from curate.demo.common import (
    ALPACA_MAX_ROUGE_L,
    PROMPT_MAX_JACCARD,
    PROMPT_TOPIC_MAX_JACCARD,
    Conv,
    NearGuard,
    jaccard,
    tokens,
)
from curate.steps.filter.rouge_l import rouge_l_f

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
