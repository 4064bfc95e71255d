"""`curate run RECIPE`: validate, run, print the funnel and where the report is."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe YAML, e.g. pipelines/gpt4all.yaml")
    p.add_argument("--run-dir", type=Path, help="run directory (resumed if it exists); default runs/<name>/<ts>")
    p.add_argument("--runs-root", type=Path, default=Path("runs"), help="root of default run directories")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set sources.oig.path=demo/raw/oig/*.jsonl")
    p.add_argument("--force", action="store_true", help="recompute every step, ignoring finished ones")
    p.add_argument("--limit", type=int, help="read at most N records per source (N >= 1; try a recipe on a slice); "
                   "a trial: exports stay inside the run directory and `latest` does not move")
    p.add_argument("--dry-run", action="store_true",
                   help="only measure: filters write scores, nothing is removed; a trial like --limit")
    p.add_argument("--labels", type=Path, help="labels database for label.apply (default beside the runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="run every step on this Ray cluster (e.g. auto, HOST:6379 or ray://head:10001); implies "
                   "--set executor.kind=ray, which alone starts a local cluster (needs curate[ray])")


def run(args: argparse.Namespace) -> int:
    from curate.layout import RunLayout
    from curate.pipeline.runner import check_limit, run_pipeline, trial_reason
    from curate.pipeline.spec import load_recipe

    check_limit(args.limit)
    overrides = list(args.overrides)
    if args.ray_address:
        overrides.append("executor.kind=ray")
    plan = load_recipe(args.recipe, overrides)
    ex = plan.spec.executor
    cluster = args.ray_address or ex.address or os.environ.get("RAY_ADDRESS") or "local cluster"
    where = f", on Ray ({cluster})" if ex.kind == "ray" else ""
    print(f"recipe {plan.spec.name}: {len(plan.readers)} sources, {len(plan.steps)} steps{where}", file=sys.stderr)
    result = run_pipeline(
        plan, args.run_dir, runs_root=args.runs_root, force=args.force, limit=args.limit,
        dry_run=args.dry_run, progress=False if args.quiet else None, labels_path=args.labels,
        ray_address=args.ray_address,
    )
    t = result.report["totals"]
    print(f"\nread {t['read']:,}  kept {t['kept']:,}  removed {t['removed']:,}  "
          f"quarantined {t['quarantined']:,}  in {result.seconds:.1f}s")
    print(f"run directory: {result.run_dir}")
    trial = trial_reason(args.dry_run, args.limit)
    if trial and args.run_dir is None:
        print(f"trial run ({trial}): {args.runs_root / plan.spec.name / 'latest'} was not moved to it")
    print(f"report: {RunLayout(result.run_dir).report_md}")
    try:
        from curate.analysis.report import write_report
    except ImportError as e:  # matplotlib is in the `analysis` extra
        print(f"html report skipped ({e}); install curate[analysis] and run `curate report {result.run_dir}`")
        return 0
    html_path, _ = write_report(result.run_dir)
    print(f"html report: {html_path}  (opens offline)")
    return 0
