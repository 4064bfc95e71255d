"""`curate validate RECIPE`: the exact validation `curate run` does, without reading any data."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def run(args: argparse.Namespace) -> int:
    from curate.pipeline.spec import load_recipe

    plan = load_recipe(args.recipe, args.overrides)
    print(f"{args.recipe}: ok ({len(plan.readers)} sources, {len(plan.steps)} steps: "
          f"{', '.join(s.id for s in plan.steps)})")
    return 0
