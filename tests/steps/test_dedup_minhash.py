import numpy as np
import polars as pl

from curate.analysis.dedup_eval import attach_ids, evaluate
from curate.index import minhash as mh
from curate.steps.base import StepContext
from curate.steps.dedup.minhash import MinHashDedup, near_pairs

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
    near = base.replace("fifteen", "sixteen")  # 13 of 14 word 2-grams shared, 13/15 = 0.867
    far = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    ds = batch_of(f"user: {base} || assistant: short", f"user: {near} || assistant: a longer answer", f"user: {far}")
    d = MinHashDedup.from_params(scope="prompt").run(ds.lazy(), StepContext(tmp_path, tmp_path / "w")).decisions
    ids = ds["id"].to_list()
    assert d.rows() == [(ids[0], "near_dup", ids[1], d["similarity"][0])]
    assert abs(d["similarity"][0] - 13 / 15) < 1e-6


def test_vectorised_jaccard_matches_python_sets():
    texts = ["a b c d e f g h", "a b c d e f g x", "", "a b", "a b", "x x x x x x x x x", "b c d e f g h i j"]
    sh = mh.shingle(texts, ngram=3)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(texts), 200), rng.integers(0, len(texts), 200)
    got = mh.jaccard(sh, i, j)
    for a, b, g in zip(i.tolist(), j.tolist(), got.tolist()):
        x, y = set(sh.of(a).tolist()), set(sh.of(b).tolist())
        want = len(x & y) / len(x | y) if x and y else 0.0
        assert abs(g - want) < 1e-6, (a, b)
    assert mh.jaccard(sh, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


def test_oph_rounds_estimate_jaccard_and_empty_rows():
    ds, _ = planted_corpus(n_base=60, n_dups=40, seed=2)
    texts = ds.select(pl.col("turns").list.first().struct.field("content"))["content"].to_list() + [""]
    sh = mh.shingle(texts)
    i, j = np.arange(60, 100), np.arange(0, 40)
    exact = mh.jaccard(sh, i, j)
    for rounds in (1, 3, None):
        sig = mh.oph_signatures(sh, num_perm=256, rounds=rounds)
        assert (sig[-1] == 0xFFFFFFFF).all() and (sig[:-1] != 0xFFFFFFFF).all()
        assert np.abs(mh.estimated_jaccard(sig, i, j) - exact).mean() < 0.05
    assert mh.oph_rounds(sh, 128) >= 1
    same = mh.oph_signatures(mh.shingle([texts[0], texts[0].upper()]))
    assert (same[0] == same[1]).all()


def test_candidate_pairs_odd_rows_and_inactive_rows():
    sig = np.random.default_rng(0).integers(0, 2**32 - 1, (6, 15), dtype=np.uint64).astype(np.uint32)  # odd width
    sig[3] = sig[1]
    sig[5] = sig[1]
    for bands, rows in ((5, 3), (3, 4)):
        i, j = mh.candidate_pairs(sig, bands, rows)
        assert set(zip(i.tolist(), j.tolist())) == {(1, 3), (1, 5), (3, 5)}
        i, j = mh.candidate_pairs(sig, bands, rows, active=np.array([True, True, True, False, True, True]))
        assert set(zip(i.tolist(), j.tolist())) == {(1, 5)}
    even = np.ascontiguousarray(sig[:, :12])  # even width and rows: the uint64-view path
    i, j = mh.candidate_pairs(even, 3, 4)
    assert set(zip(i.tolist(), j.tolist())) == {(1, 3), (1, 5), (3, 5)}


def test_unicode_texts_tokenise_and_match():
    sh = mh.shingle(["Café CRÈME brûlée", "café crème brûlée", "我们今天去公园 散步", "我们今天去公园 跑步"], ngram=5)
    assert sh.of(0).tolist() == sh.of(1).tolist()  # accented letters are word characters, lowercased
    assert sh.counts().tolist() == [1, 1, 1, 1] and sh.of(2).tolist() != sh.of(3).tolist()
    base = "la niña comió una manzana roja y después caminó hasta la estación de trenes con su abuela querida"
    near = base.replace("querida", "cariñosa")
    words = base.split()
    zh = ["我们 今天 早上 一起 去 公园 散步 然后 回家 吃饭 下午 看书 晚上 写字 最后 洗澡 睡觉 明天 再见 朋友 " + w
          for w in words[:3]]
    sh = mh.shingle([base, near, "otra frase completamente distinta sin relación alguna con las demás aquí", *zh])
    i, j, sim, _ = near_pairs(sh, 128, 0.8)
    found = set(zip(i.tolist(), j.tolist()))
    assert (0, 1) in found and np.all(sim >= 0.8)
    assert {(3, 4), (3, 5), (4, 5)} <= found  # Chinese rows sharing 20 space-separated words of 21
    assert not any(2 in p for p in found)


def test_one_prompt_answered_two_ways_is_not_a_duplicate(batch_of, tmp_path):
    # a long shared context (RAG style) with a short question: whole-text Jaccard is high, the answers differ
    context = " ".join(f"w{k}" for k in range(150))
    ans_a = "The city was founded in the thirteenth century by merchants from the river valley."
    ans_b = "The context does not say which restaurant is best, so I cannot tell."
    ans_a_edit = ans_a.replace("merchants", "traders")
    ds = batch_of(f"user: {context} Question: when? || assistant: {ans_a}",
                  f"user: {context} Question: when? || assistant: {ans_b}",
                  f"user: {context} Question: when? || assistant: {ans_a_edit}")
    ctx = StepContext(tmp_path, tmp_path / "w")
    ids = ds["id"].to_list()
    step = MinHashDedup.from_params()
    d = step.run(ds.lazy(), ctx).decisions
    # the edited copy of the first record is a near duplicate; the other answer is its own record
    assert d["id"].to_list() in ([ids[0]], [ids[2]])
    assert ids[1] not in d["id"].to_list() + d["duplicate_of"].to_list()
    assert step.report_extra["pairs_with_other_response"] == 2.0
    # without the response check all three fall into one group
    d_off = MinHashDedup.from_params(min_response_jaccard=0).run(ds.lazy(), StepContext(tmp_path, tmp_path / "w2")).decisions
    assert d_off.height == 2
