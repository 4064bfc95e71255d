"""The index table, record fetches, filters, text search and the map's level of detail."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.browse.data import (
    Filters,
    RunData,
    apply_filters,
    check_regex,
    diversity_table,
    funnel,
    group_sizes,
    sources_table,
    top_reasons,
)
from curate.browse.map import build_view, figure, selected_ids, stratified_sample
from curate.errors import ConfigError
from curate.labels import LABEL_SCHEMA

from .conftest import HUGE_CHARS, N, rid

NO_LABELS = pl.DataFrame(schema=LABEL_SCHEMA)


@pytest.fixture(scope="module")
def data(run_dir: Path) -> RunData:
    return RunData(run_dir)


@pytest.fixture(scope="module")
def index(data: RunData) -> pl.DataFrame:
    return data.build_index()


def test_index_has_every_record_with_status_and_reason(index: pl.DataFrame):
    assert index.height == N + 3
    assert index["id"].is_unique().all()
    by = dict(index.group_by("status").len().iter_rows())
    assert by == {"kept": N + 3 - 30, "removed": 30}
    r = index.filter(pl.col("id") == rid(12)).row(0, named=True)
    assert (r["status"], r["step"], r["reason"], r["duplicate_of"]) == ("removed", "dedup_exact", "exact_dup", rid(42))
    assert r["x"] is None  # removed before the map step
    k = index.filter(pl.col("id") == rid(101)).row(0, named=True)
    assert k["cluster"] == 2 and k["topic"] == "french capital" and k["lang"] == "en"
    assert k["preview"] == "Question 101 about french capital?"
    huge = index.filter(pl.col("id") == "hostile_huge").row(0, named=True)
    assert huge["chars"] == HUGE_CHARS + 2 and len(huge["preview"]) == 160


def test_fetch_returns_full_records_in_the_order_asked(data: RunData, index: pl.DataFrame):
    rows = index.filter(pl.col("id").is_in([rid(250), rid(3), rid(45), rid(44)]))
    rows = rows.sort("id", descending=True)
    recs = data.fetch(rows)
    assert [r["id"] for r in recs] == rows["id"].to_list()
    assert recs[0]["turns"][0]["content"] == "Question 250 about python code?"
    assert data.fetch_ids(index, [rid(5)])[0]["source"] == "sharegpt"


def test_fetch_far_apart_rows_uses_the_row_filter(data: RunData, index: pl.DataFrame, monkeypatch):
    monkeypatch.setattr("curate.browse.data.SLICE_SPAN", 2)
    ids = [rid(40), rid(290), rid(100)]
    assert [r["id"] for r in data.fetch_ids(index, ids)] == ids


def test_filters(index: pl.DataFrame):
    f = Filters(sources=["oig"], statuses=["kept"], clusters=[1])
    out = apply_filters(index, f, NO_LABELS)
    assert out.height > 0
    assert set(out["source"]) == {"oig"} and set(out["cluster"]) == {1} and set(out["status"]) == {"kept"}
    assert apply_filters(index, Filters(reasons=["too_short"]), NO_LABELS)["id"].to_list() == [rid(i) for i in range(10)]
    long = apply_filters(index, Filters(min_chars=1_000_000), NO_LABELS)
    assert long["id"].to_list() == ["hostile_huge"]
    labels = pl.DataFrame({"seq": [1, 2], "record_id": [rid(50), rid(51)], "label": ["drop", "keep"]}).with_columns(
        pl.lit([], pl.List(pl.Utf8)).alias("tags"), note=pl.lit(""), annotator=pl.lit(""), ts=pl.lit("")
    ).select(list(LABEL_SCHEMA)).cast(LABEL_SCHEMA)
    assert apply_filters(index, Filters(labels=["drop"]), labels)["id"].to_list() == [rid(50)]
    assert apply_filters(index, Filters(labels=["unlabelled"]), labels).height == index.height - 2
    assert apply_filters(index, Filters(labels=["keep", "unlabelled"]), labels).height == index.height - 1


def test_text_search_substring_regex_and_bad_regex(data: RunData, index: pl.DataFrame):
    hits = data.text_search("Question 12 ", regex=False)
    assert apply_filters(index, Filters(), NO_LABELS, hits)["id"].to_list() == [rid(12)]
    hits = data.text_search(r"print\(29[0-9]\)", regex=True)
    assert sorted(apply_filters(index, Filters(), NO_LABELS, hits)["id"]) == [rid(i) for i in range(290, 300)]
    assert data.text_search("print(7)", regex=False).height == 1  # a substring is never parsed as a regex
    assert check_regex("a(b") is not None and check_regex("a(b)") is None
    with pytest.raises(ConfigError, match="invalid regular expression"):
        data.text_search("a(b", regex=True)


def test_report_tables(data: RunData, index: pl.DataFrame):
    rep = data.report()
    assert funnel(rep)["n_out"].to_list() == [N + 3, N + 3 - 10, N + 3 - 30, N + 3 - 30, N + 3 - 30]
    assert top_reasons(rep).rows() == [("dedup_exact", "exact_dup", 20), ("filter_length", "too_short", 10)]
    # the report's per-source part as the runner writes it; clusters from the map, null (removed) not counted
    src = sources_table(rep, index)
    assert src.columns == ["source", "format", "files", "read", "ingested", "quarantined", "kept", "removed",
                           "clusters"]
    assert src.filter(pl.col("source") == "alpaca").select("read", "kept", "removed", "clusters").row(0) == (
        103, 93, 10, 1)  # clusters was 2 when null counted
    assert sources_table({}, index).filter(pl.col("source") == "alpaca").row(0) == ("alpaca", 93, 10, 1)
    assert diversity_table(rep).height == 0


def test_groups_from_every_dedup_step(data: RunData):
    """Every member row the dedup step wrote, the survivor's own row included, with its removed flag."""
    g = data.groups()
    assert g is not None and g.height == 40
    assert g.filter(pl.col("member") == rid(10)).row(0, named=True)["survivor"] == rid(40)
    assert g.filter(pl.col("member") == pl.col("survivor"))["removed"].to_list() == [False] * 20
    sizes = group_sizes(g)
    assert sizes.height == 20 and set(sizes["removed"]) == {1} and set(sizes["kept_by_label"]) == {0}


