"""``curate browse RUN_DIR [--port P] [--host H] [--labels PATH]``: start the Streamlit browser.

Streamlit runs in a child process on 127.0.0.1 unless another host is given: the browser shows
raw training data and writes labels, so it is not exposed on the network by default.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from curate.browse.labels import default_labels_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory (runs/<name>/<ts>, or runs/<name> with a `latest` link)")
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--labels", help="labels SQLite file (default: runs/<name>/labels.sqlite)")
    parser.add_argument("--no-headless", action="store_true", help="let Streamlit open a browser window")


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line for these arguments (validates the run dir first)."""
    from curate.rundir import RunDir

    run = RunDir(args.run_dir).path
    labels = Path(args.labels) if args.labels else default_labels_path(run)
    app = Path(__file__).with_name("app.py")
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--server.headless", "false" if args.no_headless else "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        "--", str(run), "--labels", str(labels),
    ]


def run(args: argparse.Namespace) -> int:
    cmd = streamlit_command(args)
    print(f"curate browse: http://{args.host}:{args.port}  (labels: {cmd[-1]})", flush=True)
    return subprocess.call(cmd)
