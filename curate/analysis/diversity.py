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
    return cluster_entropy_from_counts(np.bincount(labels, minlength=k), k)


def cluster_entropy_from_counts(counts: np.ndarray, k: int) -> float:
    """:func:`cluster_entropy` from the group's records per cluster (``bincount(labels, minlength=k)``; the
    counts of parts of the group add up to the group's)."""
    counts = np.asarray(counts).astype(np.float64)
    if k < 2 or counts.sum() == 0:
        return float("nan")
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


_NO_LENGTHS = ("response_words_mean", "response_words_p10", "response_words_p50", "response_words_p90",
               "short_response_share")
# np.percentile(words, [10, 50, 90]) turns the percentiles into these quantiles
_QUANTILES = np.true_divide(np.array([10, 50, 90]), 100)


def length_figures(words: np.ndarray) -> dict[str, float]:
    """Mean, p10/p50/p90 (numpy's linear interpolation) and the share of short responses of ``words``."""
    values, counts = np.unique(np.asarray(words), return_counts=True)
    return length_figures_from_counts(values, counts)


def length_figures_from_counts(values: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """:func:`length_figures` from a histogram: ``counts[i]`` responses of ``values[i]`` words (integers;
    the histograms of parts of a group add up to the group's).

    The figures are those of the words themselves, to the bit: the sum of the words is an exact integer
    (as numpy's float64 sum of integers below 2**53), and the percentiles interpolate between the same two
    order statistics with the same arithmetic as ``np.percentile(words, [10, 50, 90])``.
    """
    values, counts = np.asarray(values), np.asarray(counts, dtype=np.int64)
    keep = counts > 0
    order = np.argsort(values[keep], kind="stable")
    values, counts = values[keep][order], counts[keep][order]
    n = int(counts.sum())
    if n == 0:
        return dict.fromkeys(_NO_LENGTHS, float("nan"))
    cum = np.cumsum(counts)

    def nth(j: np.ndarray) -> np.ndarray:  # the j-th smallest response (0-based)
        return values[np.searchsorted(cum, j, side="right")].astype(np.float64)

    virtual = (n - 1) * _QUANTILES
    below = np.floor(virtual)
    a = nth(np.minimum(below, n - 1).astype(np.int64))
    b = nth(np.minimum(below + 1, n - 1).astype(np.int64))
    gamma = virtual - below
    diff = b - a
    lerp = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    total = int(np.dot(values.astype(np.int64), counts))
    short = int(counts[values <= SHORT_RESPONSE_WORDS].sum())
    return {
        "response_words_mean": float(total) / n,
        "response_words_p10": float(lerp[0]),
        "response_words_p50": float(lerp[1]),
        "response_words_p90": float(lerp[2]),
        "short_response_share": float(short) / n,
    }


def group_samples(n: int, *, seed: int, nn_sample: int, vendi_sample: int, text_sample: int) -> dict[str, np.ndarray]:
    """The positions, among a group's ``n`` records (in record order), of its three seeded samples: ``nn``
    (for nn_dist), ``vendi`` and ``text`` (for distinct-n and the response figures)."""
    return {"nn": sample_indices(n, nn_sample, seed), "vendi": sample_indices(n, vendi_sample, seed + 1),
            "text": sample_indices(n, text_sample, seed + 2)}


def figures_from_samples(
    *,
    count: int,
    nn_vectors: np.ndarray | None,
    vendi_vectors: np.ndarray | None,
    cluster_counts: np.ndarray | None,
    k: int,
    prompts: Sequence[str],
    responses: Sequence[str] | None,
    word_values: np.ndarray,
    word_counts: np.ndarray,
) -> dict[str, Any]:
    """Every figure of one group of ``count`` records from what it takes: the vectors of its ``nn`` and
    ``vendi`` samples (None: no embeddings), its records per k-means cluster (None: no clusters), the
    prompts and responses of its ``text`` sample (see :func:`group_samples`) and the histogram of its
    response words. The local step gathers them from whole columns (:func:`group_figures`), the Ray
    executor from the shards."""
    out: dict[str, Any] = {"count": count}
    if nn_vectors is not None and vendi_vectors is not None:
        out["nn_dist"] = mean_nn_distance(np.asarray(nn_vectors, dtype=np.float32))
        out["vendi"] = vendi_score(np.asarray(vendi_vectors, dtype=np.float32))
        out["vendi_sample"] = len(vendi_vectors)
    if cluster_counts is not None:
        out["cluster_entropy"] = cluster_entropy_from_counts(cluster_counts, k)
    out["distinct_1"] = distinct_n(prompts, 1)
    out["distinct_2"] = distinct_n(prompts, 2)
    out.update(length_figures_from_counts(word_values, word_counts))
    if responses is not None:
        out["unique_response_share"] = unique_share(responses)
        out["response_distinct_1"] = distinct_n(responses, 1)
    return out


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
    samples = group_samples(n, seed=seed, nn_sample=nn_sample, vendi_sample=vendi_sample, text_sample=text_sample)
    with_vectors = vectors is not None and n > 0
    t_idx = pl.Series(rows[samples["text"]], dtype=pl.Int64)
    values, counts = np.unique(response_words[rows], return_counts=True)
    return figures_from_samples(
        count=n,
        nn_vectors=vectors[rows[samples["nn"]]] if with_vectors else None,  # type: ignore[index]
        vendi_vectors=vectors[rows[samples["vendi"]]] if with_vectors else None,  # type: ignore[index]
        cluster_counts=np.bincount(clusters[rows], minlength=k) if clusters is not None and n else None,
        k=k,
        prompts=prompts.gather(t_idx).to_list(),
        responses=responses.gather(t_idx).to_list() if responses is not None else None,
        word_values=values,
        word_counts=counts,
    )


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
