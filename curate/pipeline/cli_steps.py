"""`curate steps [KEY]`: the registry and each step's parameters, from the code itself."""

from __future__ import annotations

import argparse
import inspect
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", nargs="?", help="a step key (filter.length) or a kind prefix (filter, read)")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    d = field.get_default(call_default_factory=True)
    return repr(d)


def run(args: argparse.Namespace) -> int:
    from curate.steps.registry import all_steps, get_step

    steps = all_steps()
    if args.key and args.key in steps:
        chosen = {args.key: get_step(args.key)}
    elif args.key:
        chosen = {k: v for k, v in steps.items() if k.startswith(args.key.rstrip(".") + ".")}
        if not chosen:
            get_step(args.key)  # raises with suggestions
    else:
        chosen = steps
    detail = bool(args.key)
    for key, cls in chosen.items():
        doc = inspect.getdoc(cls) or ""
        first = doc.split("\n\n")[0].replace("\n", " ")
        print(f"{key:<28} {first}")
        if not detail:
            continue
        rest = doc[len(doc.split("\n\n")[0]):].strip()
        if rest:
            print("\n".join("    " + line for line in rest.splitlines()))
        for name, f in cls.Params.model_fields.items():
            ann = getattr(f.annotation, "__name__", str(f.annotation)).replace("typing.", "")
            print(f"    {name}: {ann} = {_default(f)}")
            if f.description:
                print(f"        {f.description}")
        print()
    return 0
