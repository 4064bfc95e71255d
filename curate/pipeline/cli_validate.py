"""`curate validate RECIPE`: the exact validation `curate run` does, without reading any data.

Besides the recipe itself: every source path must match a file, and every write step's output folder
must be one the export would accept (new, empty, or an earlier curate export with nothing else in it).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def run(args: argparse.Namespace) -> int:
    from curate.pipeline.spec import load_recipe, preflight

    plan = load_recipe(args.recipe, args.overrides)
    preflight(plan)
    print(f"{args.recipe}: ok ({len(plan.readers)} sources, {len(plan.steps)} steps: "
          f"{', '.join(s.id for s in plan.steps)})")
    return 0
