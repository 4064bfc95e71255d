"""Near-duplicate removal with MinHash-LSH over word n-grams, verified by exact Jaccard."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import layout as L
from curate.index import minhash as mh
from curate.index.vectors import components
from curate.steps.base import Dedup, StepContext
from curate.steps.dedup.keep import DedupParams, load_rows, resolve_groups, write_groups
from curate.steps.embed.texts import text_expr
from curate.steps.registry import register


@register("dedup.minhash")
class MinHashDedup(Dedup):
    """Keep one record per cluster of texts whose word-n-gram Jaccard similarity is >= threshold_jaccard.

    Signatures have ``num_perm`` slots. The default sketch ``oph`` is one-permutation hashing with
    optimal densification (Li et al. 2012; Shrivastava 2017): each shingle is hashed in a few rounds
    (enough that the mean text puts about 1.5 x num_perm items in its bins; Dahlgaard et al. 2017)
    rather than once per permutation, so few bins are left to densify, and each slot still agrees
    between two texts with probability equal to their Jaccard; ``minhash`` computes classic
    k-permutation signatures (bench/dedup.py compares both). LSH bands are tuned for ``lsh_threshold_jaccard``
    (default threshold - 0.25), below the target, because banding at the target itself misses many
    true pairs on the S-curve (FACTS.md: recall 0.61 at 0.8). Every candidate pair is then verified
    with exact Jaccard on the shingle sets, and verified pairs are joined into clusters by union-find,
    so a removed record may sit below the threshold to its survivor through a chain; its
    ``similarity`` is the exact Jaccard to the survivor. Texts with fewer than ``ngram`` word tokens
    get one shingle of all their tokens (so short texts match only when their tokens are equal);
    empty texts are never grouped. Defaults (word 2-grams, 128 permutations, Jaccard 0.75) are set
    by planted edits of real Alpaca records (``bench/dedup_accuracy.py --real``): one edited word in
    20 (95% of words shared) drops 5-gram Jaccard to about 0.6, so the common 5-gram/0.8 setting
    (text-dedup, datatrove) found 5% of such copies; 2-grams at 0.75 find 98%.

    With ``scope: conversation`` a pair must also share its answer: the Jaccard of the two records'
    assistant text must reach ``min_response_jaccard`` (when both have one). Records that repeat one
    long prompt or template and answer it differently (RAG-style "use the following context" records,
    "Construct a sentence using the words ...") are different training examples, yet their whole-text
    Jaccard is high; on the real Alpaca records every pair joined that way had response Jaccard 0.0,
    and planted copies at 90%+ word overlap keep theirs above 0.5 in all but 5 of 10,143.

    Reasons: near_dup.
    """

    provides = (L.GROUPS,)

    class Params(DedupParams):
        scope: Literal["conversation", "prompt", "first_user", "user", "assistant"] = Field(
            "conversation", description="Which text is compared: conversation (all turns), prompt, user, assistant."
        )
        ngram: int = Field(2, ge=1, le=20, description="Words per shingle.")
        num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations.")
        threshold_jaccard: float = Field(0.75, gt=0, le=1, description="Verified Jaccard at or above which two texts are duplicates.")
        lsh_threshold_jaccard: float | None = Field(
            None, gt=0, le=1, description="Jaccard the LSH bands are tuned for; default threshold_jaccard - 0.25."
        )
        sketch: Literal["oph", "minhash"] = Field(
            "oph", description="oph: one hash per shingle with densification (fast); minhash: one hash per shingle and permutation."
        )
        bucket_window: int = Field(32, ge=2, description="Pairs formed per row inside one LSH bucket.")
        min_response_jaccard: float = Field(
            0.5, ge=0, le=1,
            description="scope conversation: verified pairs must also reach this Jaccard on their assistant "
            "text (when both have one), so one prompt answered two ways is not a duplicate; 0 turns it off.",
        )

    def decide(self, ds: pl.LazyFrame, ctx: StepContext) -> pl.DataFrame:
        p = self.params
        check_response = p.scope == "conversation" and p.min_response_jaccard > 0
        extra = [text_expr("assistant").alias("_response")] if check_response else []
        rows = load_rows(ds, p, text_expr(p.scope), *extra)
        sh = mh.shingle(rows["_text"], ngram=p.ngram, seed=self.seed)
        i, j, _, n_cand = near_pairs(
            sh, p.num_perm, p.threshold_jaccard, p.lsh_threshold_jaccard, p.bucket_window, self.seed, p.sketch
        )
        self.report_extra["candidate_pairs"] = float(n_cand)
        self.report_extra["verified_pairs"] = float(len(i))
        if check_response:
            i, j = same_response(mh.shingle(rows["_response"], ngram=p.ngram, seed=self.seed), i, j,
                                 p.min_response_jaccard)
            self.report_extra["pairs_with_other_response"] = self.report_extra["verified_pairs"] - len(i)
        labels = components(len(rows), i, j)
        decisions, groups = resolve_groups(
            rows, labels, lambda m, s: mh.jaccard(sh, m, s), reason="near_dup", ctx=ctx, step_id=self.id
        )
        self.report_extra.update(write_groups(groups, ctx))
        return decisions


def same_response(resp: mh.Shingles, i: np.ndarray, j: np.ndarray, min_jaccard: float) -> tuple[np.ndarray, np.ndarray]:
    """The pairs whose responses reach ``min_jaccard``, or where either record has no response text."""
    has = resp.counts()
    ok = (has[i] == 0) | (has[j] == 0) | (mh.jaccard(resp, i, j) >= min_jaccard)
    return i[ok], j[ok]


def near_pairs(
    sh: mh.Shingles,
    num_perm: int,
    threshold: float,
    lsh_threshold: float | None = None,
    window: int = 32,
    seed: int = 0,
    sketch: str = "oph",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Verified pairs ``(i, j, jaccard, n_candidates)``: exact Jaccard >= threshold among LSH candidates."""
    if sketch == "oph":
        sig = mh.oph_signatures(sh, num_perm=num_perm, seed=seed + 1)
    elif sketch == "minhash":
        sig = mh.signatures(sh, num_perm=num_perm, seed=seed + 1)
    else:
        raise ValueError(f"unknown sketch {sketch!r}; expected 'oph' or 'minhash'")
    bands, rows = mh.lsh_params(lsh_threshold if lsh_threshold is not None else max(0.05, threshold - 0.25), num_perm)
    i, j = mh.candidate_pairs(sig, bands, rows, window=window, active=sh.counts() > 0)
    sim = mh.jaccard(sh, i, j)
    ok = sim >= threshold
    return i[ok], j[ok], sim[ok], len(i)
