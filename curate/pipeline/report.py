"""The run's report: ``report.json`` (layout.REPORT_SHAPE), its Markdown funnel in the style of the GPT4All
technical report, and the one line per step the CLI prints.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from curate.layout import DIVERSITY, RunLayout, StepFolder
from curate.pipeline.books import check_totals
from curate.rundir import write_text_atomic
from curate.steps.base import StepReport


def build_report(layout: RunLayout, final: StepFolder, *, reports: list[StepReport],
                 source_stats: dict[str, dict[str, Any]], head: dict[str, Any]) -> dict[str, Any]:
    """report.json's content: ``head`` (name, run_dir, recipe_hash, started, seconds, dry_run, limit), the
    step reports, per-source counts (kept after ``final``, removed per step and reason) and the run totals,
    which must balance."""
    kept_by_source = dict(pl.scan_parquet(final.kept).group_by("source").len().collect().iter_rows())
    removed_by_source: dict[str, dict[str, int]] = {}
    ledger_files = layout.ledger_files()
    if ledger_files:
        lg = pl.concat([pl.scan_parquet(f).select("source", "step", "reason") for f in ledger_files])
        for src, step, reason, n in lg.group_by("source", "step", "reason").len().collect().iter_rows():
            removed_by_source.setdefault(src, {})[f"{step}:{reason}"] = n
    sources = {sid: {**st, "kept": int(kept_by_source.get(sid, 0)), "removed": removed_by_source.get(sid, {})}
               for sid, st in source_stats.items()}
    totals = {
        "read": sum(s["read"] for s in source_stats.values()),
        "added": sum(r.n_added for r in reports),
        "kept": int(sum(kept_by_source.values())),
        "removed": sum(sum(r.rejected.values()) for r in reports),
        "quarantined": sum(sum(r.quarantined.values()) for r in reports),
    }
    check_totals(totals)
    report: dict[str, Any] = {**head, "steps": [r.to_json() for r in reports], "sources": sources, "totals": totals}
    diversity = layout.find(DIVERSITY)  # score.diversity's per-source table
    if diversity is not None:
        report["diversity"] = json.loads(diversity.read_text())
    return report


def write_report(layout: RunLayout, report: dict[str, Any]) -> None:
    """report.json and report.md, each written atomically."""
    write_text_atomic(layout.report, json.dumps(report, indent=1, default=str))
    write_text_atomic(layout.report_md, funnel_markdown(report))


def format_line(rep: StepReport) -> str:
    """One step as the CLI prints it: in -> out, top reasons, quarantine, flags, warnings, time."""
    removed = sum(rep.rejected.values())
    q = sum(rep.quarantined.values())
    reasons = ", ".join(f"{k} {v:,}" for k, v in rep.rejected.most_common(3))
    parts = [f"{rep.step_id:<28} {rep.n_in:>10,} -> {rep.n_out:>10,}"]
    if rep.n_added:
        parts.append(f"+{rep.n_added:,} split")
    if removed:
        parts.append(f"-{removed:,} ({reasons})")
    if q:
        parts.append(f"quarantined {q:,}")
    if rep.flagged:
        parts.append("flagged " + ", ".join(f"{k} {v:,}" for k, v in rep.flagged.most_common(3)))
    unmatched = rep.extra.get("labels_unmatched")
    if unmatched:
        examples = ", ".join(str(i) for i in rep.extra.get("labels_unmatched_examples") or [])
        parts.append(f"labels matching no record {int(unmatched):,} (e.g. {examples})")
    no_assistant = rep.extra.get("no_assistant_turn")
    if no_assistant:
        parts.append(f"warning: {int(no_assistant):,} exported without an assistant turn")
    parts.append("cached" if rep.cached else f"{rep.seconds:.1f}s")
    return "  ".join(parts)


def _n(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def funnel_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Curation report: {report['name']}", ""]
    t = report["totals"]
    lines += [
        f"Read **{_n(t['read'])}** records, kept **{_n(t['kept'])}** "
        f"({(t['kept'] / t['read'] * 100 if t['read'] else 0):.1f}%), removed {_n(t['removed'])} with a reason, "
        f"quarantined {_n(t['quarantined'])}" + (f", {_n(t['added'])} added by splitting" if t.get("added") else "")
        + ".",
        "",
    ]
    if report.get("dry_run"):
        lines += ["*Dry run: filters only measured; nothing was removed.*", ""]
    lines += ["## Funnel", "", "| step | in | out | removed | top reasons | quarantined | seconds |",
              "|---|---:|---:|---:|---|---:|---:|"]
    for s in report["steps"]:
        removed = sum(s["rejected"].values())
        reasons = ", ".join(f"{k} {_n(v)}" for k, v in list(s["rejected"].items())[:4])
        q = sum(s["quarantined"].values())
        out = _n(s["n_out"]) + (f" (+{_n(s['n_added'])} split)" if s.get("n_added") else "")
        secs = "cached" if s.get("cached") else f"{s['seconds']:.1f}"
        lines.append(f"| {s['step_id']} | {_n(s['n_in'])} | {out} | {_n(removed)} | {reasons} | {_n(q)} | {secs} |")
    flagged = [(s["step_id"], k, v, s.get("flag_examples", {}).get(k, [])) for s in report["steps"]
               for k, v in s.get("flagged", {}).items()]
    if flagged:
        lines += ["", "## Flagged for review (kept, not removed)", "",
                  ("Read these before turning a flag into a removal (`mode: remove`, or the step's `remove_flags`);"
                   " `curate browse` lists them under Browse, filter \"flag\"."), "",
                  "| step | flag | records | example ids |", "|---|---|---:|---|"]
        for step_id, k, v, ex in flagged:
            lines.append(f"| {step_id} | {k} | {_n(v)} | {', '.join(f'`{i}`' for i in ex[:5])} |")
    lines += ["", "## Sources", "", "| source | format | read | quarantined | kept | kept % |",
              "|---|---|---:|---:|---:|---:|"]
    for sid, s in report["sources"].items():
        pct = s["kept"] / s["read"] * 100 if s["read"] else 0.0
        lines.append(f"| {sid} | {s['format']} | {_n(s['read'])} | {_n(s['quarantined'])} | {_n(s['kept'])} | {pct:.1f}% |")
    div = report.get("diversity")
    if isinstance(div, dict) and div.get("per_source"):
        cols = [c for c in next(iter(div["per_source"].values())) if not isinstance(
            next(iter(div["per_source"].values()))[c], (dict, list))]
        lines += ["", "## Diversity", "", "| source | " + " | ".join(cols) + " |",
                  "|---|" + "---:|" * len(cols)]
        for sid, row in div["per_source"].items():
            cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else _n(row[c]) for c in cols]
            lines.append(f"| {sid} | " + " | ".join(cells) + " |")
    lines += ["", f"Run directory: `{report.get('run_dir', '')}`; recipe hash `{report.get('recipe_hash', '')}`.", ""]
    return "\n".join(lines)
