"""Every page through streamlit.testing.v1.AppTest on the hand-built run (labels in a temp file)."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import numpy as np
import polars as pl

from curate.labels import LabelStore

from .conftest import AxisEmbedder, markdown_hazards, rid


def _texts(at) -> str:
    """The Markdown bodies with search highlights unwrapped and backslash escapes resolved."""
    return _plain(_raw(at))


def _plain(md: str) -> str:
    md = re.sub(r":orange-background\[((?:\\.|[^\]\\])*)\]", r"\1", md)
    return re.sub(r"\\(.)", r"\1", md).replace("\u00a0", " ")


def _raw(at) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _n(values) -> int:
    """Length of a plotly array: plotly >= 6 sends numpy arrays base64-encoded."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).size
    return len(values)


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_overview(app):
    at = app("overview")
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["records seen"] == "303" and metrics["kept"] == "273" and metrics["removed"] == "30"
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
    frames = [d.value for d in at.dataframe]
    reasons = next(f for f in frames if list(f.columns) == ["step", "reason", "records"])
    assert reasons["reason"].tolist() == ["exact_dup", "too_short"]
    per_source = next(f for f in frames if list(f.columns) == ["source", "step", "reason", "records"])
    assert per_source["records"].sum() == 30
    sources = next(f for f in frames if "clusters" in f.columns)
    assert sorted(sources["source"]) == ["alpaca", "oig", "sharegpt"]
    assert not any(c.startswith("diversity.") for f in frames for c in f.columns)


