"""The demo's recipes against the demo's ground truth: each planted problem is removed by the step meant for it.

A small corpus (``curate demo-data --records 2500``) runs through the real runner with the three recipes of
``make demo``: gpt4all.yaml without the steps that need a model or write the export (embed.sentence_transformer,
dedup.semantic, score.map, write.hub_dataset; score.diversity's short/unique response shares need no
embeddings), vicuna.yaml and alpaca.yaml as they are (export to tmp). Only removals the recipes
are expected to make are accepted; where a kind may go elsewhere the test says why.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from curate import demo
from curate.analysis.dedup_eval import attach_ids, evaluate, load_ground_truth
from curate.layout import RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import load_recipe

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
RECORDS = 2_500
SEED = 5
NO_MODEL = ("embed.sentence_transformer", "dedup.semantic", "score.map", "write.hub_dataset")


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("funnel")
    raw = root / "raw"
    demo.generate(raw, RECORDS, SEED)
    plans = {
        "gpt4all": demo.recipe_plan(PIPELINES / "gpt4all.yaml", raw, root / "export-gpt4all", skip=NO_MODEL),
        **{name: load_recipe(PIPELINES / f"{name}.yaml", demo.recipe_overrides(name, raw, root / f"export-{name}"))
           for name in ("vicuna", "alpaca")},
    }
    results = {name: run_pipeline(plan, root / "runs" / name, progress=False, log=lambda m: None)
               for name, plan in plans.items()}
    runs = [r.run_dir for r in results.values()]
    return {"raw": raw, "plans": plans, "results": results,
            "outcomes": demo.planted_outcomes(raw, runs)}


def _kind(funnel: dict[str, Any], kind: str) -> pl.DataFrame:
    out = funnel["outcomes"].filter(pl.col("kind") == kind)
    assert len(out), f"no planted {kind} in the runs' files"
    return out


def test_gpt4all_light_recipe_is_the_recipe_without_model_steps(funnel: dict[str, Any]) -> None:
    steps = [s["use"] for s in yaml.safe_load((PIPELINES / "gpt4all.yaml").read_text())["steps"]]
    upto = steps[: steps.index("filter.source") + 1]
    assert [s.key for s in funnel["plans"]["gpt4all"].steps] == [u for u in upto if u not in NO_MODEL]
    sources = {src.id: src.path for src, _ in funnel["plans"]["gpt4all"].readers}
    assert sources == {s: str(funnel["raw"] / rel) for s, rel in demo.RECIPE_SOURCES["gpt4all"].items()}


@pytest.mark.parametrize(("kind", "reason"), [("failed_empty", "empty_response"),
                                              ("failed_error", "error_response"),
                                              ("failed_truncated", "truncated_response")])
def test_failed_responses_removed_by_failed_response(funnel: dict[str, Any], kind: str, reason: str) -> None:
    # No earlier step may take them: readers keep empty turns, label.apply and clean.normalize remove nothing.
    got = Counter(_kind(funnel, kind).select("step", "reason").iter_rows())
    assert got == {("filter_failed_response", reason): sum(got.values())}, got


def test_refusals_removed_by_refusal_filter(funnel: dict[str, Any]) -> None:
    out = _kind(funnel, "refusal")
    assert out["step"].to_list() == ["filter_refusal"] * len(out)
    assert out["reason"].str.starts_with("refusal_").all()


def test_non_english_removed_with_its_language(funnel: dict[str, Any]) -> None:
    out = _kind(funnel, "non_english")
    assert out["step"].to_list() == ["filter_language"] * len(out)
    assert out["reason"].to_list() == [f"language_{d}" for d in out["detail"].to_list()]


@pytest.mark.parametrize("kind", ["exact_dup", "cross_source_dup"])
def test_exact_copies_removed_by_exact_dedup_naming_the_original(funnel: dict[str, Any], kind: str) -> None:
    out = _kind(funnel, kind)
    assert Counter(out.select("step", "reason").iter_rows()) == {("dedup_exact", "exact_dup"): len(out)}
    assert out["dup_matches_of"].all()
    if kind == "cross_source_dup":  # Stack Overflow copies of OIG records: the main recipe reads both
        assert set(out["file"]) == {demo.SO_FILE} and set(out["of_file"]) == {demo.OIG_FILE}


def test_near_duplicates_found_by_minhash(funnel: dict[str, Any]) -> None:
    truth = load_ground_truth(funnel["raw"] / "ground_truth.jsonl").filter(pl.col("kind") == "near_dup")
    for name in ("gpt4all", "vicuna"):
        run = funnel["results"][name].run_dir
        rows = pl.read_parquet(RunLayout(run).ingest.kept, columns=["id", "provenance"])
        files = [rel for rel in demo.RECIPE_SOURCES[name].values()]
        t = attach_ids(truth.filter(pl.col("file").is_in(files)), rows)
        led = pl.read_parquet(RunLayout(run).step_named("dedup_minhash").ledger)
        # A pair counts when MinHash joins the copy and its original, whichever survives (the keep
        # policy keeps the longer response, often the edited copy).
        score = evaluate(led.select("id", "duplicate_of"), t, kinds={"near_dup"})
        assert score.planted == len(t) > 0
        assert score.recall >= 0.9, (name, score)
        assert score.precision >= 0.9, (name, score)
    # Alpaca's recipe has no MinHash step: its ROUGE-L rule removes the reworded instructions.
    al = _kind(funnel, "near_dup").filter(pl.col("file") == demo.ALPACA_FILE)
    assert (al["step"] == "filter_rouge_l").mean() >= 0.9


def test_malformed_records_quarantined_with_their_reason(funnel: dict[str, Any]) -> None:
    out = _kind(funnel, "malformed")
    assert out["step"].to_list() == ["quarantine:ingest"] * len(out)
    assert out["reason"].to_list() == out["detail"].to_list()
    assert set(out["detail"]) == {"json_decode", "invalid_utf8", "unknown_role"}


def test_p3_dropped_entirely_by_filter_source(funnel: dict[str, Any]) -> None:
    run = funnel["results"]["gpt4all"]
    rep = {r.step_id: r for r in run.reports}["filter_source"]
    before = pl.read_parquet(RunLayout(run.run_dir).step_named("score_diversity").kept, columns=["source"])
    n_p3 = int((before["source"] == "p3").sum())
    assert n_p3 > 500
    assert dict(rep.rejected) == {"low_diversity_source": n_p3}
    after = pl.read_parquet(RunLayout(run.run_dir).step_named("filter_source").kept, columns=["source"])
    assert set(after["source"]) == {"oig", "stackoverflow"}


def test_funnel_counts_balance(funnel: dict[str, Any]) -> None:
    for name, res in funnel["results"].items():
        for r in res.reports:
            assert r.n_in + r.n_added == r.n_out + sum(r.rejected.values()) + sum(r.quarantined.values()), (name, r)
        tot = res.report["totals"]
        assert tot["read"] + tot["added"] == tot["kept"] + tot["removed"] + tot["quarantined"], name
        led = pl.concat([pl.read_parquet(f, columns=["id"]) for f in RunLayout(res.run_dir).ledger_files()])
        assert len(led) == tot["removed"], name
    # P3 aside, the clean data mostly survives: recipes remove policy failures, not the corpus
    g = funnel["results"]["gpt4all"].report["totals"]
    assert g["kept"] > 0.5 * RECORDS * (demo.SHARES["oig"] + demo.SHARES["stackoverflow"])


def test_rouge_l_and_repetition_spare_clean_records(funnel: dict[str, Any]) -> None:
    planted = {(g["file"], g["record"]) for g in demo.iter_ground_truth(funnel["raw"])}
    for name, step, max_share in (("alpaca", "filter_rouge_l", 0.10), ("vicuna", "filter_repetition", 0.02),
                                  ("gpt4all", "filter_repetition", 0.02)):
        res = funnel["results"][name]
        led = pl.read_parquet(RunLayout(res.run_dir).step_named(step).ledger, columns=["provenance"])
        rel = {str(funnel["raw"] / r): r for r in demo.RECIPE_SOURCES[name].values()}
        clean = [p for p in led["provenance"].to_list() if (rel[p["file"]], p["record"]) not in planted]
        n_in = {r.step_id: r.n_in for r in res.reports}[step]
        assert len(clean) <= max_share * n_in, (name, step, len(clean), n_in)
