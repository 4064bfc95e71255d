"""Diversity figures of a set of conversations: numpy/polars in, numbers out.

All figures that depend on sample size are computed on a seeded sample of a fixed size, so two
sources of different sizes are compared on equal terms:

* ``nn_dist``: mean cosine distance to the nearest other record (within the group);
* ``cluster_entropy``: entropy of the group's spread over global k-means clusters, over log(k) (0..1);
* ``vendi``: the Vendi score (Friedman & Dieng, 2023): exp of the entropy of the eigenvalues of the
  cosine-similarity kernel / n; "the effective number of distinct items" in the sample;
* ``distinct_1`` / ``distinct_2``: distinct unigrams / bigrams over all unigrams / bigrams of the prompts;
* response length: mean and p10/p50/p90 in words, and ``short_response_share`` (three words or fewer);
* response homogeneity, on the same seeded sample of ``text_sample`` records as distinct-n (a share of
  distinct items falls as a group grows, so only a fixed-size sample compares groups fairly):
  ``unique_response_share``, distinct normalised responses (case and whitespace folded) over responses,
  and ``response_distinct_1``, distinct unigrams over unigrams of those responses. A source that
  answers every prompt with one of a few labels scores near 0 on both;
* ``near_dup_rate``: share of the group's records removed as duplicates by dedup steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from curate.schema import normalize_for_hash

SHORT_RESPONSE_WORDS = 3


def sample_indices(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def mean_nn_distance(x: np.ndarray) -> float:
    """Mean cosine distance of each row to its nearest other row (rows unit-norm)."""
    n = len(x)
    if n < 2:
        return float("nan")
    best = np.full(n, -np.inf, dtype=np.float32)
    block = 4096
    for s in range(0, n, block):
        sims = x[s : s + block] @ x.T
        idx = np.arange(s, min(s + block, n))
        sims[np.arange(len(idx)), idx] = -np.inf
        best[s : s + block] = sims.max(axis=1)
    return float(np.mean(1.0 - np.clip(best, -1.0, 1.0)))


def vendi_score(x: np.ndarray) -> float:
    """Vendi score of unit-norm rows with the cosine kernel: exp(-sum(l log l)) of eig(K/n)."""
    n = len(x)
    if n == 0:
        return float("nan")
    # eigenvalues of X X^T / n equal those of X^T X / n (d x d), which is cheaper when d < n
    xd = x.astype(np.float64)
    gram = (xd.T @ xd) / n if x.shape[1] < n else (xd @ xd.T) / n
    lam = np.linalg.eigvalsh(gram)
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    return float(math.exp(-np.sum(lam * np.log(lam))))


def cluster_entropy(labels: np.ndarray, k: int) -> float:
    if len(labels) == 0 or k < 2:
        return float("nan")
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(k))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams (lowercased whitespace tokens)."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for t in texts:
        toks = t.lower().split()
        grams = list(zip(*(toks[i:] for i in range(n)), strict=False))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else float("nan")


def unique_share(texts: Sequence[str]) -> float:
    """Distinct texts over texts, after folding case and whitespace (``normalize_for_hash``)."""
    if not texts:
        return float("nan")
    return len({normalize_for_hash(t) for t in texts}) / len(texts)


def length_figures(words: np.ndarray) -> dict[str, float]:
    if len(words) == 0:
        return {"response_words_mean": float("nan"), "response_words_p10": float("nan"),
                "response_words_p50": float("nan"), "response_words_p90": float("nan"),
                "short_response_share": float("nan")}
    p10, p50, p90 = np.percentile(words, [10, 50, 90])
    return {
        "response_words_mean": float(words.mean()),
        "response_words_p10": float(p10),
        "response_words_p50": float(p50),
        "response_words_p90": float(p90),
        "short_response_share": float((words <= SHORT_RESPONSE_WORDS).mean()),
    }


def group_figures(
    *,
    rows: np.ndarray,
    vectors: np.ndarray | None,
    clusters: np.ndarray | None,
    k: int,
    prompts: pl.Series,
    responses: pl.Series | None,
    response_words: np.ndarray,
    seed: int,
    nn_sample: int,
    vendi_sample: int,
    text_sample: int,
) -> dict[str, Any]:
    """Every figure for one group (a source, a subset or the whole set).

    ``rows`` are the group's positions in the full-length ``vectors``, ``clusters``, ``prompts``,
    ``responses`` and ``response_words``; samples are drawn from ``rows`` before anything is gathered,
    so a group of 1M records costs no more than one of 5K.
    """
    n = len(rows)
    out: dict[str, Any] = {"count": n}
    if vectors is not None and n:
        nn_idx = rows[sample_indices(n, nn_sample, seed)]
        out["nn_dist"] = mean_nn_distance(np.asarray(vectors[nn_idx], dtype=np.float32))
        v_idx = rows[sample_indices(n, vendi_sample, seed + 1)]
        out["vendi"] = vendi_score(np.asarray(vectors[v_idx], dtype=np.float32))
        out["vendi_sample"] = len(v_idx)
    if clusters is not None and n:
        out["cluster_entropy"] = cluster_entropy(clusters[rows], k)
    t_idx = pl.Series(rows[sample_indices(n, text_sample, seed + 2)], dtype=pl.Int64)
    sample = prompts.gather(t_idx).to_list()
    out["distinct_1"] = distinct_n(sample, 1)
    out["distinct_2"] = distinct_n(sample, 2)
    out.update(length_figures(response_words[rows]))
    if responses is not None:
        answers = responses.gather(t_idx).to_list()
        out["unique_response_share"] = unique_share(answers)
        out["response_distinct_1"] = distinct_n(answers, 1)
    return out


def response_words_expr() -> pl.Expr:
    """Words in the assistant turns of a conversation."""
    return (
        pl.col("turns")
        .list.eval(
            pl.element().filter(pl.element().struct.field("role") == "assistant").struct.field("content")
            .str.split(" ").list.eval(pl.element().filter(pl.element() != "")).list.len()
        )
        .list.sum()
        .fill_null(0)
    )


def response_text_expr() -> pl.Expr:
    """The assistant turns of a conversation joined by newlines ("" when there are none)."""
    return (
        pl.col("turns")
        .list.eval(pl.element().filter(pl.element().struct.field("role") == "assistant").struct.field("content"))
        .list.join("\n")
        .fill_null("")
    )


METRICS: dict[str, str] = {
    "count": "records in the group",
    "nn_dist": "mean cosine distance to the nearest other record",
    "cluster_entropy": "normalised entropy of the group over k-means clusters (0..1)",
    "vendi": "Vendi score of a seeded sample (effective number of distinct records)",
    "distinct_1": "distinct unigrams / unigrams of the prompts",
    "distinct_2": "distinct bigrams / bigrams of the prompts",
    "response_words_mean": "mean words per response",
    "response_words_p50": "median words per response",
    "short_response_share": f"share of responses with {SHORT_RESPONSE_WORDS} words or fewer",
    "unique_response_share": "distinct normalised responses / responses (seeded sample of text_sample)",
    "response_distinct_1": "distinct unigrams / unigrams of the responses (seeded sample of text_sample)",
    "near_dup_rate": "share of the group's records removed as duplicates",
}
