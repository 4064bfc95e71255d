"""`report.html` (self-contained, opens offline) and `report.md` for a run directory.

Charts are PNGs rendered with matplotlib and embedded as base64, so the page needs no network and
no JavaScript. The cluster map is drawn as a 2-D density image when there are many points, which
keeps 1M points legible.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate import layout as L
from curate.analysis.diversity import response_words_expr
from curate.pipeline.report import funnel_markdown
from curate.rundir import RunDir, RunDirError

DENSITY_ABOVE = 50_000


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def funnel_chart(report: dict[str, Any]) -> str:
    plt = _plt()
    steps = report["steps"]
    names = [s["step_id"] for s in steps]
    outs = [s["n_out"] for s in steps]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(steps) + 1))
    ax.barh(names[::-1], outs[::-1], color="#4c78a8")
    for i, v in enumerate(outs[::-1]):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    ax.set_xlabel("records after step")
    ax.set_title("Curation funnel")
    return _png(fig)


def source_chart(report: dict[str, Any]) -> str:
    plt = _plt()
    srcs = list(report["sources"])
    read = [report["sources"][s]["read"] for s in srcs]
    kept = [report["sources"][s]["kept"] for s in srcs]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(srcs))
    ax.bar(x - 0.2, read, 0.4, label="read", color="#bab0ac")
    ax.bar(x + 0.2, kept, 0.4, label="kept", color="#54a24b")
    ax.set_xticks(x, srcs)
    ax.legend()
    ax.set_title("Records per source")
    return _png(fig)


def length_chart(final: pl.LazyFrame) -> str:
    plt = _plt()
    df = final.select("source", response_words_expr().alias("w")).collect()
    fig, ax = plt.subplots(figsize=(7, 3))
    bins = np.logspace(0, 4, 40)
    for (src,), part in df.group_by(["source"], maintain_order=True):
        ax.hist(np.clip(part["w"].to_numpy(), 1, 10_000), bins=bins, histtype="step", label=str(src))
    ax.set_xscale("log")
    ax.set_xlabel("words per response (kept records)")
    ax.legend(fontsize=7)
    ax.set_title("Response length")
    return _png(fig)


def density_image(x: np.ndarray, y: np.ndarray, cluster: np.ndarray, *, bins: int = 480,
                  palette: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """RGB image of a 2-D map: each bin takes the colour of its most common cluster, shaded by log density.

    The extent covers the 0.05..99.95 percentiles, so a few stray points cannot shrink the map.
    Cost is a few bincounts: about a second for 1M points.
    """
    lo_x, hi_x = np.percentile(x, [0.05, 99.95])
    lo_y, hi_y = np.percentile(y, [0.05, 99.95])
    pad_x, pad_y = 0.03 * (hi_x - lo_x or 1.0), 0.03 * (hi_y - lo_y or 1.0)
    ext = (float(lo_x - pad_x), float(hi_x + pad_x), float(lo_y - pad_y), float(hi_y + pad_y))
    ix = np.clip(((x - ext[0]) / (ext[1] - ext[0]) * bins).astype(np.int64), 0, bins - 1)
    iy = np.clip(((y - ext[2]) / (ext[3] - ext[2]) * bins).astype(np.int64), 0, bins - 1)
    cell = iy * bins + ix
    ncol = len(palette)
    counts = np.bincount(cell, minlength=bins * bins)
    per_colour = np.bincount(cell * ncol + (cluster % ncol), minlength=bins * bins * ncol).reshape(-1, ncol)
    mode = per_colour.argmax(axis=1).reshape(bins, bins)
    counts = counts.reshape(bins, bins)
    # An empty bin next to occupied ones takes its densest neighbour's colour, at half strength, so
    # isolated points and tight clusters stay visible at print size (a 3x3 dilation).
    near, near_mode = counts.copy(), mode.copy()
    pc, pm = np.pad(counts, 1), np.pad(mode, 1)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            nc = pc[1 + dy : 1 + dy + bins, 1 + dx : 1 + dx + bins]
            take = (counts == 0) & (nc > near)
            near[take] = nc[take]
            near_mode[take] = pm[1 + dy : 1 + dy + bins, 1 + dx : 1 + dx + bins][take]
    shade = np.log1p(near) / np.log1p(max(int(counts.max()), 1))
    alpha = np.where(near > 0, 0.3 + 0.7 * shade, 0.0) * np.where(counts > 0, 1.0, 0.5)
    img = (1.0 - alpha[..., None]) + alpha[..., None] * palette[near_mode]
    return img, ext


def map_chart(map_df: pl.DataFrame) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 7))
    x, y = map_df["x"].to_numpy(), map_df["y"].to_numpy()
    c = map_df["cluster"].to_numpy()
    palette = np.asarray(plt.get_cmap("tab20").colors)
    if len(map_df) > DENSITY_ABOVE:
        img, ext = density_image(x, y, np.where(c < 0, 0, c), palette=palette)
        ax.imshow(img, origin="lower", extent=ext, interpolation="nearest", aspect="auto")
        how = "colour: most common cluster, shade: log density"
    else:
        ax.scatter(x, y, c=palette[np.where(c < 0, 0, c) % len(palette)], s=3, alpha=0.6, linewidths=0,
                   rasterized=True)
        how = "colour: cluster"
    cent = map_df.group_by("cluster", "topic").agg(pl.len()).sort("len", descending=True).head(30)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    placed: list[tuple[float, float]] = []
    for row in cent.iter_rows(named=True):
        # the label goes on the cluster's densest spot: a median can fall between two islands
        mask = c == row["cluster"]
        h, ex, ey = np.histogram2d(x[mask], y[mask], bins=48, range=[[x0, x1], [y0, y1]])
        bx, by = np.unravel_index(int(h.argmax()), h.shape)
        row["x"], row["y"] = (ex[bx] + ex[bx + 1]) / 2, (ey[by] + ey[by + 1]) / 2
        # skip a label that would cover a larger cluster's label (positions in axes fractions)
        fx, fy = (row["x"] - x0) / ((x1 - x0) or 1.0), (row["y"] - y0) / ((y1 - y0) or 1.0)
        if any(abs(fx - px) < 0.12 and abs(fy - py) < 0.03 for px, py in placed):
            continue
        placed.append((fx, fy))
        ax.plot([row["x"]], [row["y"]], marker="o", ms=3, mfc="none", mec="black", mew=0.6)
        ax.annotate(", ".join(str(row["topic"]).split(", ")[:2]), (row["x"], row["y"]), xytext=(0, 4),
                    textcoords="offset points", fontsize=7, ha="center", va="bottom",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Cluster map ({len(map_df):,} records)\n{how}; labels: largest clusters", fontsize=10)
    return _png(fig)


def _table(rows: list[list[Any]], head: list[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, int):
            return f"{v:,}"
        return html.escape(str(v))

    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows]
    return "\n".join(out) + "</table>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.prompt{font-size:13px;color:#444;margin:2px 0 2px 1em;white-space:pre-wrap}"""


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write report.html and report.md into the run directory; return their paths."""
    rd = RunDir(run_dir)
    report = rd.report()
    if not report:
        raise RunDirError(f"{rd.path}: no {L.REPORT}; the run has not finished")
    final = rd.final()
    parts = [f"<h1>Curation report: {html.escape(report['name'])}</h1>"]
    t = report["totals"]
    parts.append(f"<p>Read <b>{t['read']:,}</b> records, kept <b>{t['kept']:,}</b>, removed {t['removed']:,} "
                 f"with a reason, quarantined {t['quarantined']:,}.</p>")
    parts.append("<h2>Funnel</h2>" + f'<img src="data:image/png;base64,{funnel_chart(report)}">')
    rows = [[s["step_id"], s["n_in"], s["n_out"], sum(s["rejected"].values()),
             ", ".join(f"{k} {v:,}" for k, v in list(s["rejected"].items())[:4]), sum(s["quarantined"].values())]
            for s in report["steps"]]
    parts.append(_table(rows, ["step", "in", "out", "removed", "top reasons", "quarantined"]))
    parts.append("<h2>Sources</h2>" + f'<img src="data:image/png;base64,{source_chart(report)}">')
    srows = [[k, v["format"], v["read"], v["quarantined"], v["kept"]] for k, v in report["sources"].items()]
    parts.append(_table(srows, ["source", "format", "read", "quarantined", "kept"]))
    div = report.get("diversity")
    if div:
        cols = ["count", "vendi", "nn_dist", "cluster_entropy", "distinct_1", "distinct_2",
                "response_words_p50", "short_response_share", "unique_response_share", "response_distinct_1",
                "near_dup_rate"]
        drows = [[s] + [fig.get(c, "") if fig.get(c) is not None else "" for c in cols]
                 for s, fig in div["per_source"].items()]
        parts.append("<h2>Diversity per source</h2>" + _table(drows, ["source", *cols]))
        parts.append("<p>Measured on the records that reached the diversity step; samples are seeded and of "
                     f"fixed size ({html.escape(json.dumps(div.get('samples', {})))}).</p>")
    parts.append("<h2>Response length</h2>" + f'<img src="data:image/png;base64,{length_chart(final)}">')
    map_path = rd.find(L.MAP)
    if map_path is not None:
        m = pl.read_parquet(map_path)
        parts.append("<h2>Cluster map</h2>" + f'<img src="data:image/png;base64,{map_chart(m)}">')
        map_step = rd.layout.folder(map_path.parent)
        clusters_path = map_step.file(L.CLUSTERS)
        if clusters_path.exists():
            parts.append("<h2>Largest clusters</h2>")
            for c in json.loads(clusters_path.read_text())[:15]:
                parts.append(f"<h3>{html.escape(c['topic'] or '(no keywords)')} — {c['size']:,} records</h3>")
                parts += [f'<div class="prompt">{html.escape(p)}</div>' for p in c["sample_prompts"]]
        verbs_path = map_step.file(L.VERBS)
        if verbs_path.exists():
            v = json.loads(verbs_path.read_text())
            vrows = [[r["verb"], r["count"], ", ".join(f"{o['object']} ({o['count']})" for o in r["objects"])]
                     for r in v["rows"]]
            parts.append("<h2>Instruction verbs</h2>" + _table(vrows, ["verb", "prompts", "top objects"]))
    ledger = rd.ledger()
    if ledger is not None:
        dups = ledger.filter(pl.col("duplicate_of").is_not_null())
        summary = dups.group_by("step", "reason").agg(pl.len(), pl.col("similarity").mean().alias("sim")).collect()
        if len(summary):
            parts.append("<h2>Duplicates</h2>" + _table(
                [[r["step"], r["reason"], r["len"], r["sim"] or 0.0] for r in summary.iter_rows(named=True)],
                ["step", "reason", "removed", "mean similarity"]))
    body = "\n".join(parts)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>curate report: "
            f"{html.escape(report['name'])}</title><style>{CSS}</style></head><body>{body}</body></html>")
    html_path = rd.layout.report_html
    html_path.write_text(page, encoding="utf-8")
    md_path = rd.layout.report_md
    md_path.write_text(funnel_markdown(report), encoding="utf-8")
    return html_path, md_path
