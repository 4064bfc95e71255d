from __future__ import annotations

import fnmatch

import polars as pl
import pytest

from curate.steps.filter.source import SourceFilter, glob_regex


def batch_with(batch_of, sources, subsets):
    b = batch_of(*(["user: hi"] * len(sources)), sources=sources)
    return b.with_columns(pl.Series("subset", subsets, dtype=pl.Utf8))


def test_source_filter_reasons(batch_of):
    batch = batch_with(
        batch_of, ["oig", "oig", "p3", "alpaca", "sharegpt"], ["unified_chip2", "jokes", None, None, "en"]
    )
    f = SourceFilter.from_params(drop_sources=["share*"], drop_subsets=["jok?s"], keep_sources=["oig", "p3"])
    assert f.reject_reason(f.measure(batch)).to_list() == [
        None,
        "dropped_subset",
        None,
        "not_kept_source",
        "dropped_source",
    ]
    g = SourceFilter.from_params(keep_subsets=["unified_*"])
    assert g.reject_reason(batch).to_list() == [
        None,
        "not_kept_subset",
        "not_kept_subset",
        "not_kept_subset",
        "not_kept_subset",
    ]
    assert SourceFilter.from_params().reject_reason(batch).to_list() == [None] * 5


@pytest.mark.parametrize(
    "pattern,name",
    [
        ("oig*", "oig_chip2"),
        ("a?c", "abc"),
        ("[!x]y", "zy"),
        ("[!x]y", "xy"),
        ("a.b", "axb"),
        ("a.b", "a.b"),
        ("x[", "x["),
        ("[a-c]*", "b1"),
        ("(p3)+", "(p3)+"),
        ("*", ""),
    ],
)
def test_glob_regex_agrees_with_fnmatch(pattern, name):
    got = pl.Series([name]).str.contains(glob_regex(pattern)).item()
    assert got == fnmatch.fnmatchcase(name, pattern)


# --- drop_if: whole sources dropped by measured figures ---------------------------------------------

import json as _json

from curate.errors import ConfigError
from curate.steps.base import StepContext


def _ctx_with_figures(tmp_path, per_source):
    (tmp_path / "05_score_diversity").mkdir(parents=True)
    (tmp_path / "05_score_diversity" / "diversity.json").write_text(
        _json.dumps({"per_source": per_source, "per_subset": {}}))
    return StepContext(run_dir=tmp_path, work_dir=tmp_path / "06_filter_source")


def test_drop_if_drops_the_measured_homogeneous_source(tmp_path, batch_of):
    ctx = _ctx_with_figures(tmp_path, {
        "oig": {"short_response_share": 0.0, "vendi": 110.0},
        "p3": {"short_response_share": 0.97, "vendi": 12.0},
        "so": {"short_response_share": 0.6, "vendi": 60.0},
    })
    f = SourceFilter.from_params(step_id="filter_source",
                                 drop_if={"short_response_share_above": 0.5, "vendi_below": 20})
    f.prepare(ctx)
    batch = batch_of("user: a || assistant: b", "user: c || assistant: d", "user: e || assistant: f",
                     sources=["oig", "p3", "so"])
    assert f.reject_reason(f.measure(batch)).to_list() == [None, "low_diversity_source", None]
    decisions = _json.loads((tmp_path / "06_filter_source" / "source_decisions.json").read_text())
    assert decisions["groups"]["p3"]["drop"] is True
    assert decisions["groups"]["so"]["conditions"] == {"short_response_share_above": True, "vendi_below": False}
    f_any = SourceFilter.from_params(drop_if={"short_response_share_above": 0.5, "vendi_below": 20},
                                     drop_if_match="any")
    f_any.prepare(ctx)
    assert f_any.reject_reason(f_any.measure(batch)).to_list() == [None, "low_diversity_source",
                                                                     "low_diversity_source"]


def test_drop_if_validates_metrics_and_needs_figures(tmp_path):
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="vendy_below"):
        SourceFilter.from_params(drop_if={"vendy_below": 3})
    f = SourceFilter.from_params(drop_if={"vendi_below": 3})
    with pytest.raises(ConfigError, match="needs figures from a `score.diversity` step"):
        f.prepare(StepContext(run_dir=tmp_path, work_dir=tmp_path / "02_filter_source"))
    ctx = _ctx_with_figures(tmp_path, {"a": {"vendi": None}})
    with pytest.raises(ConfigError, match="did not measure"):
        f.prepare(ctx)
