"""Reading a run directory for the browser: lazy Parquet scans, small derived tables, no full text.

The browser works from one **index table**: one row per record the run has seen (kept after the
last step, or removed with its step and reason), holding only short columns: source, subset,
status, reason, length, language, a 160-character prompt preview, map position and cluster, and
where the full record lives (``_file``, ``_row``). It is built once per run (about 1 s at 1M
records) and cached by the files' mtimes. Full conversations are read only for the records a page
shows, by Parquet row group (:meth:`RunData.fetch`). Nothing here imports Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate import layout as L
from curate.browse.render import PREVIEW_CHARS
from curate.errors import ConfigError
from curate.layout import Artifact
from curate.rundir import RunDir
from curate.schema import first_user_expr

KEPT = "kept"
# Rows this close together are read as one Parquet slice; farther apart, through a row-index filter.
SLICE_SPAN = 20_000
REMOVED = "removed"
INDEX_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Utf8(),
    "source": pl.Utf8(),
    "subset": pl.Utf8(),
    "status": pl.Utf8(),
    "reason": pl.Utf8(),
    "step": pl.Utf8(),
    "flag": pl.Utf8(),  # "<step>: <flag>" of the first filter that flagged the record for review
    "duplicate_of": pl.Utf8(),
    "similarity": pl.Float64(),
    "chars": pl.Int64(),
    "lang": pl.Utf8(),
    "preview": pl.Utf8(),
    "_file": pl.Int32(),
    "_row": pl.Int64(),
}
def _score_col(names: Sequence[str], suffix: str) -> str | None:
    """The last ``<step_id>.<suffix>`` score column (the latest step that measured it)."""
    hits = [n for n in names if n.endswith("." + suffix)]
    return hits[-1] if hits else None


def _chars_expr() -> pl.Expr:
    return pl.col("turns").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()


@dataclass
class Filters:
    """What the Browse page (and bulk labelling) narrows the index table to. Empty = no restriction."""

    sources: list[str] = field(default_factory=list)
    subsets: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    clusters: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # "<step>: <flag>", as in the index's flag column
    labels: list[str] = field(default_factory=list)  # keep/drop/not_duplicate, or "unlabelled"
    min_chars: int | None = None
    max_chars: int | None = None
    text: str = ""
    regex: bool = False
    ids: list[str] | None = None  # only these records (the Map selection); None = no restriction


def check_regex(pattern: str) -> str | None:
    """None when polars (Rust regex syntax) accepts ``pattern``, else a short message for the user:
    what is wrong and where (the regex crate's own words, without Polars' expression dump)."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as e:
        lines = str(e).splitlines()
        why = next((ln.strip()[len("error:"):].strip() for ln in lines if ln.strip().startswith("error:")), "")
        if not why:  # e.g. "regex error: Compiled regex exceeds size limit of 10485760 bytes."
            why = lines[0].removeprefix("regex error:").strip() if lines else "not a valid pattern"
        caret = next((ln for ln in lines if ln.strip() and set(ln.strip()) == {"^"}), None)
        where = ""
        if caret is not None:
            # the regex crate prints the pattern indented by 4 spaces and a caret line under it
            where = f" at character {len(caret) - len(caret.lstrip()) - 4 + 1}"
        return f"invalid regular expression{where}: {why} (Rust regex syntax)"
    return None


