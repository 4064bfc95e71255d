"""The browser and label.apply on runs made by the real runner (skipped until the runner exists)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curate.labels import LabelStore

from .conftest import ROOT

MINI = ROOT / "tests" / "fixtures" / "pipelines" / "mini.yaml"


def _runner():
    try:
        from curate.pipeline.runner import run_pipeline
        from curate.pipeline.spec import build_plan, load_recipe
    except ImportError as e:
        pytest.skip(f"the runner is not there yet: {e}")
    return run_pipeline, build_plan, load_recipe


def test_labels_round_trip_through_two_real_runs(tmp_path: Path, app):
    """Label in the browser -> SQLite -> label.apply on the next run: a drop, a restored duplicate."""
    run_pipeline, build_plan, _ = _runner()
    recs = [{"instruction": f"Explain topic number {i} in detail", "input": "", "output": f"Topic {i} at length."}
            for i in range(8)]
    recs.append(dict(recs[0]))  # an exact duplicate of record 0
    (tmp_path / "a.json").write_text(json.dumps(recs))
    raw = {"name": "rt", "seed": 0, "sources": [{"id": "a", "format": "alpaca", "path": str(tmp_path / "a.json")}],
           "steps": [{"use": "label.apply"}, {"use": "dedup.exact"}]}
    first = tmp_path / "runs" / "rt" / "t1"
    run_pipeline(build_plan(raw), run_dir=first)
    dup = pl.read_parquet(next((first / "ledger").glob("*dedup_exact.parquet")))
    assert dup["reason"].to_list() == ["exact_dup"]
    dup_id = dup["id"][0]

    at = app("browse", run=first, **{"curate.labels_path": str(first.parent / "labels.sqlite")})
    assert not at.exception
    at.text_input(key="b.text").set_value("topic number 5 ").run()
    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("browse.drop."))).click().run()
    at.text_input(key="b.text").set_value("").run()
    at.multiselect(key="b.reason").set_value(["exact_dup"]).run()
    at.button(key=f"browse.keep.{dup_id}").click().run()
    assert not at.exception
    eff = dict(LabelStore(first.parent / "labels.sqlite").effective().select("record_id", "label").iter_rows())
    assert list(eff.values()).count("drop") == 1 and eff[dup_id] == "keep"
    dropped = next(k for k, v in eff.items() if v == "drop")

    second = tmp_path / "runs" / "rt" / "t2"
    run_pipeline(build_plan(raw), run_dir=second)
    ledger = pl.concat([pl.read_parquet(f) for f in (second / "ledger").glob("*.parquet")], how="diagonal_relaxed")
    assert ledger.filter(pl.col("reason") == "manual_drop")["id"].to_list() == [dropped]
    assert dup_id not in set(ledger["id"])
    final = second / max(d.name for d in second.iterdir() if d.name[:2].isdigit()) / "kept.parquet"
    assert dup_id in set(pl.read_parquet(final)["id"])  # protected from dedup by the keep label


@pytest.mark.skipif(not MINI.exists(), reason=f"{MINI} is not there yet")
def test_every_page_opens_on_the_mini_recipe_run(tmp_path: Path, app, monkeypatch):
    run_pipeline, _, load_recipe = _runner()
    monkeypatch.chdir(ROOT)
    run = tmp_path / "runs" / "mini" / "t1"
    run_pipeline(load_recipe(MINI), run_dir=run)
    for page in ("overview", "map", "browse", "duplicates", "search", "label"):
        at = app(page, run=run)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])


def test_flagged_records_are_listed_by_reason_in_overview_and_browse(tmp_path: Path, app):
    """A filter in `mode: flag` removes nothing; the browser shows its flags and filters on them."""
    run_pipeline, build_plan, _ = _runner()
    recs = [{"instruction": f"Describe your favourite place number {i}", "input": "",
             "output": "As an AI, I do not have personal preferences. Is there anything else I can help with?"}
            for i in range(3)]
    recs += [{"instruction": f"Name a prime number above {i * 10}", "input": "", "output": f"{i * 10 + 1} is one."}
             for i in range(1, 4)]
    (tmp_path / "a.json").write_text(json.dumps(recs))
    raw = {"name": "fl", "seed": 0, "sources": [{"id": "a", "format": "alpaca", "path": str(tmp_path / "a.json")}],
           "steps": [{"use": "filter.refusal", "params": {"mode": "flag"}}]}
    run_dir = tmp_path / "runs" / "fl" / "t1"
    res = run_pipeline(build_plan(raw), run_dir=run_dir)
    assert res.report["totals"]["kept"] == 6
    steps = {s["step_id"]: s for s in res.report["steps"]}
    assert steps["filter_refusal"]["flagged"] == {"refusal_ai_disclaimer": 3}

    from curate.browse.data import RunData

    index = RunData(run_dir).build_index()
    assert sorted(index["flag"].drop_nulls().to_list()) == ["filter_refusal: refusal_ai_disclaimer"] * 3

    at = app("overview", run=run_dir)
    assert not at.exception
    assert any("refusal_ai_disclaimer" in str(df.value) for df in at.dataframe)
    # the Overview opens Browse on the flagged records
    at.button(key="o.flag.filter_refusal: refusal_ai_disclaimer").click().run()
    assert not at.exception
    assert at.radio(key="curate.page").value == "Browse"
    assert at.multiselect(key="b.flag").value == ["filter_refusal: refusal_ai_disclaimer"]
    shown = " ".join(m.value for m in at.markdown)
    assert "**3** matching records" in shown
    assert "favourite place number 1" in shown and "prime number" not in shown
