"""``curate export RUN_DIR OUT_DIR``: a run's kept records as a Hub dataset or a trainer format."""

from __future__ import annotations

import argparse

from curate.export.formats import FORMATS, TEMPLATES
from curate.export.hub import DEFAULT_SHARD_ROWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory (runs/<name>/<ts>, or runs/<name> with latest)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to create (written atomically)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="hub",
                        help="hub: Parquet shards + card for `datasets`; sharegpt/alpaca/openai/text: trainer files")
    parser.add_argument("--template", choices=TEMPLATES, default=None, help="chat template for --format text")
    parser.add_argument("--splits", default="train=1.0",
                        help="NAME=SIZE pairs: fractions (train=0.9,validation=0.1), counts and one 'rest' "
                             "(train=rest,test=500); split per source in the same proportions")
    parser.add_argument("--shard-rows", type=int, default=DEFAULT_SHARD_ROWS, help="rows per Parquet shard (hub)")
    parser.add_argument("--seed", type=int, default=None, help="split seed (default: the run's seed)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it is an earlier curate export "
                        "holding only the files its export.json lists (anything else: refused)")
    parser.add_argument("--keep-scores", default="all",
                        help="score columns to keep (hub): all, none, or a comma list like filter_length.chars")
    parser.add_argument("--alpaca-multiturn", choices=("history", "skip"), default="history",
                        help="alpaca: put earlier exchanges in LLaMA-Factory's `history`, or skip such conversations")
    parser.add_argument("--license", action="append", default=[], metavar="SOURCE=ID",
                        help="set a source's licence (Hub id, e.g. apache-2.0) when its format's default is wrong")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", default=None,
                        help="upload the folder as a dataset repo (token from HF_TOKEN or `hf auth login`)")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--step", metavar="STEP_ID", default=None,
                        help="export the records kept after this step instead of the final ones (ingest: the "
                             "uncurated input, e.g. for `curate eval`)")


def run(args: argparse.Namespace) -> int:
    from curate.errors import ConfigError
    from curate.export.hub import check_hub_access
    from curate.export.licenses import parse_overrides
    from curate.export.run import ExportOptions, export_run
    from curate.export.splits import parse_splits

    if args.private and not args.push_to_hub:
        raise ConfigError("--private applies only with --push-to-hub")
    keep = args.keep_scores.strip()
    keep_scores = keep if keep in ("all", "none") else [c.strip() for c in keep.split(",") if c.strip()]
    opts = ExportOptions(
        fmt=args.fmt,
        template=args.template,
        splits=parse_splits(args.splits),
        shard_rows=args.shard_rows,
        seed=args.seed,
        overwrite=args.overwrite,
        keep_scores=keep_scores,
        alpaca_multiturn=args.alpaca_multiturn,
        licenses=parse_overrides(args.license),
    )
    opts.check()
    # Check the Hub before writing anything: a push that cannot happen should not cost an export.
    hub = check_hub_access(args.push_to_hub) if args.push_to_hub else None
    result = export_run(args.run_dir, args.out_dir, opts, step=args.step, hub=hub, private=args.private)
    print(result.summary())
    return 0