class RunData:
    """One run directory as the browser sees it."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run = RunDir(run_dir)
        self.path = self.run.path

    # -- files ------------------------------------------------------------------------------------
    def record_files(self) -> list[Path]:
        """``[final kept records, ledger files...]``; ``_file`` in the index table points into this."""
        return [self.run.final_path(), *self.run.ledger_files()]

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        """Cache key: every file the index table and artifacts come from, with its mtime."""
        paths = self.record_files()
        for artifact in (L.MAP, L.MAP_REMOVED, L.MAP_INFO, L.SOURCE_DECISIONS):
            p = self.run.find(artifact)
            if p is not None:
                paths.append(p)
        paths += self.run.find_all(L.GROUPS)
        if self.run.layout.report.exists():
            paths.append(self.run.layout.report)
        return tuple((str(p), p.stat().st_mtime_ns) for p in paths)

    def report(self) -> dict[str, Any]:
        return self.run.report()

    def artifact(self, artifact: Artifact) -> Path | None:
        """The newest file of ``artifact`` in the run, or None."""
        return self.run.find(artifact)

    def map_info(self) -> dict[str, Any] | None:
        """How the map was made (fitted or reused, points placed, clusters matched), or None."""
        data = self.run.read_json_artifact(L.MAP_INFO)
        return data if isinstance(data, dict) else None

    # -- the index table --------------------------------------------------------------------------
    def build_index(self) -> pl.DataFrame:
        """One row per record, short columns only (see the module docstring)."""
        parts = []
        for i, f in enumerate(self.record_files()):
            lf = pl.scan_parquet(f)
            names = lf.collect_schema().names()
            chars_col = _score_col(names, "chars")
            flag_cols = [c for c in names if c.endswith(".flag")]
            flag = (
                pl.coalesce([pl.lit(c[: -len(".flag")] + ": ") + pl.col(c) for c in flag_cols])
                if flag_cols else pl.lit(None, pl.Utf8)
            )
            lang_col = _score_col(names, "lang")
            removed = i > 0
            parts.append(
                lf.with_row_index("_row")
                .select(
                    "id",
                    "source",
                    "subset",
                    pl.lit(REMOVED if removed else KEPT).alias("status"),
                    (pl.col("reason") if removed else pl.lit(None, pl.Utf8)).alias("reason"),
                    (pl.col("step") if removed and "step" in names else pl.lit(None, pl.Utf8)).alias("step"),
                    flag.alias("flag"),
                    (pl.col("duplicate_of") if "duplicate_of" in names else pl.lit(None, pl.Utf8)).alias(
                        "duplicate_of"
                    ),
                    (pl.col("similarity") if "similarity" in names else pl.lit(None, pl.Float64)).alias(
                        "similarity"
                    ),
                    (pl.col(chars_col) if chars_col else _chars_expr()).alias("chars"),
                    (pl.col(lang_col) if lang_col else pl.lit(None, pl.Utf8)).alias("lang"),
                    first_user_expr().str.slice(0, PREVIEW_CHARS).alias("preview"),
                    pl.lit(i).alias("_file"),
                    pl.col("_row"),
                )
                .cast(INDEX_SCHEMA)  # type: ignore[arg-type]
            )
        index = pl.concat(parts).collect(engine="streaming")
        cols = {"id": pl.Utf8, "x": pl.Float32, "y": pl.Float32, "cluster": pl.Int32, "topic": pl.Utf8,
                "placed": pl.Utf8}
        found: list[pl.DataFrame] = []
        map_path = self.artifact(L.MAP)
        if map_path is not None:
            found.append(pl.read_parquet(map_path, columns=["id", "x", "y", "cluster", "topic"]).with_columns(
                pl.lit(None, pl.Utf8).alias("placed")))
        removed_path = self.artifact(L.MAP_REMOVED)
        if removed_path is not None:
            found.append(pl.read_parquet(removed_path, columns=["id", "x", "y", "cluster", "topic", "placed"]))
        if found:
            m = pl.concat([p.cast(cols) for p in found]).unique("id", keep="first", maintain_order=True)  # type: ignore[arg-type]
            index = index.join(m, on="id", how="left")
        else:
            index = index.with_columns(pl.lit(None, t).alias(c) for c, t in cols.items() if c != "id")
        return index

    # -- full records -----------------------------------------------------------------------------
    def fetch(self, rows: pl.DataFrame) -> list[dict[str, Any]]:
        """Full records for the index rows given (in that order).

        Rows close together are read as one slice (Parquet slice pushdown reads only that range);
        scattered rows go through a row-index filter, which still decodes only two columns per file
        before it touches the text.
        """
        files = self.record_files()
        found: dict[tuple[int, int], dict[str, Any]] = {}
        for (fi,), grp in rows.select("_file", "_row").unique().group_by("_file"):
            wanted = sorted(int(r) for r in grp["_row"].to_list())
            lf = pl.scan_parquet(files[int(fi)])
            lo, hi = wanted[0], wanted[-1]
            if hi - lo < SLICE_SPAN:
                got = lf.slice(lo, hi - lo + 1).collect()
                for r in wanted:
                    found[(int(fi), r)] = got.row(r - lo, named=True)
            else:
                got = lf.with_row_index("_row").filter(pl.col("_row").is_in(wanted)).collect()
                for rec in got.iter_rows(named=True):
                    found[(int(fi), int(rec.pop("_row")))] = rec
        return [found[(int(f), int(r))] for f, r in rows.select("_file", "_row").iter_rows()]

    def fetch_ids(self, index: pl.DataFrame, ids: Sequence[str]) -> list[dict[str, Any]]:
        rows = pl.DataFrame({"id": list(ids)}).join(index, on="id", how="inner", maintain_order="left")
        return self.fetch(rows)

    def text_search(self, pattern: str, regex: bool) -> pl.DataFrame:
        """``_file``/``_row`` of records whose turns contain ``pattern``: a streaming scan, text never kept."""
        if regex:
            err = check_regex(pattern)
            if err:
                raise ConfigError(err)
        hit = (
            pl.col("turns")
            .list.eval(pl.element().struct.field("content").str.contains(pattern, literal=not regex))
            .list.any()
        )
        parts = [
            pl.scan_parquet(f).with_row_index("_row").filter(hit).select(pl.lit(i, pl.Int32).alias("_file"), pl.col("_row").cast(pl.Int64))
            for i, f in enumerate(self.record_files())
        ]
        return pl.concat(parts).collect(engine="streaming")

    # -- artifacts --------------------------------------------------------------------------------
    def groups(self) -> pl.DataFrame | None:
        """Every dedup step's groups, concatenated (group ids made unique per step).

        One row per group member as the dedup step wrote it, the survivor's own row included:
        ``removed`` is true only for members the step removed (not the survivor, not a member a
        person labelled keep or "not a duplicate").
        """
        files = self.run.find_all(L.GROUPS)
        if not files:
            return None
        parts = []
        for f in files:
            g = pl.read_parquet(f)
            if "step" not in g.columns:
                g = g.with_columns(pl.lit(f.parent.name[3:]).alias("step"))
            if "removed" not in g.columns:  # written before dedup steps recorded it: all but the survivor
                g = g.with_columns((pl.col("member") != pl.col("survivor")).alias("removed"))
            parts.append(
                g.select(
                    pl.concat_str(pl.col("step"), pl.lit(":"), pl.col("group_id").cast(pl.Utf8)).alias("group"),
                    pl.col("survivor").cast(pl.Utf8),
                    pl.col("member").cast(pl.Utf8),
                    pl.col("similarity").cast(pl.Float64),
                    pl.col("removed").cast(pl.Boolean),
                    pl.col("step").cast(pl.Utf8),
                )
            )
        return pl.concat(parts)

    def source_decisions(self) -> dict[str, Any] | None:
        """What ``filter.source``'s ``drop_if`` rule decided per source or subset, with the figures."""
        data = self.run.read_json_artifact(L.SOURCE_DECISIONS)
        return data if isinstance(data, dict) else None

    def embedding_info(self) -> dict[str, Any] | None:
        data = self.run.read_json_artifact(L.EMBEDDING_INFO)
        return data if isinstance(data, dict) else None


