"""``curate labels export|show``: the labels store outside the browser.

``TARGET`` is a run directory (its recipe's labels file, :data:`curate.layout.LABELS_DB`, is used), a recipe's run folder
``runs/<name>``, or the SQLite file itself.
"""

from __future__ import annotations

import argparse

import polars as pl

from curate.labels import LabelStore, resolve_labels_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    ex = sub.add_parser("export", help="write labels to Parquet or JSONL")
    ex.add_argument("target", metavar="RUN_DIR_OR_DB")
    ex.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    ex.add_argument("-o", "--output", required=True, help="output file")
    ex.add_argument("--history", action="store_true", help="every row ever written, not only the latest per record")
    sh = sub.add_parser("show", help="print label counts and the latest labels")
    sh.add_argument("target", metavar="RUN_DIR_OR_DB")
    sh.add_argument("--id", action="append", default=None, help="show the full history of this record (repeatable)")
    sh.add_argument("-n", type=int, default=20, help="how many latest labels to print (default 20)")


def run(args: argparse.Namespace) -> int:
    store = LabelStore(resolve_labels_path(args.target), create=False)
    if args.action == "export":
        n = store.export(args.output, args.format, history=args.history)
        print(f"wrote {n} label rows to {args.output}")
        return 0
    if args.id:
        df = store.history(args.id)
    else:
        eff = store.effective()
        counts = eff.group_by("label").agg(pl.len().alias("records")).sort("label")
        print(f"{store.path}: {eff.height} labelled records")
        for label, n in counts.iter_rows():
            print(f"  {label}: {n}")
        df = eff.sort("seq", descending=True).head(args.n)
    with pl.Config(tbl_rows=max(df.height, 1), fmt_str_lengths=60, tbl_width_chars=160):
        print(df.with_columns(pl.col("tags").list.join(",")))
    return 0
