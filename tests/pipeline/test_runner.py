"""The runner: accounting, ledger, quarantine, resume/cache, dry run, limits, on real Parquet files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import Field

from curate.errors import AccountingError
from curate.layout import RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan
from curate.rundir import RunDir
from curate.steps.base import Dedup, Filter, StepParams, Transform, map_records, with_errors
from curate.steps.registry import register, scoped_registry


def _write_alpaca(path: Path, n: int, bad_lines: int = 0) -> None:
    lines = []
    for i in range(n):
        out = "" if i % 10 == 0 else f"Answer number {i} " + "word " * (i % 7)
        lines.append(json.dumps({"instruction": f"Question {i % 50} about topic {i}", "input": "", "output": out}))
    lines += ["{not json"] * bad_lines
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def steps():
    with scoped_registry():

        @register("filter.test_nonempty")
        class NonEmptyFilter(Filter):
            """Reject conversations whose last turn is empty.

            Reasons: empty_last_turn.
            """

            def measure(self, batch):
                return batch.with_columns(
                    pl.col("turns").list.last().struct.field("content").str.len_chars().alias(f"{self.id}.chars"))

            def reject_reason(self, batch):
                return batch.select(pl.when(pl.col(f"{self.id}.chars") == 0).then(pl.lit("empty_last_turn"))).to_series()

        @register("clean.test_boom")
        class BoomTransform(Transform):
            """Upper-case contents; raises on records whose prompt mentions 'topic 13'.

            Reasons: none.
            """

            def apply(self, batch):
                def fn(row):
                    if row["turns"][0]["content"].endswith("topic 13"):
                        raise ValueError("cannot handle topic 13")
                    return [{"role": t["role"], "content": t["content"].upper()} for t in row["turns"]]

                vals, errs = map_records(batch, fn, batch.schema["turns"])
                fixed = batch.with_columns(vals.alias("_new")).with_columns(
                    pl.coalesce("_new", "turns").alias("turns")).drop("_new")
                return with_errors(fixed, errs)

        @register("clean.test_split")
        class SplitTransform(Transform):
            """Duplicate every row whose prompt mentions 'topic 7', as a split would.

            Reasons: none.
            """

            def apply(self, batch):
                extra = batch.filter(pl.col("turns").list.first().struct.field("content").str.contains("(?i)topic 7$"))
                extra = extra.with_columns((pl.col("id") + "-2").alias("id"))
                return pl.concat([batch, extra])

        @register("dedup.test_prompt")
        class PromptDedup(Dedup):
            """Remove later records whose prompt starts like an earlier one.

            Reasons: test_dup.
            """

            class Params(StepParams):
                prefix_chars: int = Field(12, description="Characters compared.")

            def decide(self, ds, ctx):
                df = ds.select("id", pl.col("turns").list.first().struct.field("content").str.slice(
                    0, self.params.prefix_chars).alias("k")).collect()
                first = df.group_by("k", maintain_order=True).agg(pl.col("id").first().alias("dup_of"))
                d = df.join(first, on="k").filter(pl.col("id") != pl.col("dup_of"))
                return d.select("id", pl.lit("test_dup").alias("reason"), pl.col("dup_of").alias("duplicate_of"),
                                pl.lit(1.0).alias("similarity"))

        yield


def _recipe(path: Path, steps: list[dict], **kw) -> dict:
    return {"name": "t", "seed": 1, "sources": [{"id": "a", "format": "alpaca", "path": str(path)}],
            "steps": steps, "limits": {"max_quarantine_frac": kw.get("max_q", 0.2)},
            "executor": {"batch_size": kw.get("batch_size", 64)}}


def test_run_accounts_for_every_record(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 300, bad_lines=2)
    plan = build_plan(_recipe(src, [{"use": "filter.test_nonempty"}, {"use": "clean.test_boom"},
                                    {"use": "clean.test_split"}, {"use": "dedup.test_prompt"}]))
    res = run_pipeline(plan, tmp_path / "run", progress=False)
    lay = RunLayout(tmp_path / "run")
    rep = json.loads(lay.report.read_text())
    ingest, nonempty, boom, split, dedup = rep["steps"]
    assert ingest["n_in"] == 302 and ingest["n_out"] == 300 and ingest["quarantined"] == {"json_decode": 2}
    assert nonempty["rejected"] == {"empty_last_turn": 30} and nonempty["n_out"] == 270
    # topic 13 appears once in 300 records (i=13); its output is non-empty
    assert boom["quarantined"] == {"ValueError": 1} and boom["n_out"] == 269
    assert split["n_added"] > 0 and split["n_out"] == 269 + split["n_added"]
    t = rep["totals"]
    assert t["read"] + t["added"] == t["kept"] + t["removed"] + t["quarantined"]
    rd = RunDir(tmp_path / "run")
    ledger = rd.ledger().collect()
    assert set(ledger["step"]) == {"filter_test_nonempty", "dedup_test_prompt"}
    dups = ledger.filter(pl.col("reason") == "test_dup")
    kept_ids = set(rd.final().select("id").collect()["id"])
    assert len(dups) == dedup["rejected"]["test_dup"]
    assert set(dups["duplicate_of"]) <= kept_ids  # every duplicate names a survivor
    q = [json.loads(line) for line in lay.step(2, "clean_test_boom").quarantine.open()]
    assert q[0]["error"] == "ValueError: cannot handle topic 13" and q[0]["file"] == str(src)
    assert "filter_test_nonempty.chars" in rd.final().collect_schema().names()
    assert lay.report_md.read_text().count("|") > 10
    assert json.loads(lay.manifest.read_text())["inputs"][0]["sha256"]
    assert res.cached_steps == []


def test_rerun_skips_finished_steps_and_changed_params_recompute(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 100)
    steps_cfg = [{"use": "filter.test_nonempty"}, {"use": "dedup.test_prompt"}]
    run_pipeline(build_plan(_recipe(src, steps_cfg)), tmp_path / "run", progress=False)
    again = run_pipeline(build_plan(_recipe(src, steps_cfg)), tmp_path / "run", progress=False)
    assert again.cached_steps == ["ingest", "filter_test_nonempty", "dedup_test_prompt"]
    changed = [{"use": "filter.test_nonempty"}, {"use": "dedup.test_prompt", "params": {"prefix_chars": 5}}]
    third = run_pipeline(build_plan(_recipe(src, changed)), tmp_path / "run", progress=False)
    assert third.cached_steps == ["ingest", "filter_test_nonempty"]
    forced = run_pipeline(build_plan(_recipe(src, changed)), tmp_path / "run", progress=False, force=True)
    assert forced.cached_steps == []


def test_killed_run_resumes_from_last_finished_step(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 100)
    cfg = [{"use": "filter.test_nonempty"}, {"use": "dedup.test_prompt"}]
    run_pipeline(build_plan(_recipe(src, cfg)), tmp_path / "run", progress=False)
    # simulate a kill during the last step: its done marker and report never got written
    lay = RunLayout(tmp_path / "run")
    lay.step(2, "dedup_test_prompt").done.unlink()
    lay.report.unlink()
    res = run_pipeline(build_plan(_recipe(src, cfg)), tmp_path / "run", progress=False)
    assert res.cached_steps == ["ingest", "filter_test_nonempty"]
    assert lay.report.exists()


def test_input_change_invalidates_cache(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 50)
    cfg = [{"use": "filter.test_nonempty"}]
    run_pipeline(build_plan(_recipe(src, cfg)), tmp_path / "run", progress=False)
    _write_alpaca(src, 60)
    res = run_pipeline(build_plan(_recipe(src, cfg)), tmp_path / "run", progress=False)
    assert res.cached_steps == [] and res.report["totals"]["read"] == 60


def test_default_run_dirs_reuse_latest(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 50)
    cfg = [{"use": "filter.test_nonempty"}]
    first = run_pipeline(build_plan(_recipe(src, cfg)), None, runs_root=tmp_path / "runs", progress=False)
    assert (tmp_path / "runs" / "t" / "latest").resolve() == first.run_dir.resolve()
    import time

    time.sleep(1.1)
    second = run_pipeline(build_plan(_recipe(src, cfg)), None, runs_root=tmp_path / "runs", progress=False)
    assert second.run_dir != first.run_dir
    assert second.cached_steps == ["ingest", "filter_test_nonempty"]
    assert RunDir(tmp_path / "runs" / "t" / "latest").path.resolve() == second.run_dir.resolve()


def test_dry_run_removes_nothing_but_writes_scores(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 100)
    res = run_pipeline(build_plan(_recipe(src, [{"use": "filter.test_nonempty"}, {"use": "dedup.test_prompt"}])),
                       tmp_path / "run", progress=False, dry_run=True)
    assert res.report["totals"]["removed"] == 0 and res.report["totals"]["kept"] == 100
    final = RunDir(tmp_path / "run").final().collect()
    assert "filter_test_nonempty.chars" in final.columns
    assert final["dedup_test_prompt.would_remove"].drop_nulls().unique().to_list() == ["test_dup"]


def test_quarantine_limit_fails_and_names_step(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 20, bad_lines=5)
    with pytest.raises(AccountingError, match="step ingest quarantined 5 of 25"):
        run_pipeline(build_plan(_recipe(src, [], max_q=0.1)), tmp_path / "run", progress=False)


def test_limit_reads_a_slice(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 100)
    res = run_pipeline(build_plan(_recipe(src, [])), tmp_path / "run", progress=False, limit=10)
    assert res.report["totals"]["read"] == 10


def test_step_that_loses_rows_fails_the_run(tmp_path, steps):
    with scoped_registry():

        @register("clean.test_lossy")
        class LossyTransform(Transform):
            """Drops rows silently (a bug the runner must catch).

            Reasons: none.
            """

            def apply(self, batch):
                return batch.head(len(batch) // 2)

        src = tmp_path / "a.jsonl"
        _write_alpaca(src, 40)
        with pytest.raises(AccountingError, match="lost 20 records without a reason"):
            run_pipeline(build_plan(_recipe(src, [{"use": "clean.test_lossy"}])), tmp_path / "run", progress=False)


def test_parallel_workers_give_same_result_as_serial(tmp_path):
    """Batches go to a spawn process pool when the input is large enough; output is identical."""
    from curate.steps.registry import all_steps

    if "filter.length" not in all_steps():
        pytest.skip("filter.length not registered yet")
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 900)
    cfg = [{"use": "filter.length", "params": {"min_chars": 30}}]
    rec = _recipe(src, cfg, batch_size=100)
    serial = dict(rec, executor={"batch_size": 100, "workers": 1})
    a = run_pipeline(build_plan(rec), tmp_path / "par", progress=False)
    b = run_pipeline(build_plan(serial), tmp_path / "ser", progress=False)
    assert a.report["steps"][1]["rejected"] == b.report["steps"][1]["rejected"]
    ids_a = RunDir(tmp_path / "par").final().select("id").collect()["id"].to_list()
    ids_b = RunDir(tmp_path / "ser").final().select("id").collect()["id"].to_list()
    assert ids_a == ids_b


def test_flag_mode_marks_and_counts_but_removes_nothing(tmp_path, steps):
    src = tmp_path / "a.jsonl"
    _write_alpaca(src, 100)  # every 10th output is empty
    recipe = _recipe(src, [{"use": "filter.test_nonempty", "params": {"mode": "flag"}},
                           {"use": "filter.failed_response"}])
    res = run_pipeline(build_plan(recipe), tmp_path / "run", progress=False)
    steps_rep = {s["step_id"]: s for s in res.report["steps"]}
    assert steps_rep["filter_test_nonempty"]["rejected"] == {}
    assert steps_rep["filter_test_nonempty"]["flagged"] == {"empty_last_turn": 10}
    assert len(steps_rep["filter_test_nonempty"]["flag_examples"]["empty_last_turn"]) == 10
    # the next filter in remove mode still removes them: flags are for review, decisions stay per step
    assert steps_rep["filter_failed_response"]["rejected"] == {"empty_response": 10}
    final = RunDir(tmp_path / "run").final().collect()
    assert final["filter_test_nonempty.flag"].null_count() == len(final) == 90
    md = (tmp_path / "run" / "report.md").read_text()
    assert "Flagged for review" in md and "| filter_test_nonempty | empty_last_turn | 10 |" in md
