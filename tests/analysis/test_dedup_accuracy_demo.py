"""bench/dedup_accuracy.py at small scale: exact and MinHash dedup against the demo corpus's ground truth."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dedup_accuracy.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dedup_accuracy", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _bench().measure(2_000, seed=5, workdir=tmp_path_factory.mktemp("acc"))


def test_exact_dedup_finds_every_planted_copy_and_nothing_else(figures: dict) -> None:
    ex = figures["levels"]["exact"]
    assert figures["planted"]["exact_dup"] == 40 and figures["planted"]["cross_source_dup"] >= 5
    assert ex["planted"] == figures["planted"]["exact_dup"] + figures["planted"]["cross_source_dup"]
    assert ex["precision"] == 1.0 and ex["recall"] == 1.0
    assert ex["recall_by_kind"] == {"cross_source_dup": 1.0, "exact_dup": 1.0}
    assert set(ex["removed_by_source"]) == {"oig", "stackoverflow", "p3", "sharegpt", "alpaca"}


def test_minhash_finds_planted_near_duplicates(figures: dict) -> None:
    mh = figures["levels"]["minhash"]
    assert mh["planted"] == figures["planted"]["near_dup"] == 30
    # every planted near-duplicate keeps word-5-gram Jaccard >= 0.8 to its original on the ingested text
    assert figures["near_dup_ngram_jaccard_ge_threshold"] == 30
    assert mh["precision"] >= 0.95 and mh["recall"] >= 0.9 and mh["recall_eligible"] >= 0.9
    assert mh["removed"] <= 32  # no templated neighbours removed beside the planted pairs
    assert "semantic" not in figures["levels"]


def test_funnel_balances(figures: dict) -> None:
    steps = {r["step"]: r for r in figures["funnel"]}
    exact, minhash = steps["dedup_exact"], steps["dedup_minhash"]
    assert exact["in"] == figures["ingested"] == 2_000 - 6  # six planted malformed records quarantined
    assert exact["out"] == minhash["in"] and minhash["out"] == minhash["in"] - figures["levels"]["minhash"]["removed"]
    assert exact["in"] - exact["out"] == figures["levels"]["exact"]["removed"]
