"""The demo corpus's shared facts: file names, shares and planting rates, the similarity limits that keep
unplanted records apart, token helpers and the record types."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curate.errors import ConfigError

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

WORD_TOKEN = re.compile(r"\w+")
LIST_LINE = re.compile(r"(?m)^(?:\d+\.|-) ")


def tokens(text: str) -> set[str]:
    """Lowercased word tokens: the unit of the near-duplicate guarantee (token-set Jaccard)."""
    return set(WORD_TOKEN.findall(text.lower()))


def jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0




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
