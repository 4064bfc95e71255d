"""The `curate` command. Thin: each subcommand lives in its own module and imports heavy parts lazily.

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int``. Only this module turns
exceptions into exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Modules must not import torch/faiss/streamlit at import time.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("curate.pipeline.cli", "run a recipe: curate run pipelines/gpt4all.yaml"),
    "validate": ("curate.pipeline.cli_validate", "validate a recipe without reading data"),
    "steps": ("curate.pipeline.cli_steps", "list registered steps and their parameters"),
    "ingest": ("curate.ingest.cli", "read files of one format into a Parquet file in the conversation schema"),
    "inspect": ("curate.ingest.cli_inspect", "show counts and a few conversations of a Parquet file"),
    "demo-data": ("curate.demo.cli", "write the synthetic demo corpus (five sources, planted problems)"),
    "report": ("curate.analysis.cli", "write report.html and report.md for a run directory"),
    "browse": ("curate.browse.cli", "open the Streamlit browser on a run directory"),
    "labels": ("curate.browse.cli_labels", "export or inspect the labels store"),
    "export": ("curate.export.cli", "export a run as a Hub dataset or a trainer format"),
    "finetune": ("curate.train.cli", "LoRA fine-tune on an exported dataset"),
    "eval": ("curate.eval.cli", "held-out perplexity of a base and its adapters; pairwise judge comparison"),
    "export-model": ("curate.train.cli_export_model", "merge an adapter and write a GGUF file GPT4All runs"),
    "chat": ("curate.train.chat", "chat in the terminal with a model folder, adapter or GGUF file"),
}


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curate",
        description="Local-first curation of instruction and chat data.",
    )
    from curate import __version__

    parser.add_argument("--version", action="version", version=f"curate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == load:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
        else:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(load=command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if command is None else 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `curate steps | head`: the reader went away; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except user_error_types() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (IsADirectoryError, NotADirectoryError) as e:
        # a path given as a file is a folder (or the reverse); commands should check first (errors.check_output_file)
        name = e.filename2 or e.filename  # os.replace(tmp, dst) names dst second
        kind = "is a folder, not a file" if isinstance(e, IsADirectoryError) else "has a file where a folder should be"
        print(f"error: {name or e}: {kind}; check the path", file=sys.stderr)
        return 2


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every error type that is the user's to fix: printed without a traceback, exit code 2."""
    from curate.errors import CurateError
    from curate.ingest.base import InputError

    return (CurateError, InputError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
