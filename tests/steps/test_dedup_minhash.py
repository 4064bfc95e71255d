import numpy as np
import polars as pl

from curate.analysis.dedup_eval import attach_ids, evaluate
from curate.index import minhash as mh
from curate.steps.base import StepContext
from curate.steps.dedup.minhash import MinHashDedup

from .dedup_helpers import planted_corpus, words_jaccard


def test_shingles_short_and_empty_texts():
    sh = mh.shingle(["a b c d e f", "a b", "", "A  B"], ngram=5)
    assert sh.counts().tolist() == [2, 1, 0, 1]
    assert sh.of(1).tolist() == sh.of(3).tolist()  # short texts: one shingle of all tokens, case-insensitive
    j = mh.jaccard(sh, np.array([0, 1]), np.array([1, 2]))
    assert j.tolist() == [0.0, 0.0]


def test_signature_estimate_tracks_exact_jaccard():
    ds, _ = planted_corpus(n_base=60, n_dups=40, seed=2)
    texts = ds.select(pl.col("turns").list.first().struct.field("content"))["content"]
    sh = mh.shingle(texts)
    sig = mh.signatures(sh, num_perm=256)
    i, j = np.arange(60, 100), np.arange(0, 40)
    err = np.abs(mh.estimated_jaccard(sig, i, j) - mh.jaccard(sh, i, j))
    assert err.mean() < 0.05


def test_planted_near_duplicates_precision_recall(tmp_path):
    ds, truth = planted_corpus(n_base=400, n_dups=200, seed=5)
    texts = ds.select(pl.col("turns").list.first().struct.field("content"))["content"].to_list()
    # which planted pairs really reach the step's definition (5-gram Jaccard >= 0.8)
    for t in truth:
        if t["kind"] == "near_dup" and words_jaccard(texts[t["record"]], texts[t["of"]["record"]]) < 0.8:
            t["kind"] = "near_dup_below_0.8"
    gt = attach_ids(pl.DataFrame([{"file": t["file"], "record": t["record"], "kind": t["kind"],
                                   "of_file": t["of"]["file"], "of_record": t["of"]["record"]} for t in truth]), ds)
    step = MinHashDedup.from_params(scope="prompt")
    ctx = StepContext(run_dir=tmp_path, work_dir=tmp_path / "03_minhash")
    d = step.run(ds.lazy(), ctx).decisions
    score = evaluate(d, gt, kinds={"near_dup", "exact_dup"})
    assert score.planted >= 90 and score.recall_by_kind["near_dup"] >= 0.9
    assert score.precision >= 0.95 and score.recall >= 0.9, score
    assert d["reason"].unique().to_list() == ["near_dup"]
    assert (d["similarity"] >= 0.8).mean() > 0.9
    g = pl.read_parquet(ctx.work_dir / "groups.parquet")
    assert g["removed"].sum() == len(d) == step.report_extra["removed"]


def test_similarity_is_jaccard_to_survivor_and_longest_response_wins(batch_of, tmp_path):
    base = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    near = base.replace("fifteen", "sixteen")  # 10 of 11 shingles shared, 10/12 = 0.833
    far = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    ds = batch_of(f"user: {base} || assistant: short", f"user: {near} || assistant: a longer answer", f"user: {far}")
    d = MinHashDedup.from_params(scope="prompt").run(ds.lazy(), StepContext(tmp_path, tmp_path / "w")).decisions
    ids = ds["id"].to_list()
    assert d.rows() == [(ids[0], "near_dup", ids[1], d["similarity"][0])]
    assert abs(d["similarity"][0] - 10 / 12) < 1e-6
