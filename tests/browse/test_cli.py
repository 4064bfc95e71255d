"""`curate browse`: the streamlit command line, local by default, and a clear error for a bad run dir."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from curate.browse import cli
from curate.browse.app import parse_argv
from curate.cli import main


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(list(argv))


def test_listens_on_localhost_by_default(run_dir: Path):
    cmd = cli.streamlit_command(_args(str(run_dir)))
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("curate/browse/app.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8501"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert cmd[cmd.index("--") + 1:] == [str(run_dir), "--labels", str(run_dir.parent / "labels.sqlite")]


def test_host_port_and_labels(run_dir: Path, tmp_path: Path):
    cmd = cli.streamlit_command(_args(str(run_dir), "--host", "0.0.0.0", "--port", "9000", "--labels",
                                      str(tmp_path / "l.sqlite")))
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--server.port") + 1] == "9000"
    assert cmd[-1] == str(tmp_path / "l.sqlite")


def test_bad_run_dir_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["browse", str(tmp_path)]) == 2
    assert "not a curate run directory" in capsys.readouterr().err


def test_app_argv():
    assert parse_argv(["runs/x/1", "--labels", "l.sqlite"]) == ("runs/x/1", "l.sqlite")
    assert parse_argv(["--labels=l.sqlite", "runs/x/1"]) == ("runs/x/1", "l.sqlite")
    assert parse_argv([]) == (None, None)
