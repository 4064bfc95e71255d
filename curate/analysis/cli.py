"""`curate report RUN_DIR`: write report.html (self-contained) and report.md."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (runs/<name>/<ts> or runs/<name>/latest)")


def run(args: argparse.Namespace) -> int:
    from curate.analysis.report import write_report

    html_path, md_path = write_report(args.run_dir)
    print(f"wrote {html_path}\nwrote {md_path}")
    return 0