def group_sizes(groups: pl.DataFrame) -> pl.DataFrame:
    """One row per dedup group: its survivor and step, how many members the step removed, how many
    it kept because a person labelled them (keep or not a duplicate), and the lowest similarity of a
    removed member to the survivor. The survivor's own row is never counted."""
    other = pl.col("member") != pl.col("survivor")
    return groups.group_by("group", "survivor", "step").agg(
        pl.col("removed").sum().cast(pl.Int64).alias("removed"),
        (other & ~pl.col("removed")).sum().cast(pl.Int64).alias("kept_by_label"),
        pl.col("similarity").filter(pl.col("removed")).min().alias("similarity"),
    )


def apply_filters(
    index: pl.DataFrame, f: Filters, labels: pl.DataFrame, text_hits: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Index rows matching ``f``; ``labels`` is the effective labels table, ``text_hits`` a text_search result."""
    conds: list[pl.Expr] = []
    for col, values in (
        ("source", f.sources),
        ("subset", f.subsets),
        ("lang", f.langs),
        ("cluster", f.clusters),
        ("status", f.statuses),
        ("reason", f.reasons),
        ("flag", f.flags),
    ):
        if values:
            conds.append(pl.col(col).is_in(values))
    if f.min_chars is not None:
        conds.append(pl.col("chars") >= f.min_chars)
    if f.max_chars is not None:
        conds.append(pl.col("chars") <= f.max_chars)
    out = index.filter(*conds) if conds else index
    if f.labels:
        lab = labels.select(pl.col("record_id").alias("id"), "label")
        want = [x for x in f.labels if x != "unlabelled"]
        marked = out.join(lab.filter(pl.col("label").is_in(want)), on="id", how="semi")
        if "unlabelled" in f.labels:
            marked = pl.concat([marked, out.join(lab, on="id", how="anti")])
        out = marked
    if text_hits is not None:
        out = out.join(text_hits, on=["_file", "_row"], how="semi")
    if f.ids is not None:
        out = out.join(pl.DataFrame({"id": pl.Series(f.ids, dtype=pl.Utf8)}), on="id", how="semi")
    return out


def with_labels(index: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Add the effective ``label`` column (null = unlabelled)."""
    lab = labels.select(pl.col("record_id").alias("id"), "label")
    return index.join(lab, on="id", how="left")


def funnel(report: dict[str, Any]) -> pl.DataFrame:
    """Records in and out of every step, from the run's report."""
    rows = [
        {
            "step": s["step_id"],
            "kind": s.get("kind", ""),
            "n_in": s["n_in"],
            "n_out": s["n_out"],
            "removed": sum(s.get("rejected", {}).values()),
            "quarantined": sum(s.get("quarantined", {}).values()),
            "seconds": s.get("seconds", 0.0),
        }
        for s in report.get("steps", [])
    ]
    return pl.DataFrame(
        rows,
        schema={"step": pl.Utf8, "kind": pl.Utf8, "n_in": pl.Int64, "n_out": pl.Int64, "removed": pl.Int64,
                "quarantined": pl.Int64, "seconds": pl.Float64},
    )


def top_reasons(report: dict[str, Any], n: int = 15) -> pl.DataFrame:
    rows = [
        {"step": s["step_id"], "reason": r, "records": c}
        for s in report.get("steps", [])
        for r, c in s.get("rejected", {}).items()
    ]
    df = pl.DataFrame(rows, schema={"step": pl.Utf8, "reason": pl.Utf8, "records": pl.Int64})
    return df.sort("records", descending=True).head(n)


def flagged_table(report: dict[str, Any]) -> pl.DataFrame:
    """Records kept but flagged for review, per step and flag (the run report's ``steps[].flagged``)."""
    rows = [
        {"step": s["step_id"], "flag": k, "records": v}
        for s in report.get("steps", [])
        for k, v in s.get("flagged", {}).items()
    ]
    df = pl.DataFrame(rows, schema={"step": pl.Utf8, "flag": pl.Utf8, "records": pl.Int64})
    return df.sort("records", descending=True)


def sources_table(report: dict[str, Any], index: pl.DataFrame) -> pl.DataFrame:
    """One row per source: read, ingested and quarantined by its reader, kept after the last step and
    removed with a reason (the run report's ``sources``, as the runner writes it; the index table's counts
    for a run without one), and the number of map clusters its kept records fall in (noise excluded)."""
    in_cluster = pl.col("cluster").is_not_null() & (pl.col("cluster") >= 0) & (pl.col("status") == KEPT)
    counts = index.group_by("source").agg(
        (pl.col("status") == KEPT).sum().cast(pl.Int64).alias("kept"),
        (pl.col("status") == REMOVED).sum().cast(pl.Int64).alias("removed"),
        pl.col("cluster").filter(in_cluster).n_unique().cast(pl.Int64).alias("clusters"),
    )
    rep = report.get("sources")
    if isinstance(rep, dict) and rep:
        r = pl.DataFrame(
            [
                {"source": k, "format": str(v.get("format", "")), "files": v.get("files"), "read": v.get("read"),
                 "ingested": v.get("ingested"), "quarantined": v.get("quarantined"), "kept": v.get("kept"),
                 "removed": sum(v["removed"].values()) if isinstance(v.get("removed"), dict) else v.get("removed")}
                for k, v in rep.items() if isinstance(v, dict)
            ],
            schema={"source": pl.Utf8, "format": pl.Utf8, "files": pl.Int64, "read": pl.Int64, "ingested": pl.Int64,
                    "quarantined": pl.Int64, "kept": pl.Int64, "removed": pl.Int64},
        )
        counts = r.join(counts.select("source", "clusters"), on="source", how="left")
    return counts.sort("source")


def source_removals(report: dict[str, Any]) -> pl.DataFrame:
    """Records removed per source, step and reason (the run report's ``sources.<id>.removed``)."""
    rows = [
        {"source": src, "step": key.split(":", 1)[0], "reason": key.split(":", 1)[-1], "records": int(n)}
        for src, v in (report.get("sources") or {}).items() if isinstance(v, dict)
        for key, n in (v.get("removed") or {}).items()
    ]
    df = pl.DataFrame(rows, schema={"source": pl.Utf8, "step": pl.Utf8, "reason": pl.Utf8, "records": pl.Int64})
    return df.sort(["source", "records"], descending=[False, True])


def diversity_table(report: dict[str, Any], scope: str = "per_source",
                    decisions: dict[str, Any] | None = None) -> pl.DataFrame:
    """``score.diversity``'s figures (the run report's ``diversity.<scope>``, scope ``per_source`` or
    ``per_subset``), one row per group and one column per metric in :data:`METRICS` order, plus the
    ``overall`` row for ``per_source``. With ``decisions`` (``filter.source``'s :data:`~curate.layout.SOURCE_DECISIONS`)
    a ``decision`` column says what the ``drop_if`` rule made of each group and by which figures."""
    from curate.analysis.diversity import METRICS

    div = report.get("diversity")
    if not isinstance(div, dict) or not isinstance(div.get(scope), dict):
        return pl.DataFrame(schema={"group": pl.Utf8})
    table: dict[str, Any] = dict(div[scope])
    if scope == "per_source" and isinstance(div.get("overall"), dict):
        table["(overall)"] = div["overall"]
    metrics = [m for m in METRICS if any(isinstance(v, dict) and m in v for v in table.values())]
    rows = []
    for group, fig in table.items():
        if not isinstance(fig, dict):
            continue
        row: dict[str, Any] = {"group": group}
        for m in metrics:
            v = fig.get(m)
            row[m] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        rows.append(row)
    df = pl.DataFrame(rows, schema={"group": pl.Utf8, **{m: pl.Float64 for m in metrics}})
    if "count" in df.columns:
        df = df.with_columns(pl.col("count").cast(pl.Int64))
    verdicts = (decisions or {}).get("groups") if (decisions or {}).get("scope") == scope.removeprefix("per_") else None
    if isinstance(verdicts, dict):
        df = df.with_columns(pl.col("group").replace_strict(
            {g: decision_text({**d, "rule": (decisions or {}).get("rule") or {}}) for g, d in verdicts.items()
             if isinstance(d, dict)}, default=None,
            return_dtype=pl.Utf8).alias("decision"))
    return df


def figure_text(value: float | None) -> str:
    """A diversity figure as the Overview shows it: three significant digits (counts in full)."""
    if value is None:
        return "n/a"
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:.3g}"


