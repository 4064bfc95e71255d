"""The recipes' cleaning filters against records labelled by a person (``shared/gold``).

For each recipe, runs its per-record steps (transforms and filters, in recipe order, with the
recipe's parameters) over every labelled record and prints
* per filter and reason: removals and precision (the share of removals the labels call bad),
  with the labels of what it removed;
* per gold class (failed, refusal, degenerate, non_english; other_bad for reference): recall,
  the share of that class removed by any filter;
* overall: the share of good (``keep``) records removed by any filter, with the five commonest
  wrong reasons, and the share of failed/refusal/degenerate/non_english records caught;
* what ``mode: flag`` and flag reasons (e.g. ``ai_disclaimer``) marked for review.

    .venv/bin/python bench/filter_quality.py
    .venv/bin/python bench/filter_quality.py --gold ../shared/gold/filters-dev.jsonl --show-wrong
    .venv/bin/python bench/filter_quality.py --json out.json

Exit status 0 always: this prints figures; ``tests/test_filter_quality.py`` holds the targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GOLD = ROOT.parent / "shared" / "gold" / "filters-dev.jsonl"
RECIPES = (ROOT / "pipelines" / "gpt4all.yaml", ROOT / "pipelines" / "vicuna.yaml")


def pct(x: float | None) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}%"


def print_summary(s: dict[str, Any], records: dict[str, Any], show_wrong: bool) -> None:
    print(f"\n## {s['recipe']}  ({s['records']} labelled records: "
          + ", ".join(f"{k} {v}" for k, v in sorted(s["labels"].items())) + ")")
    print("\n| filter: reason | removed | precision | labels of removed |")
    print("|---|---:|---:|---|")
    for key, d in sorted(s["per_reason"].items(), key=lambda kv: -kv[1]["removed"]):
        labels = ", ".join(f"{k} {v}" for k, v in sorted(d["by_label"].items(), key=lambda kv: -kv[1]))
        print(f"| {key} | {d['removed']} | {pct(d['precision'])} | {labels} |")
    if not s["per_reason"]:
        print("| (nothing removed) | 0 | | |")
    print("\n| gold class | records | caught | recall |")
    print("|---|---:|---:|---:|")
    for cls, d in s["recall"].items():
        print(f"| {cls} | {d['n']} | {d['caught']} | {pct(d['recall'])} |")
    print(f"\ngood records removed: {s['good_removed']}/{s['good_total']} = {pct(s['good_removed_share'])}")
    print(f"failed/refusal/degenerate/non_english caught: {s['bad_caught']}/{s['bad_total']} = "
          f"{pct(s['bad_caught_share'])}")
    if s["wrong_reasons"]:
        print("commonest wrong reasons: " + "; ".join(f"{k} ({v})" for k, v in s["wrong_reasons"]))
    if s["flagged"]:
        print("flagged for review (not removed): " + "; ".join(
            f"{k} {d['flagged']} (" + ", ".join(f"{lab} {n}" for lab, n in d["by_label"].items()) + ")"
            for k, d in sorted(s["flagged"].items())))
    if s["errors"]:
        print(f"records a step failed on: {len(s['errors'])}: {list(s['errors'].items())[:3]}")
    if show_wrong:
        print("\ngood records removed:")
        for uid in s["good_removed_all"]:
            r = records[uid]
            print(f"  {uid} [{r['why']}] {r['text']!r}")
        print("bad records missed:")
        for uid in s["missed_all"]:
            r = records[uid]
            print(f"  {uid} ({r['label']}: {r['note']}) {r['text']!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="labelled JSONL (default: %(default)s)")
    ap.add_argument("--recipes", type=Path, nargs="+", default=list(RECIPES))
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="recipe override, as for `curate run --set` (applies to every recipe)")
    ap.add_argument("--show-wrong", action="store_true", help="list every good record removed and bad one missed")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not args.gold.is_file():
        print(f"no gold file at {args.gold}: nothing to measure", file=sys.stderr)
        return 0
    from curate.gold import evaluate, load_gold, summarize
    from curate.pipeline.spec import load_recipe

    gold = load_gold(args.gold)
    print(f"gold: {args.gold} ({len(gold)} records)")
    out = []
    for recipe in args.recipes:
        plan = load_recipe(recipe, args.overrides)
        t0 = time.perf_counter()
        ev = evaluate(plan.steps, gold, recipe=recipe.name)
        s = summarize(ev)
        s["seconds"] = round(time.perf_counter() - t0, 2)
        first = ev.first_removal()
        s["good_removed_all"] = [r.uid for r, f in zip(gold, first) if r.label == "keep" and f]
        s["missed_all"] = [r.uid for r, f in zip(gold, first) if r.label in ("failed", "refusal", "degenerate",
                                                                           "non_english") and not f]
        records = {}
        for r, f in zip(gold, first):
            last = next((t["content"] for t in reversed(r.turns) if t["role"] == "assistant"), "")
            records[r.uid] = {"label": r.label, "note": r.note, "why": f and f"{f[0]}: {f[1]}",
                              "text": (last[:140] + " ... " + last[-100:]) if len(last) > 260 else last}
        print_summary(s, records, args.show_wrong)
        print(f"({s['seconds']} s)")
        out.append(s)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
