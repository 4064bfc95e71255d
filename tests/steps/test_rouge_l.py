import json

import numpy as np
import polars as pl
import pytest

from curate.steps.base import StepContext
from curate.steps.filter.rouge_l import RougeLFilter, lcs_length, rouge_l_f, tokenize_expr


def toks(*texts: str) -> list[list[str]]:
    return pl.DataFrame({"t": list(texts)}).select(tokenize_expr(pl.col("t")))["t"].to_list()


def test_matches_rouge_score_package():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = np.random.default_rng(0)
    words = ["give", "three", "tips", "for", "staying", "healthy", "write", "a", "poem", "about", "the", "sea"]
    pairs = [("Give three tips for staying healthy.", "Give 3 tips for staying healthy!")]
    pairs += [(" ".join(rng.choice(words, rng.integers(1, 15))), " ".join(rng.choice(words, rng.integers(1, 15))))
              for _ in range(300)]
    for a, b in pairs:
        ta, tb = toks(a, b)
        vocab = {w: i for i, w in enumerate(sorted(set(ta) | set(tb)))}
        ours = rouge_l_f([vocab[w] for w in ta], [vocab[w] for w in tb])
        # Alpaca calls scorer.score(new_instruction, kept) -> fmeasure; F is symmetric
        assert abs(ours - scorer.score(b, a)["rougeL"].fmeasure) < 1e-9, (a, b)


def test_lcs_bit_parallel_on_long_sequences():
    a = list(range(100)) * 2
    b = list(range(0, 200, 2))
    assert lcs_length(a, b) == 50  # b holds 0..198 even; a only 0..99, so the evens 0..98
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            t[i + 1][j + 1] = t[i][j] + 1 if a[i] == b[j] else max(t[i][j + 1], t[i + 1][j])
    assert lcs_length(a, b) == t[-1][-1]


def test_alpaca_rule_in_input_order(batch_of, tmp_path):
    ds = batch_of(
        "user: Give three tips for staying healthy.",
        "user: Give three tips for staying very healthy.",  # F = 12/13 vs the first: dropped
        "user: Give three tips for staying happy and calm.",  # F = 2*5/(6+8) = 0.714 >= 0.7: dropped
        "user: Write a poem about the sea.",
        "user: Write a short poem about ocean waves at night.",  # F = 2*4/(6+9) = 0.53: kept
    )
    ids = ds["id"].to_list()
    step = RougeLFilter.from_params()
    d = step.run(ds.lazy(), StepContext(tmp_path, tmp_path / "w")).decisions
    assert d.select("id", "reason", "duplicate_of").rows() == [
        (ids[1], "rouge_l_dup", ids[0]),
        (ids[2], "rouge_l_dup", ids[0]),
    ]
    assert abs(d["similarity"][0] - 12 / 13) < 1e-9
    # a protected record is kept and then blocks its own near-copies
    d = step.run(ds.lazy(), StepContext(tmp_path, tmp_path / "w", protected_ids=frozenset({ids[1]}))).decisions
    assert d["id"].to_list() == [ids[2]]


def test_alpaca_files_against_quadratic_reference(shared_data, tmp_path):
    from curate.schema import make_batch, record_id

    rows = []
    for name in ("lm-sys__FastChat__data__alpaca_data_cleaned_1000@8770fd57.json",
                 "hiyouga__LLaMA-Factory__data__alpaca_en_demo@ff6d4d12.json"):
        for i, r in enumerate(json.loads((shared_data / "alpaca" / name).read_text())):
            rows.append({"id": record_id("a", name, i), "source": name[:8], "subset": None,
                         "turns": [{"role": "user", "content": r["instruction"]}], "meta": None,
                         "provenance": {"file": name, "record": i}})
    ds = make_batch(rows)
    d = RougeLFilter.from_params().run(ds.lazy(), StepContext(tmp_path, tmp_path / "w")).decisions
    # quadratic Alpaca loop on the same tokens (1,000 + 1,000 instructions)
    tok = toks(*ds.select(pl.col("turns").list.first().struct.field("content"))["content"].to_list())
    vocab: dict[str, int] = {}
    ids_tok = [[vocab.setdefault(w, len(vocab)) for w in t] for t in tok]
    kept: list[int] = []
    removed = []
    for j, t in enumerate(ids_tok):
        if any(rouge_l_f(t, ids_tok[i]) >= 0.7 for i in kept):
            removed.append(j)
        else:
            kept.append(j)
    assert set(d["id"]) == {ds["id"][j] for j in removed}
    assert len(removed) == 49  # measured: the rule drops 49 of these 2,000 instructions
