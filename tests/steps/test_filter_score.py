"""filter.score (ScoreFilter): bounds, missing scores, a missing column, parameter checks."""

from __future__ import annotations

import polars as pl
import pytest

from curate.errors import ConfigError
from curate.steps.filter.score import ScoreFilter


def scored(batch_of, values):
    batch = batch_of(*[f"user: q{i} || assistant: a" for i in range(len(values))])
    return batch.with_columns(pl.Series("judge.score", values, dtype=pl.Float64))


def test_bounds_are_inclusive_and_reasons_exact(batch_of):
    f = ScoreFilter.from_params(column="judge.score", min_score=5, max_score=9)
    batch = scored(batch_of, [4.9, 5.0, 9.0, 9.5, None, float("nan")])
    assert f.reject_reason(f.measure(batch)).to_list() == [
        "score_below_min", None, None, "score_above_max", None, None]


def test_missing_scores_can_be_removed(batch_of):
    f = ScoreFilter.from_params(column="judge.score", max_score=0.5, missing="remove")
    batch = scored(batch_of, [0.2, 0.7, None])
    assert f.reject_reason(batch).to_list() == [None, "score_above_max", "score_missing"]


def test_flag_mode_marks_without_removing(batch_of):
    f = ScoreFilter.from_params(column="judge.score", min_score=5, mode="flag")
    removed, flags = f.decide(scored(batch_of, [3.0, 8.0]))
    assert removed.to_list() == [None, None] and flags.to_list() == ["score_below_min", None]


def test_absent_column_names_the_columns_there(batch_of):
    f = ScoreFilter.from_params(column="judge.score", min_score=5)
    batch = batch_of("user: q || assistant: a").with_columns(pl.lit(1.0).alias("other.score"))
    with pytest.raises(ConfigError, match=r"no column 'judge.score'.*other.score"):
        f.reject_reason(batch)


def test_params_need_a_bound_in_order():
    with pytest.raises(ValueError, match="min_score, max_score or both"):
        ScoreFilter.from_params(column="x.score")
    with pytest.raises(ValueError, match="above max_score"):
        ScoreFilter.from_params(column="x.score", min_score=5, max_score=1)


def test_a_misspelt_column_stops_the_run_before_any_record(tmp_path):
    import json

    from curate.pipeline.runner import run_pipeline
    from curate.pipeline.spec import build_plan

    src = tmp_path / "a.jsonl"
    src.write_text(json.dumps({"instruction": "q", "input": "", "output": "a"}) + "\n")
    recipe = {"name": "fs", "sources": [{"id": "a", "format": "alpaca", "path": str(src)}],
              "steps": [{"use": "filter.score", "params": {"column": "score_judge.score", "min_score": 5}}]}
    with pytest.raises(ConfigError, match="no column 'score_judge.score'"):
        run_pipeline(build_plan(recipe), tmp_path / "runs" / "fs" / "1", progress=False)
