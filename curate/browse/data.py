"""Reading a run directory for the browser: lazy Parquet scans, small derived tables, no full text.

The browser works from one **index table**: one row per record the run has seen (kept after the
last step, or removed with its step and reason), holding only short columns: source, subset,
status, reason, length, language, a 160-character prompt preview, map position and cluster, and
where the full record lives (``_file``, ``_row``). It is built once per run (about 1 s at 1M
records) and cached by the files' mtimes. Full conversations are read only for the records a page
shows, by Parquet row group (:meth:`RunData.fetch`). Nothing here imports Streamlit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curate.browse.render import PREVIEW_CHARS
from curate.errors import ConfigError
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
# Which recipe step writes each artifact, for the note a page shows when it is absent.
PRODUCERS = {
    "map.parquet": "a map step (analysis map: 2-D layout, clusters and topics), e.g. `score.map`",
    "groups.parquet": "a dedup step (`dedup.exact`, `dedup.minhash` or `dedup.semantic`)",
    "index.faiss": "`embed.sentence_transformer` (embeddings and FAISS index)",
    "embeddings.npy": "`embed.sentence_transformer` (embeddings and FAISS index)",
}


def missing_note(artifact: str) -> str:
    return f"This run has no `{artifact}`. Add {PRODUCERS.get(artifact, 'the step that writes it')} to the recipe and run it again."


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


def check_regex(pattern: str) -> str | None:
    """None when polars (Rust regex syntax) accepts ``pattern``, else a message for the user."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as e:
        first = str(e).strip().splitlines()
        return f"invalid regular expression {pattern!r}: {' '.join(first[:6])}"
    return None


class RunData:
    """One run directory as the browser sees it."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run = RunDir(run_dir)
        self.path = self.run.path

    # -- files ------------------------------------------------------------------------------------
    def record_files(self) -> list[Path]:
        """``[final kept.parquet, ledger files...]``; ``_file`` in the index table points into this."""
        files = [self.run.final_path()]
        files += sorted((self.path / "ledger").glob("*.parquet"))
        return files

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        """Cache key: every file the index table and artifacts come from, with its mtime."""
        paths = self.record_files()
        for name in ("map.parquet", "groups.parquet", "report.json"):
            p = self.run.find(name)
            if p is not None:
                paths.append(p)
        return tuple((str(p), p.stat().st_mtime_ns) for p in paths)

    def report(self) -> dict[str, Any]:
        return self.run.report()

    def artifact(self, name: str) -> Path | None:
        return self.run.find(name)

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
        map_path = self.artifact("map.parquet")
        if map_path is not None:
            m = pl.read_parquet(map_path, columns=["id", "x", "y", "cluster", "topic"]).cast(
                {"x": pl.Float32, "y": pl.Float32, "cluster": pl.Int32}
            )
            index = index.join(m, on="id", how="left")
        else:
            index = index.with_columns(
                pl.lit(None, pl.Float32).alias("x"),
                pl.lit(None, pl.Float32).alias("y"),
                pl.lit(None, pl.Int32).alias("cluster"),
                pl.lit(None, pl.Utf8).alias("topic"),
            )
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
        """Every dedup step's groups.parquet, concatenated (group ids made unique per step)."""
        files = [d / "groups.parquet" for d in self.run.step_dirs() if (d / "groups.parquet").exists()]
        if not files:
            return None
        parts = []
        for f in files:
            g = pl.read_parquet(f)
            if "step" not in g.columns:
                g = g.with_columns(pl.lit(f.parent.name[3:]).alias("step"))
            parts.append(
                g.select(
                    pl.concat_str(pl.col("step"), pl.lit(":"), pl.col("group_id").cast(pl.Utf8)).alias("group"),
                    pl.col("survivor").cast(pl.Utf8),
                    pl.col("member").cast(pl.Utf8),
                    pl.col("similarity").cast(pl.Float64),
                    pl.col("step").cast(pl.Utf8),
                )
            )
        return pl.concat(parts)

    def embedding_info(self) -> dict[str, Any] | None:
        p = self.artifact("embedding.json")
        return json.loads(p.read_text()) if p else None


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
    return out


def with_labels(index: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Add the effective ``label`` column (null = unlabelled)."""
    lab = labels.select(pl.col("record_id").alias("id"), "label")
    return index.join(lab, on="id", how="left")


def funnel(report: dict[str, Any]) -> pl.DataFrame:
    """Records in and out of every step, from report.json."""
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
    """Records kept but flagged for review, per step and flag, from report.json."""
    rows = [
        {"step": s["step_id"], "flag": k, "records": v}
        for s in report.get("steps", [])
        for k, v in s.get("flagged", {}).items()
    ]
    df = pl.DataFrame(rows, schema={"step": pl.Utf8, "flag": pl.Utf8, "records": pl.Int64})
    return df.sort("records", descending=True)


def sources_table(report: dict[str, Any], index: pl.DataFrame) -> pl.DataFrame:
    """Per-source counts from the report (read/ingested/quarantined) and the index (kept/removed), plus diversity."""
    counts = index.group_by("source").agg(
        (pl.col("status") == KEPT).sum().alias("kept"),
        (pl.col("status") == REMOVED).sum().alias("removed"),
        pl.col("cluster").n_unique().alias("clusters"),
    )
    rep = report.get("sources", {})
    if rep:
        r = pl.DataFrame(
            [
                {"source": k, "format": str(v.get("format", "")), "read": v.get("read"),
                 "ingested": v.get("ingested"), "quarantined": v.get("quarantined")}
                for k, v in rep.items()
            ],
            schema={"source": pl.Utf8, "format": pl.Utf8, "read": pl.Int64, "ingested": pl.Int64,
                    "quarantined": pl.Int64},
        )
        counts = r.join(counts, on="source", how="full", coalesce=True)
    div = report.get("diversity")
    if isinstance(div, dict) and div:
        d = pl.DataFrame([{"source": k, **v} for k, v in div.items() if isinstance(v, dict)])
        if d.height:
            d = d.rename({c: f"diversity.{c}" for c in d.columns if c != "source"})
            counts = counts.join(d, on="source", how="left")
    return counts.sort("source")
