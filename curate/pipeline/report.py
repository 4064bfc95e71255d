"""The run report as Markdown: a funnel in the style of the GPT4All technical report, per-source counts."""

from __future__ import annotations

from typing import Any


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
