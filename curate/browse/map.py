"""Map page: every mapped record as a WebGL scatter, with level of detail above 100K points.

Up to :data:`MAX_POINTS` points are all drawn (plotly ``scattergl``; Plotly ships inside
Streamlit's frontend, so it works offline). Above that the page draws a seeded sample stratified
by cluster over a server-side 2-D density (``np.histogram2d``), so the browser never receives a
million points. Box and lasso selections are resolved against *all* points, not only the drawn
sample, and the selected records are listed and kept in session state for bulk labelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import streamlit as st

from curate import layout as L
from curate.browse.context import SELECTION, Ctx, bulk_label_button, label_buttons, picked_row
from curate.browse.data import with_labels
from curate.browse.render import hover_text, md_text, render_turns

MAX_POINTS = 100_000  # drawn in full up to here
SAMPLE_POINTS = 50_000  # above MAX_POINTS: this many, over the density (measured: keeps a 1M map under 2 s)
HOVER_CHARS = 100
DENSITY_BINS = 160
MAX_TOPIC_LABELS = 40
COLOR_BY = {"cluster": "cluster", "source": "source", "language": "lang", "status": "status", "label": "label"}
GREY = "#9e9e9e"  # noise, "other" and "(none)"


def palette() -> list[str]:
    """48 distinct colours (plotly's Dark24, then Light24): a colour per group, none reused up to 48."""
    from plotly.colors import qualitative

    return list(qualitative.Dark24) + list(qualitative.Light24)


MAX_GROUPS = 48  # one colour each; beyond, the smallest groups are drawn together as "other" (grey)


@dataclass
class MapView:
    """What the figure shows: the drawn points (grouped by colour) and the density under a sample."""

    points: pl.DataFrame  # id, x, y, group, colour, removed, preview, topic
    density: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # counts (y, x), x edges, y edges
    total: int
    topics: pl.DataFrame  # cluster, topic, x, y, n
    other: int = 0  # points drawn as "other" (groups beyond MAX_GROUPS)
    color_by: str = "cluster"
    trace_ids: list[np.ndarray] | None = None  # per plotly trace: the id of each point (set by figure())


def cluster_name(cluster: int | None, topic: str | None) -> str:
    """How a cluster is named on every page: its topic words, then its number (stable across reruns)."""
    if cluster is None:
        return "(no cluster)"
    if cluster < 0:
        return "noise (no cluster)"
    return f"{topic or '(no keywords)'} · #{cluster}"


def color_column(df: pl.DataFrame, color_by: str) -> pl.Expr:
    col = COLOR_BY[color_by]
    if col == "status":
        return (
            pl.when(pl.col("status") == "kept")
            .then(pl.lit("kept"))
            .otherwise(pl.lit("removed: ") + pl.col("reason").fill_null("?"))
        )
    if col == "cluster":
        return (
            pl.when(pl.col("cluster").is_null()).then(pl.lit("(no cluster)"))
            .when(pl.col("cluster") < 0).then(pl.lit("noise (no cluster)"))
            .otherwise(pl.col("topic").fill_null("(no keywords)") + pl.lit(" · #") + pl.col("cluster").cast(pl.Utf8))
        )
    return pl.col(col).cast(pl.Utf8).fill_null("(none)" if col != "label" else "unlabelled")


def group_colours(df: pl.DataFrame, color_by: str) -> tuple[dict[str, str], int]:
    """A colour per group (largest first) and how many points fall beyond :data:`MAX_GROUPS` groups.

    Clusters keep the colour of their number, so a cluster keeps its colour across reruns too."""
    pal = palette()
    counts = df.group_by("group").agg(pl.len().alias("n"), pl.col("cluster").first()).sort(
        ["n", "group"], descending=[True, False])
    colours: dict[str, str] = {}
    other = 0
    for i, (group, n, cluster) in enumerate(counts.iter_rows()):
        if group in ("noise (no cluster)", "(no cluster)", "(none)", "unlabelled"):
            colours[group] = GREY
        elif i >= MAX_GROUPS:
            other += int(n)
        elif color_by == "cluster" and cluster is not None:
            colours[group] = pal[int(cluster) % len(pal)]
        else:
            colours[group] = pal[len([c for c in colours.values() if c != GREY]) % len(pal)]
    return colours, other


def stratified_sample(df: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """About ``n`` rows, the same fraction from every cluster (small clusters keep at least one point)."""
    if df.height <= n:
        return df
    frac = n / df.height
    rank = pl.int_range(pl.len()).shuffle(seed=seed).over("cluster")
    return df.filter(rank < (pl.len().over("cluster") * frac).ceil())


def topic_anchors(df: pl.DataFrame, bins: int = 64) -> pl.DataFrame:
    """Where each cluster's topic label goes: the centre of its densest grid cell, so the label sits on
    the cluster's main blob even when one cluster spans two blobs (a median would fall between them)."""
    labelled = df.filter(pl.col("topic").is_not_null())
    if labelled.is_empty():
        return pl.DataFrame(schema={"cluster": pl.Int64, "topic": pl.Utf8, "x": pl.Float64, "y": pl.Float64,
                                    "n": pl.UInt32})

    def cell(c: str) -> pl.Expr:
        lo, hi = pl.col(c).min(), pl.col(c).max()
        return ((pl.col(c) - lo) / (hi - lo + 1e-12) * bins).floor().cast(pl.Int32)

    cells = (
        labelled.with_columns(cell("x").alias("_gx"), cell("y").alias("_gy"))
        .group_by("cluster", "topic", "_gx", "_gy")
        .agg(pl.col("x").mean(), pl.col("y").mean(), pl.len().alias("_m"))
    )
    best = cells.sort(["_m", "_gx", "_gy"], descending=[True, False, False]).group_by(
        "cluster", "topic", maintain_order=True).first()
    sizes = labelled.group_by("cluster", "topic").agg(pl.len().alias("n"))
    return best.join(sizes, on=["cluster", "topic"]).select("cluster", "topic", "x", "y", "n")


def build_view(
    mapped: pl.DataFrame, color_by: str, seed: int = 0, max_points: int = MAX_POINTS, sample_points: int = SAMPLE_POINTS
) -> MapView:
    df = mapped.select("id", "x", "y", "cluster", "topic", "preview", (pl.col("status") != "kept").alias("removed"),
                       color_column(mapped, color_by).alias("group"))
    colours, other = group_colours(df, color_by)
    df = df.with_columns(
        pl.when(pl.col("group").is_in(list(colours))).then("group").otherwise(pl.lit("other")),
    ).with_columns(pl.col("group").replace_strict(colours, default=GREY).alias("colour"))
    density = None
    drawn = df
    if df.height > max_points:
        x = df["x"].to_numpy()
        y = df["y"].to_numpy()
        counts, xe, ye = np.histogram2d(x, y, bins=DENSITY_BINS)
        density = (counts.T, xe, ye)
        drawn = stratified_sample(df, min(sample_points, max_points), seed)
    topics = topic_anchors(df.filter(~pl.col("removed") & (pl.col("cluster") >= 0))).sort(
        "n", descending=True).head(MAX_TOPIC_LABELS)
    return MapView(points=drawn.select("id", "x", "y", "group", "colour", "removed", "preview", "topic"),
                   density=density, total=df.height, topics=topics, other=other, color_by=color_by)


def figure(view: MapView) -> Any:
    """The plotly figure; also fills ``view.trace_ids`` so clicked points map back to record ids.

    One trace per colour group (largest first, "other" last), removed records in their own traces
    drawn as crosses; every trace sets its own colour, so no two groups share one up to 48 groups."""
    import plotly.graph_objects as go

    fig = go.Figure()
    trace_ids: list[np.ndarray] = []
    if view.density is not None:
        counts, xe, ye = view.density
        fig.add_trace(
            go.Heatmap(
                z=np.log1p(counts), x=(xe[:-1] + xe[1:]) / 2, y=(ye[:-1] + ye[1:]) / 2,
                colorscale="Greys", showscale=False, hoverinfo="skip", opacity=0.5,
            )
        )
        trace_ids.append(np.array([], dtype=object))
    order = view.points.group_by("group", "removed", "colour").agg(pl.len().alias("_n")).with_columns(
        (pl.col("group") == "other").alias("_other")
    ).sort(["_other", "removed", "_n", "group"], descending=[False, False, True, False])
    small = view.points.height > 20_000
    for group, removed, colour, _, _ in order.iter_rows():
        pts = view.points.filter((pl.col("group") == group) & (pl.col("removed") == removed))
        name = hover_text(str(group), 60) + (" (removed)" if removed and not str(group).startswith("removed") else "")
        if view.color_by == "cluster":  # the trace name, shown beside the text, is the topic already
            hover = [hover_text(p, HOVER_CHARS) for p in pts["preview"].to_list()]
        else:
            hover = [f"{hover_text(p, HOVER_CHARS)}<br><i>{hover_text(t or '', 60)}</i>"
                     for p, t in zip(pts["preview"].to_list(), pts["topic"].to_list())]
        fig.add_trace(
            go.Scattergl(
                x=pts["x"].to_numpy(), y=pts["y"].to_numpy(), mode="markers", name=name,
                marker={"size": (4 if small else 6) + (1 if removed else 0), "opacity": 0.75, "color": colour,
                        "symbol": "x" if removed else "circle"},
                hovertext=hover, hovertemplate="%{hovertext}<extra>%{fullData.name}</extra>",
            )
        )
        trace_ids.append(pts["id"].to_numpy())
    for row in view.topics.iter_rows(named=True):
        fig.add_annotation(x=row["x"], y=row["y"], text=hover_text(row["topic"], 40), showarrow=False,
                           font={"size": 11}, bgcolor="rgba(255,255,255,0.6)")
    view.trace_ids = trace_ids
    fig.update_layout(height=640, margin={"l": 0, "r": 0, "t": 24, "b": 0}, dragmode="lasso",
                      legend={"itemsizing": "constant"}, xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def _in_polygon(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon, vectorised over points."""
    inside = np.zeros(len(x), bool)
    j = len(px) - 1
    for i in range(len(px)):
        cond = (py[i] > y) != (py[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i]
        inside ^= cond & (x < xint)
        j = i
    return inside


def selected_ids(mapped: pl.DataFrame, selection: dict[str, Any], view: MapView | None = None) -> list[str]:
    """Ids inside the box/lasso shapes of a plotly selection (over all points), else the selected points."""
    x = mapped["x"].to_numpy()
    y = mapped["y"].to_numpy()
    mask = np.zeros(mapped.height, bool)
    shaped = False
    for box in selection.get("box") or []:
        x0, x1 = sorted(box["x"][:2])
        y0, y1 = sorted(box["y"][:2])
        mask |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        shaped = True
    for lasso in selection.get("lasso") or []:
        mask |= _in_polygon(x, y, np.asarray(lasso["x"], float), np.asarray(lasso["y"], float))
        shaped = True
    if shaped:
        return mapped.filter(pl.Series(mask))["id"].to_list()
    out = []
    for p in selection.get("points") or []:
        curve, idx = p.get("curve_number"), p.get("point_index")
        if view is not None and view.trace_ids and curve is not None and idx is not None:
            ids = view.trace_ids[int(curve)]
            if 0 <= int(idx) < len(ids):
                out.append(str(ids[int(idx)]))
    return out


@st.cache_resource(max_entries=8, show_spinner="Preparing the map...")
def _view(run_path: str, fingerprint: tuple[tuple[str, int], ...], color_by: str, removed: bool, labels_key: int,
          _mapped: pl.DataFrame) -> tuple[MapView, Any]:
    view = build_view(_mapped, color_by)
    return view, figure(view)


CHART_VERSION = "map.chart_version"  # bumped by "Clear selection": a new chart key drops the plot's selection


def clear_selection() -> None:
    """Forget the selection: ours and the plot's own (its widget state goes with the old key)."""
    st.session_state[SELECTION] = []
    st.session_state[CHART_VERSION] = int(st.session_state.get(CHART_VERSION, 0)) + 1
    st.session_state.pop("b.mapsel", None)


def open_in_browse() -> None:
    st.session_state["b.mapsel"] = True
    st.session_state["curate.page"] = "Browse"


def map_caption(view: MapView, index: pl.DataFrame, info: dict[str, Any] | None, show_removed: bool) -> str:
    """What the map holds, said with the run's own numbers."""
    mapped = index.filter(pl.col("x").is_not_null())
    kept = int((mapped["status"] == "kept").sum())
    placed = mapped.filter(pl.col("status") != "kept")
    note = f"{kept:,} kept records"
    if show_removed:
        by = dict(placed.group_by("placed").len().iter_rows())
        unplaced = int(((index["status"] != "kept") & index["x"].is_null()).sum())
        note += (f" and {placed.height:,} removed ones ({by.get('duplicate_of', 0):,} at the record they duplicate, "
                 f"{by.get('embedding', 0):,} by their embedding; {unplaced:,} removed before the embed step have "
                 "no position)")
    if view.density is not None:
        note += f"; drawn: a {view.points.height:,}-point sample stratified by cluster over the density of all points"
    if view.other:
        note += f"; {view.other:,} points of the smallest groups are drawn together as other (grey)"
    if info:
        if info.get("layout") == "reused":
            note += (f". Layout, cluster numbers and topics kept from the previous run "
                     f"({info.get('placed_points', 0):,} new records placed by their nearest neighbours)")
        elif info.get("cluster_ids") == "matched":
            note += (f". Layout fitted again ({md_text(info.get('why_fitted') or '')}); "
                     f"{info.get('clusters_matched', 0):,} clusters keep their number from the previous run")
    return note + ". Box or lasso select to list records."


def render(ctx: Ctx) -> None:
    st.header("Map")
    if ctx.data.artifact(L.MAP) is None:
        st.info(L.MAP.missing_note())
        return
    index = ctx.index()
    c = st.columns([1, 1, 2])
    color_by = c[0].selectbox("Colour by", list(COLOR_BY), key="map.color")
    has_removed = bool(index.filter(pl.col("x").is_not_null() & (pl.col("status") != "kept")).height)
    show_removed = c[1].toggle("Show removed records", key=f"map.removed.{color_by}",
                               value=color_by == "status", disabled=not has_removed,
                               help="Removed records drawn as crosses: a duplicate at the record it duplicates, "
                                    "a record removed after the embed step by its embedding.")
    mapped = index.filter(pl.col("x").is_not_null())
    if not show_removed:
        mapped = mapped.filter(pl.col("status") == "kept")
    labels = ctx.labels()
    labels_key = 0
    if color_by == "label":
        mapped = with_labels(mapped, labels)
        labels_key = hash(tuple(labels["seq"].to_list()))
    else:
        mapped = mapped.with_columns(pl.lit(None, pl.Utf8).alias("label"))
    view, fig = _view(*ctx.key, color_by, show_removed, labels_key, mapped)
    st.caption(map_caption(view, index, ctx.data.map_info(), show_removed))
    version = int(st.session_state.get(CHART_VERSION, 0))
    event = st.plotly_chart(fig, key=f"map.chart.{version}", on_select="rerun", selection_mode=("box", "lasso"),
                            config={"scrollZoom": True})
    selection = dict(event.get("selection", {})) if event else {}
    ids = selected_ids(mapped, selection, view) if selection else []
    if ids:
        st.session_state[SELECTION] = ids
    ids = st.session_state.get(SELECTION, [])
    if not ids:
        return
    st.subheader(f"Selected: {len(ids):,} records")
    sel = with_labels(index.join(pl.DataFrame({"id": pl.Series(ids, dtype=pl.Utf8)}), on="id", how="semi"), labels)
    cols = st.columns(4)
    bulk_label_button(ctx, f"Keep all {len(ids):,}", ids, "keep", "map.keep_all", where=cols[0])
    bulk_label_button(ctx, f"Drop all {len(ids):,}", ids, "drop", "map.drop_all", where=cols[1])
    cols[2].button("Open in Browse", key="map.browse", on_click=open_in_browse)
    cols[3].button("Clear selection", key="map.clear_sel", on_click=clear_selection)
    table = sel.select("id", "source", "status", "reason", "label", "topic", "preview").head(1000)
    st.caption("Click a row to read the record" + (" (the first 1,000 are listed)" if sel.height > 1000 else ""))
    picked = st.dataframe(table, hide_index=True, key="map.table", on_select="rerun", selection_mode="single-row")
    options = table["id"].to_list()
    clicked = picked_row(picked, options, "map.table_seen")
    if clicked is not None:
        st.session_state["map.pick"] = clicked
    if st.session_state.get("map.pick") not in options:
        st.session_state.pop("map.pick", None)
    pick = st.selectbox("Show record", options, key="map.pick")
    if pick:
        rec = ctx.data.fetch_ids(index, [pick])[0]
        label_buttons(ctx, pick, "map")
        render_turns(rec["turns"] or [], key=f"map.{pick}")
