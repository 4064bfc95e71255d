"""Map page: every record of map.parquet as a WebGL scatter, with level of detail above 100K points.

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

from curate.browse.context import SELECTION, Ctx, label_buttons
from curate.browse.data import missing_note, with_labels
from curate.browse.render import hover_text, render_turns

MAX_POINTS = 100_000  # drawn in full up to here
SAMPLE_POINTS = 50_000  # above MAX_POINTS: this many, over the density (measured: keeps a 1M map under 2 s)
HOVER_CHARS = 100
DENSITY_BINS = 160
MAX_GROUPS = 24  # distinct colours; the rest are drawn as "other"
MAX_TOPIC_LABELS = 40
COLOR_BY = {"source": "source", "cluster": "cluster", "language": "lang", "status": "status", "label": "label"}


@dataclass
class MapView:
    """What the figure shows: the drawn points (grouped by colour) and the density under a sample."""

    points: pl.DataFrame  # id, x, y, group, preview
    density: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # counts (y, x), x edges, y edges
    total: int
    topics: pl.DataFrame  # cluster, topic, x, y, n
    trace_ids: list[np.ndarray] | None = None  # per plotly trace: the id of each point (set by figure())


def color_column(df: pl.DataFrame, color_by: str) -> pl.Expr:
    col = COLOR_BY[color_by]
    if col == "status":
        return (
            pl.when(pl.col("status") == "kept")
            .then(pl.lit("kept"))
            .otherwise(pl.lit("removed: ") + pl.col("reason").fill_null("?"))
        )
    return pl.col(col).cast(pl.Utf8).fill_null("(none)" if col != "label" else "unlabelled")


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
    df = mapped.select("id", "x", "y", "cluster", "topic", "preview", color_column(mapped, color_by).alias("group"))
    top = df["group"].value_counts(sort=True).head(MAX_GROUPS)["group"]
    df = df.with_columns(pl.when(pl.col("group").is_in(top.implode())).then("group").otherwise(pl.lit("other")))
    density = None
    drawn = df
    if df.height > max_points:
        x = df["x"].to_numpy()
        y = df["y"].to_numpy()
        counts, xe, ye = np.histogram2d(x, y, bins=DENSITY_BINS)
        density = (counts.T, xe, ye)
        drawn = stratified_sample(df, min(sample_points, max_points), seed)
    topics = topic_anchors(df).sort("n", descending=True).head(MAX_TOPIC_LABELS)
    return MapView(points=drawn.select("id", "x", "y", "group", "preview"), density=density, total=df.height, topics=topics)


def figure(view: MapView) -> Any:
    """The plotly figure; also fills ``view.trace_ids`` so clicked points map back to record ids."""
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
    for (group,), pts in view.points.group_by("group", maintain_order=True):
        fig.add_trace(
            go.Scattergl(
                x=pts["x"].to_numpy(), y=pts["y"].to_numpy(), mode="markers", name=hover_text(str(group), 60),
                marker={"size": 4 if view.points.height > 20_000 else 6, "opacity": 0.7},
                hovertext=[hover_text(p, HOVER_CHARS) for p in pts["preview"].to_list()],
                hovertemplate="%{hovertext}<extra>%{fullData.name}</extra>",
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
def _view(run_path: str, fingerprint: tuple[tuple[str, int], ...], color_by: str, labels_key: int,
          _mapped: pl.DataFrame) -> tuple[MapView, Any]:
    view = build_view(_mapped, color_by)
    return view, figure(view)


def render(ctx: Ctx) -> None:
    st.header("Map")
    if ctx.data.artifact("map.parquet") is None:
        st.info(missing_note("map.parquet"))
        return
    index = ctx.index()
    mapped = index.filter(pl.col("x").is_not_null())
    color_by = st.selectbox("Colour by", list(COLOR_BY), key="map.color")
    labels = ctx.labels()
    labels_key = 0
    if color_by == "label":
        mapped = with_labels(mapped, labels)
        labels_key = hash(tuple(labels["seq"].to_list()))
    view, fig = _view(*ctx.key, color_by, labels_key, mapped)
    note = f"{view.total:,} points"
    if view.density is not None:
        note += f"; drawn: a {view.points.height:,}-point sample stratified by cluster over the density of all points"
    st.caption(note + ". Box or lasso select to list records.")
    event = st.plotly_chart(fig, key="map.chart", on_select="rerun", selection_mode=("box", "lasso"),
                            config={"scrollZoom": True})
    selection = dict(event.get("selection", {})) if event else {}
    ids = selected_ids(mapped, selection, view) if selection else []
    if ids:
        st.session_state[SELECTION] = ids
    ids = st.session_state.get(SELECTION, [])
    if not ids:
        return
    st.subheader(f"Selected: {len(ids):,} records")
    sel = index.join(pl.DataFrame({"id": ids}), on="id", how="semi")
    cols = st.columns(3)
    cols[0].button(f"Keep all {len(ids):,}", key="map.keep_all", on_click=ctx.label, args=(ids, "keep"))
    cols[1].button(f"Drop all {len(ids):,}", key="map.drop_all", on_click=ctx.label, args=(ids, "drop"))
    if cols[2].button("Clear selection", key="map.clear_sel"):
        st.session_state[SELECTION] = []
        st.rerun()
    st.dataframe(sel.select("id", "source", "status", "reason", "cluster", "preview").head(1000), hide_index=True)
    pick = st.selectbox("Show record", sel["id"].head(1000).to_list(), key="map.pick")
    if pick:
        rec = ctx.data.fetch_ids(index, [pick])[0]
        label_buttons(ctx, pick, "map")
        render_turns(rec["turns"] or [], key=f"map.{pick}")
