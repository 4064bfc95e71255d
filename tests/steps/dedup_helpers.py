"""Seeded corpora with planted duplicates, shared by the dedup tests."""

from __future__ import annotations

import numpy as np
import polars as pl

from curate.schema import make_batch, record_id

WORDS = [f"w{i}" for i in range(3000)]


def conv(i: int, user: str, assistant: str, source: str = "gen", file: str = "gen.jsonl") -> dict:
    return {
        "id": record_id(source, file, i),
        "source": source,
        "subset": None,
        "turns": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
        "meta": None,
        "provenance": {"file": file, "record": i},
    }


def planted_corpus(n_base: int = 300, n_dups: int = 120, seed: int = 0) -> tuple[pl.DataFrame, list[dict]]:
    """Random 40-80 word texts plus near-duplicates with 1-3 word edits, and exact copies.

    Returns the batch and ground-truth lines in the demo corpus format.
    """
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(40, 81))) for _ in range(n_base)]
    rows = [conv(i, t, "ok") for i, t in enumerate(texts)]
    truth = []
    for k in range(n_dups):
        src = int(rng.integers(0, n_base))
        words = texts[src].split()
        kind = "exact_dup" if k % 4 == 0 else "near_dup"
        if kind == "exact_dup":
            new = "  ".join(words).upper()  # case and whitespace differ only
        else:
            for _ in range(int(rng.integers(1, 4))):
                op, pos = rng.integers(0, 3), int(rng.integers(0, len(words)))
                if op == 0:
                    words[pos] = str(rng.choice(WORDS))
                elif op == 1:
                    words.insert(pos, str(rng.choice(WORDS)))
                elif len(words) > 5:
                    del words[pos]
            new = " ".join(words)
        r = len(rows)
        rows.append(conv(r, new, "ok"))
        truth.append({"file": "gen.jsonl", "record": r, "kind": kind, "of": {"file": "gen.jsonl", "record": src}})
    return make_batch(rows), truth


def words_jaccard(a: str, b: str, n: int = 5) -> float:
    def sh(t: str) -> set[tuple[str, ...]]:
        w = t.lower().split()
        return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)} or {tuple(w)}

    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)