def test_map_draws_every_point_with_topics(app):
    at = app("map")
    _ok(at)
    chart = at.get("plotly_chart")[0]
    fig = json.loads(chart.proto.spec)
    traces = [t for t in fig["data"] if t["type"] == "scattergl"]
    assert sum(_n(t["x"]) for t in traces) == 273
    # coloured by cluster: each trace named by its topic and number, in a colour of its own
    assert {t["name"] for t in traces} == {"cooking pasta · #0", "python code · #1", "french capital · #2"}
    assert len({t["marker"]["color"] for t in traces}) == 3
    assert {a["text"] for a in fig["layout"]["annotations"]} == {"cooking pasta", "python code", "french capital"}
    hover = [h for t in traces for h in t["hovertext"]]
    assert any(h.startswith("Look: &lt;script&gt;") for h in hover)  # escaped for plotly's HTML labels
    assert {t["hovertemplate"] for t in traces} == {"%{hovertext}<extra>%{fullData.name}</extra>"}  # + topic
    at.selectbox(key="map.color").set_value("source").run()
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = [t for t in fig["data"] if t["type"] == "scattergl"]
    assert {t["name"] for t in traces} == {"alpaca", "oig", "sharegpt"}
    hover = [h for t in traces for h in t["hovertext"]]  # coloured by source: the topic is in the hover text
    assert all(h.endswith(("<i>cooking pasta</i>", "<i>python code</i>", "<i>french capital</i>")) for h in hover)
    at.selectbox(key="map.color").set_value("status").run()
    _ok(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    # this run placed no removed record on its map: only kept points, and the toggle says so by being off
    assert {t["name"] for t in fig["data"] if t["type"] == "scattergl"} == {"kept"}


def test_map_selection_lists_and_labels_records(app, labels_path: Path):
    ids = [rid(40), rid(41), rid(42)]
    at = app("map", **{"curate.selection": ids})
    _ok(at)
    assert any("Selected: 3 records" in str(s.value) for s in at.subheader)
    assert sorted(at.dataframe[0].value["id"]) == ids
    store = LabelStore(labels_path)
    _button(at, "Drop all 3").click().run()  # asks first, writes nothing
    _ok(at)
    assert store.count() == 0
    assert any("Label **3** records **drop**?" in w.value for w in at.warning)
    _button(at, "Cancel").click().run()
    assert store.count() == 0 and not at.warning
    _button(at, "Drop all 3").click().run()
    _button(at, "Confirm: drop 3").click().run()
    _ok(at)
    assert store.ids("drop") == frozenset(ids)


def test_map_clear_selection_clears_it_everywhere(app):
    ids = [rid(40), rid(41), rid(42)]
    at = app("map", **{"curate.selection": ids})
    chart_key = at.get("plotly_chart")[0].proto.id
    _button(at, "Clear selection").click().run()
    _ok(at)
    assert not at.subheader and at.session_state["curate.selection"] == []
    assert at.get("plotly_chart")[0].proto.id != chart_key  # a new chart: the plot's own selection is gone too
    at.radio(key="curate.page").set_value("Label").run()
    at.radio(key="l.target").set_value("Map selection").run()
    _ok(at)
    assert "**0** records in this set" in _texts(at)


def test_map_selection_filters_browse(app):
    ids = [rid(40), rid(41), rid(42), rid(12)]
    at = app("map", **{"curate.selection": ids})
    _button(at, "Open in Browse").click().run()
    _ok(at)
    assert at.radio(key="curate.page").value == "Browse"
    assert "**4** matching records" in _texts(at)
    at.checkbox(key="b.mapsel").uncheck().run()
    assert "**303** matching records" in _texts(at)


def test_browse_filters_pages_and_labels(app, labels_path: Path):
    at = app("browse")
    _ok(at)
    assert "**303** matching records" in _texts(at)
    at.multiselect(key="b.source").set_value(["oig"]).run()
    at.multiselect(key="b.status").set_value(["removed"]).run()
    _ok(at)
    assert "**10** matching records" in _texts(at)  # r0001, r0004, ... r0028: every third of the 30 removed
    assert "removed by dedup_exact: exact_dup" in _texts(at)
    at.multiselect(key="b.status").set_value([]).run()
    at.multiselect(key="b.source").set_value([]).run()
    at.text_input(key="b.text").set_value("Question 7 ").run()
    _ok(at)
    assert "**1** matching records" in _texts(at)
    _button(at, "Keep").click().run()
    _ok(at)
    assert LabelStore(labels_path).ids("keep") == frozenset({rid(7)})
    at.multiselect(key="b.label").set_value(["keep"]).run()
    assert "**1** matching records" in _texts(at)


def test_browse_invalid_regex_is_a_message_not_a_crash(app):
    at = app("browse")
    at.checkbox(key="b.regex").check().run()
    at.text_input(key="b.text").set_value("print(").run()
    _ok(at)
    assert [_plain(e.value) for e in at.error] == [
        "invalid regular expression at character 6: unclosed group (Rust regex syntax)"]
    assert "matching records" not in _texts(at)  # no result list: a bad pattern matches nothing
    at.text_input(key="b.text").set_value(r"print\(1[0-2]\)").run()
    assert not at.error and "**3** matching records" in _texts(at)
    assert _raw(at).count(":orange-background[") == 0  # matches inside fenced code are not marked
    at.text_input(key="b.text").set_value("Question 11").run()
    assert ":orange-background[Question 11]" in _raw(at)


def test_record_text_as_written_and_markdown_toggle(app):
    at = app("browse")
    at.text_input(key="b.text").set_value("Answer 104:").run()
    md = next(m.value for m in at.markdown if "Answer 104" in m.value)
    assert md.startswith(r":orange-background[Answer 104\:] here is some text about french capital\.")
    assert "```python\nprint(104)\n```" in md
    at.toggle(key="curate.markdown").set_value(True).run()
    md = next(m.value for m in at.markdown if "Answer 104" in m.value)
    assert md.startswith("Answer 104\\: here is some text about french capital.") and "```python" in md


def test_annotator_name_lives_in_the_url(app, labels_path: Path):
    at = app("browse")
    at.text_input(key="curate.annotator").set_value("alice").run()
    assert at.query_params["annotator"] == ["alice"] or at.query_params["annotator"] == "alice"
    from streamlit.testing.v1 import AppTest

    from .conftest import APP

    again = AppTest.from_file(APP, default_timeout=30)  # a new page load: a new session, the same URL
    again.session_state["curate.run_dir"] = at.session_state["curate.run_dir"]
    again.session_state["curate.labels_path"] = str(labels_path)
    again.query_params["page"] = "browse"
    again.query_params["annotator"] = "alice"
    again.run()
    assert again.text_input(key="curate.annotator").value == "alice"
    again.text_input(key="b.text").set_value("Question 7 ").run()
    _button(again, "Keep").click().run()
    assert LabelStore(labels_path).history()["annotator"].to_list() == ["alice"]


def test_browse_pagination(app):
    at = app("browse")
    at.selectbox(key="b.size").set_value(50).run()
    at.number_input(key="b.page").set_value(7).run()
    _ok(at)
    assert "Page (of 7)" in at.number_input(key="b.page").label
    assert len([c for c in at.main.children.values()]) > 0
    assert _texts(at).count("chars ·") == 3  # 303 records, 50 per page: the 7th page holds 3


def test_hostile_records_render_inert_and_fast(app):
    at = app("browse")
    at.checkbox(key="b.regex").check().run()
    t0 = time.perf_counter()
    at.text_input(key="b.text").set_value("<script>|javascript:|^A{1000}").run()
    elapsed = time.perf_counter() - t0
    _ok(at)
    md = _raw(at)
    assert "**3** matching records" in md
    assert elapsed < 30  # a guard against catastrophic regex work, generous for a loaded machine
    assert [h for m in at.markdown for h in markdown_hazards(str(m.value))] == []
    assert "<script>document.title='pwned'</script>" in _texts(at)  # shown as written (the match highlighted)
    # the 5 MB turn shows one part at a time (plus the highlight of the match at its start)
    assert max(len(str(m.value)) for m in at.markdown) <= 20_000 + len(":orange-background[]")
    part = next(n for n in at.number_input if n.label.startswith("part (of 250"))
    part.set_value(250).run()
    _ok(at)


def test_duplicates_restore_and_not_duplicate(app, labels_path: Path):
    at = app("duplicates")
    _ok(at)
    text = _texts(at)
    assert "20 groups, 20 removed members" in "\n".join(c.value for c in at.caption)
    assert f"Survivor `{rid(40)}`" in text and f"Removed `{rid(10)}` · similarity **1.000** · by `dedup_exact`" in text
    at.button(key=f"dup.keep.dedup_exact:0.{rid(10)}").click().run()
    at.button(key=f"dup.nd.dedup_exact:1.{rid(11)}").click().run()
    _ok(at)
    eff = dict(LabelStore(labels_path).effective().select("record_id", "label").iter_rows())
    assert eff == {rid(10): "keep", rid(11): "not_duplicate"}
    assert f"Removed `{rid(10)}` · similarity **1.000** · by `dedup_exact` · label: **keep**" in _texts(at)


def test_search_query_and_more_like_this(app):
    at = app("search", **{"curate.embedder": AxisEmbedder()})
    _ok(at)
    at.text_input(key="s.query").set_value("python please").run()
    _ok(at)
    hits = at.dataframe[0].value
    assert len(hits) == 20 and set(hits["preview"].str.contains("python code")) == {True}
    at.radio(key="s.mode").set_value("more like this").run()
    at.text_input(key="s.rid").set_value(rid(101)).run()
    _ok(at)
    hits = at.dataframe[0].value
    assert rid(101) not in set(hits["id"]) and set(hits["preview"].str.contains("french capital")) == {True}
    at.text_input(key="s.rid").set_value(rid(3)).run()  # removed before the embed step
    assert any("has no stored embedding" in w.value for w in at.warning)


def test_search_without_the_model_says_so(app, monkeypatch):
    from curate.browse import search

    def broken(model: str):
        from curate.errors import MissingResourceError

        raise MissingResourceError(f"cannot load the embedding model {model!r}: not installed")

    monkeypatch.setattr(search.load_embedder, "__wrapped__", broken, raising=False)
    monkeypatch.setattr(search, "load_embedder", broken)
    at = app("search")
    at.text_input(key="s.query").set_value("python").run()
    _ok(at)
    assert any("fake-3d" in _plain(e.value) for e in at.error)


def test_label_one_at_a_time_and_in_bulk(app, labels_path: Path):
    at = app("label")
    _ok(at)
    at.radio(key="l.target").set_value("Cluster").run()
    at.selectbox(key="l.cluster").set_value(2).run()
    _ok(at)
    ids = [i for i in pl.read_parquet(Path(at.session_state["curate.run_dir"]) / "04_map" / "map.parquet")
           .filter(pl.col("cluster") == 2)["id"]]
    assert f"**{len(ids)}** records in this set" in _texts(at)
    at.text_input(key="l.tags").set_value("geo, easy").run()
    _button(at, "Keep (k)").click().run()
    _button(at, "Next (n)").click().run()
    _button(at, "Drop (d)").click().run()
    _button(at, "Previous (p)").click().run()
    _ok(at)
    store = LabelStore(labels_path)
    hist = store.history()
    assert hist.select("record_id", "label").rows() == [(ids[0], "keep"), (ids[2], "drop")]
    assert hist["tags"].to_list()[0] == ["easy", "geo"]
    assert f"record **3** of {len(ids)}" in _texts(at)  # keep moved to 2, next to 3, drop to 4, previous to 3
    at.selectbox(key="l.bulk_label").set_value("drop").run()
    _button(at, f"Apply 'drop' to {len(ids)} records").click().run()
    assert store.ids("drop") == frozenset({ids[2]})  # only asked
    _button(at, f"Confirm: drop {len(ids)}").click().run()
    _ok(at)
    assert store.ids("drop") == frozenset(ids)
    assert "french capital · #2" in str(at.selectbox(key="l.cluster").proto)  # the picker names topics
    assert any("__curateHotkeys" in str(getattr(e, "proto", "")) for e in at.get("iframe"))


def test_label_uses_the_browse_filter(app, labels_path: Path):
    at = app("browse")
    at.multiselect(key="b.reason").set_value(["too_short"]).run()
    at.radio(key="curate.page").set_value("Label").run()
    _ok(at)
    assert "**10** records in this set" in _texts(at)
    _button(at, "Apply 'keep' to 10 records").click().run()
    _button(at, "Confirm: keep 10").click().run()
    assert LabelStore(labels_path).ids("keep") == frozenset(rid(i) for i in range(10))


def test_missing_artifacts_name_the_step(app, bare_run_dir: Path):
    for page, needle in (("map", "map.parquet"), ("duplicates", "groups.parquet"), ("search", "index.faiss")):
        at = app(page, run=bare_run_dir)
        _ok(at)
        notes = " ".join(i.value for i in at.info)
        assert needle in notes and "to the recipe" in notes, (page, notes)
    at = app("browse", run=bare_run_dir)
    _ok(at)
    assert "**303** matching records" in _texts(at)


def test_not_a_run_dir(app, tmp_path: Path):
    at = app("overview", run=tmp_path)
    assert any("not a curate run directory" in e.value for e in at.error)


def test_more_like_this_opens_search_on_the_record(app):
    at = app("browse")
    at.text_input(key="b.text").set_value("Question 104 ").run()
    at.button(key=f"browse.more.{rid(104)}").click().run()
    _ok(at)
    assert at.radio(key="curate.page").value == "Search"
    assert at.text_input(key="s.rid").value == rid(104)
    hits = at.dataframe[0].value
    assert rid(104) not in set(hits["id"]) and set(hits["preview"].str.contains("french capital")) == {True}


def _markdown_fields(at) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown: bodies, labels, tooltips, radio options."""
    from google.protobuf.message import Message

    out: list[str] = []

    def walk_proto(msg: Message) -> None:
        for field, value in msg.ListFields():
            if isinstance(value, Message):
                walk_proto(value)
            elif field.message_type is not None:
                for v in value:
                    if isinstance(v, Message):
                        walk_proto(v)
            elif field.name in ("body", "label", "help") and isinstance(value, str):
                out.append(value)
            elif field.name == "options" and msg.DESCRIPTOR.name == "Radio":
                out.extend(value)

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if isinstance(proto, Message):
            walk_proto(proto)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


def test_hostile_fields_and_text_stay_inert_on_every_page(app, net_run_dir: Path):
    """Subset, source, language, id, role and turn payloads (conftest.NETWORK) give no image, link or HTML."""
    from .conftest import NETWORK_ID

    pages = {
        "overview": {}, "map": {"curate.selection": [rid(30), rid(31), rid(32), NETWORK_ID]},
        "browse": {}, "duplicates": {}, "label": {}, "search": {"curate.embedder": AxisEmbedder()},
    }
    seen: list[str] = []
    for page, state in pages.items():
        at = app(page, run=net_run_dir, **state)
        if page == "browse":
            at.text_input(key="b.text").set_value("evil.invalid").run()
            assert "**9** matching records" in _texts(at)
        if page == "map":
            at.selectbox(key="map.pick").set_value(NETWORK_ID).run()
            fig = json.loads(at.get("plotly_chart")[0].proto.spec)
            assert all("<" not in str(t.get("name", "")) for t in fig["data"])
        if page == "search":
            at.radio(key="s.mode").set_value("more like this").run()
            at.text_input(key="s.rid").set_value(NETWORK_ID).run()
        _ok(at)
        fields = _markdown_fields(at)
        seen += fields
        bad = [(f, h) for f in fields for h in markdown_hazards(f)]
        assert bad == [], (page, bad)
    shown = _plain("\n".join(seen))
    assert "![subset](http://evil.invalid/subset.png)" in shown and NETWORK_ID in shown  # shown, as text


def test_clicking_a_table_row_opens_the_record(app):
    """A row click (the dataframe's selection state) opens that record below the table; the selectbox
    beside it still picks others."""
    at = app("map", **{"curate.selection": [rid(40), rid(41), rid(42)]})
    assert at.selectbox(key="map.pick").value == rid(40)
    at.session_state["map.table"] = {"selection": {"rows": [2], "columns": []}}
    at.run()
    _ok(at)
    assert at.selectbox(key="map.pick").value == rid(42)
    assert "Question 42 about cooking pasta?" in _texts(at)
    at.selectbox(key="map.pick").set_value(rid(41)).run()  # the same click is not applied again
    assert at.selectbox(key="map.pick").value == rid(41)
    at = app("search", **{"curate.embedder": AxisEmbedder()})
    at.text_input(key="s.query").set_value("python please").run()
    hits = at.dataframe[0].value
    at.session_state["s.table"] = {"selection": {"rows": [3], "columns": []}}
    at.run()
    _ok(at)
    assert at.selectbox(key="s.pick").value == hits["id"][3]