def diversity_display(table: pl.DataFrame) -> pl.DataFrame:
    """:func:`diversity_table` turned for reading: one row per metric (with its meaning), one column per
    group, figures as :func:`figure_text` strings."""
    from curate.analysis.diversity import METRICS

    metrics = [c for c in table.columns if c in METRICS]
    cols: dict[str, list[str]] = {"metric": metrics, "meaning": [METRICS[m] for m in metrics]}
    for row in table.iter_rows(named=True):
        cols[str(row["group"])] = [figure_text(row[m]) for m in metrics]
    return pl.DataFrame(cols, schema={k: pl.Utf8 for k in cols})


def decision_text(decision: dict[str, Any]) -> str:
    """``dropped: short_response_share 0.92 > 0.5, unique_response_share 0.03 < 0.1`` (or ``kept: ...``)."""
    parts = []
    for key, held in (decision.get("conditions") or {}).items():
        metric, _, side = key.rpartition("_")
        value = (decision.get("figures") or {}).get(metric)
        shown = figure_text(value)
        parts.append(f"{metric} {shown} {('>' if side == 'above' else '<') if held else ('<=' if side == 'above' else '>=')} "
                     f"{decision.get('rule', {}).get(key, '?')}")
    return ("dropped: " if decision.get("drop") else "kept: ") + ", ".join(parts)
