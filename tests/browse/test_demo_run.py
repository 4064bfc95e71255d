"""The pages on the demo run the real runner wrote (conftest.demo_runs), with the run's own files as the truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate import layout as L
from curate.labels import LabelStore
from curate.layout import RunLayout

from .conftest import INIT_ANSWER, DemoRuns

pytestmark = pytest.mark.slow


def _plain(md: str) -> str:
    """Backslash escapes resolved; a backslash before a line break (a hard break) dropped."""
    return re.sub(r"\\(.)", r"\1", md, flags=re.DOTALL)


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _groups(run: Path) -> pl.DataFrame:
    """Every dedup step's groups file, as the steps wrote them."""
    files = list(RunLayout(run).find_all(L.GROUPS))
    assert files, "the demo run has no dedup groups"
    return pl.concat([pl.read_parquet(f) for f in files])


def _headers(at) -> dict[str, str]:
    """Group id -> its header line on the Duplicates page."""
    out = {}
    for m in at.markdown:
        hit = re.match(r"\*\*Group `([^`]+)`\*\*", str(m.value))
        if hit:
            out[hit.group(1)] = str(m.value)
    return out


def test_duplicates_count_what_each_dedup_step_removed(app, demo_runs: DemoRuns, labels_path: Path):
    run = demo_runs.second
    truth = _groups(run)
    removed = truth.group_by("step", "group_id").agg(pl.col("removed").sum())
    report = {s["step_id"]: s for s in json.loads(RunLayout(run).report.read_text())["steps"]}
    for step, n in truth.group_by("step").agg(pl.col("removed").sum()).iter_rows():
        assert sum(report[step]["rejected"].values()) == n  # the groups file agrees with the run's report
    at = app("duplicates", run=run)
    _ok(at)
    groups = removed.height
    assert f"{groups:,} groups, {int(removed['removed'].sum()):,} removed members" in [c.value for c in at.caption]
    survivors = set(truth["survivor"])
    pages = -(-groups // 5)
    seen = 0
    for page in range(1, pages + 1):
        at.number_input(key="d.page").set_value(page).run()
        _ok(at)
        for gid, header in _headers(at).items():
            step, num = gid.rsplit(":", 1)
            want = removed.filter((pl.col("step") == step) & (pl.col("group_id") == int(num)))["removed"][0]
            assert header.endswith(f"· {want:,} removed"), header
            seen += 1
        removed_lines = [_plain(m.value) for m in at.markdown if str(m.value).startswith("Removed ")]
        assert removed_lines and not [ln for ln in removed_lines if ln.split("`")[1] in survivors]
    assert seen == groups
    # the dedup-step filter counts that step's groups only
    step = truth["step"][0]
    at.multiselect(key="d.step").set_value([step]).run()
    mine = removed.filter(pl.col("step") == step)
    assert any(c.value.startswith(f"{mine.height:,} groups, {int(mine['removed'].sum()):,} removed members")
               for c in at.caption)
    # restoring a removed member labels that member, never its survivor
    at.number_input(key="d.page").set_value(1).run()
    key = next(b.key for b in at.button if b.key and b.key.startswith("dup.keep."))
    at.button(key=key).click().run()
    member = key.rsplit(".", 1)[1]
    assert LabelStore(labels_path).ids("keep") == frozenset({member}) and member not in survivors


def test_overview_shows_the_runners_sources_and_diversity_figures(app, demo_runs: DemoRuns):
    run = demo_runs.second
    report = json.loads(RunLayout(run).report.read_text())
    at = app("overview", run=run)
    _ok(at)
    sources = next(d.value for d in at.dataframe if "ingested" in d.value.columns)
    mapped = pl.read_parquet(RunLayout(run).find(L.MAP)).filter(pl.col("cluster") >= 0)
    for row in sources.to_dict("records"):
        rep = report["sources"][row["source"]]
        assert (row["read"], row["kept"], row["removed"]) == (rep["read"], rep["kept"], sum(rep["removed"].values()))
        # the clusters its kept records fall in: none for a dropped source, though its records are placed
        assert row["clusters"] == mapped.filter(pl.col("source") == row["source"])["cluster"].n_unique()
    assert not [c for d in at.dataframe for c in d.value.columns if str(c).startswith("diversity.")]
    table = at.table[0].value
    per_source = report["diversity"]["per_source"]
    for src, figures in per_source.items():
        shown = dict(zip(table["metric"], table[src]))
        for metric in ("vendi", "short_response_share", "unique_response_share", "near_dup_rate"):
            assert shown[metric] == f"{figures[metric]:.3g}", (src, metric)
    decisions = json.loads(RunLayout(run).find(L.SOURCE_DECISIONS).read_text())["groups"]
    lines = [_plain(m.value) for m in at.markdown if str(m.value).startswith("- **")]
    for src, d in decisions.items():
        line = next(ln for ln in lines if ln.startswith(f"- **{src}**:"))
        assert line.startswith(f"- **{src}**: {'dropped' if d['drop'] else 'kept'}: ")
    assert any(d["drop"] for d in decisions.values())  # the demo's P3 is dropped, and the page says by what


def test_map_after_a_label_replay_keeps_positions_and_cluster_numbers(app, demo_runs: DemoRuns):
    first = pl.read_parquet(RunLayout(demo_runs.first).find(L.MAP))
    second = pl.read_parquet(RunLayout(demo_runs.second).find(L.MAP))
    assert set(demo_runs.dropped) <= set(first["id"]) and not set(demo_runs.dropped) & set(second["id"])
    both = second.join(first, on="id", suffix="_1")
    assert both.height == second.height == first.height - 2
    assert (both["x"] == both["x_1"]).all() and (both["y"] == both["y_1"]).all()
    assert (both["cluster"] == both["cluster_1"]).all() and (both["topic"] == both["topic_1"]).all()
    info = json.loads(RunLayout(demo_runs.second).find(L.MAP_INFO).read_text())
    assert info["layout"] == "reused" and info["previous_run"] == str(demo_runs.first.resolve())

    at = app("map", run=demo_runs.second)
    _ok(at)
    assert any("kept from the previous run" in c.value for c in at.caption)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = [t for t in fig["data"] if t["type"] == "scattergl"]
    names = {str(c): t for c, t in first.select("cluster", "topic").unique().iter_rows()}
    assert {t["name"] for t in traces} <= {f"{t} · #{c}" for c, t in names.items() if int(c) >= 0} | {
        "noise (no cluster)"}
    colours = [t["marker"]["color"] for t in traces]
    assert len(set(colours)) == len(colours)
    # colour by status: removed records appear with their reasons, where the map step placed them
    at.selectbox(key="map.color").set_value("status").run()
    _ok(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    shown = {t["name"] for t in fig["data"] if t["type"] == "scattergl"}
    placed = pl.read_parquet(RunLayout(demo_runs.second).find(L.MAP_REMOVED)).join(
        pl.concat([pl.read_parquet(f, columns=["id", "reason"]) for f in RunLayout(demo_runs.second).ledger_files()]),
        on="id")
    assert shown == {"kept"} | {f"removed: {r}" for r in placed["reason"].unique()}
    assert "removed: low_diversity_source" in shown


def test_record_text_is_shown_as_written(app, demo_runs: DemoRuns):
    at = app("browse", run=demo_runs.second)
    at.text_input(key="b.text").set_value("does __init__ do").run()
    _ok(at)
    assert "**1** matching records" in "\n".join(m.value for m in at.markdown)
    body = next(m.value for m in at.markdown if "runs when an object" in m.value)
    # every line as written, one per line: no bold "init", no merged lines
    assert _plain(body).split("\n") == INIT_ANSWER.split("\n")
    assert np.all([ln.endswith("\\") for ln in body.split("\n")[:-1]])  # hard line breaks