def test_bad_regex_message_is_short_and_says_where():
    msg = check_regex("print(")
    assert msg == "invalid regular expression at character 6: unclosed group (Rust regex syntax)"
    assert "This error occurred" not in (check_regex("a{99999999}") or "x")
    assert "look-around" in (check_regex("(?<=a)b") or "")


def test_map_selection_filter(index: pl.DataFrame):
    f = Filters(ids=[rid(50), rid(51), "not-a-record"], sources=["sharegpt"])
    assert apply_filters(index, f, NO_LABELS)["id"].to_list() == [rid(50)]
    assert apply_filters(index, Filters(ids=[]), NO_LABELS).height == 0


def test_removed_records_placed_on_the_map_join_the_index(tmp_path: Path):
    """map_removed.parquet (written by score.map) gives removed records a position and a placement."""
    from curate import layout as L
    from curate.layout import RunLayout

    from .conftest import build_run

    run = build_run(tmp_path)
    lay = RunLayout(run)
    m = pl.read_parquet(lay.find(L.MAP))
    near = m.filter(pl.col("id") == rid(40)).row(0, named=True)
    pl.DataFrame({"id": [rid(10)], "x": [near["x"]], "y": [near["y"]], "cluster": [near["cluster"]],
                  "topic": [near["topic"]], "placed": ["duplicate_of"]}).cast(
        dict(L.MAP_REMOVED.schema or {})).write_parquet(lay.step(4, "map").file(L.MAP_REMOVED))
    idx = RunData(run).build_index()
    r = idx.filter(pl.col("id") == rid(10)).row(0, named=True)
    assert (r["status"], r["placed"], r["cluster"]) == ("removed", "duplicate_of", near["cluster"])
    assert idx.filter(pl.col("id") == rid(11))["x"][0] is None  # not placed


def test_map_level_of_detail_and_selection(index: pl.DataFrame):
    mapped = index.filter(pl.col("x").is_not_null())
    full = build_view(mapped, "source")
    assert full.density is None and full.points.height == mapped.height == full.total
    assert set(full.topics["topic"]) == {"cooking pasta", "python code", "french capital"}
    assert full.other == 0 and full.points["colour"].n_unique() == 3
    lod = build_view(mapped, "status", max_points=60, sample_points=60)
    assert lod.density is not None and lod.density[0].sum() == mapped.height
    assert 60 <= lod.points.height <= 63 and set(lod.points["group"]) == {"kept"}
    sample = stratified_sample(mapped, 30, seed=1)
    assert all(n in (10, 11) for n in sample.group_by("cluster").len()["len"])
    assert sample.equals(stratified_sample(mapped, 30, seed=1))
    # Cluster 0 sits around x=-5, cluster 1 around x=+5: a box around x<0,y<4 selects exactly cluster 0.
    box = {"box": [{"x": [-10, 0], "y": [-4, 4]}]}
    assert set(selected_ids(mapped, box)) == set(mapped.filter(pl.col("cluster") == 0)["id"])
    lasso = {"lasso": [{"x": [0, 10, 10, 0], "y": [-4, -4, 4, 4]}]}
    assert set(selected_ids(mapped, lasso)) == set(mapped.filter(pl.col("cluster") == 1)["id"])
    fig = figure(full)
    assert full.trace_ids is not None and len(full.trace_ids) == len(fig.data)
    second = full.trace_ids[1][4]
    assert selected_ids(mapped, {"points": [{"curve_number": 1, "point_index": 4}]}, full) == [second]
    assert selected_ids(mapped, {"points": [{"curve_number": 1, "point_index": 10**6}]}, full) == []
