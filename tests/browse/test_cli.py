"""`curate browse`: the streamlit arguments, local by default, a warning when exposed, a clear error for a
bad run dir, and a server that never outlives the command."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.browse import cli
from curate.browse.app import parse_argv
from curate.cli import main

from .conftest import ROOT


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(list(argv))


def _opt(cmd: list[str], name: str) -> list[str]:
    return [cmd[i + 1] for i, a in enumerate(cmd[: cmd.index("--")]) if a == name]


def test_listens_on_localhost_by_default(run_dir: Path):
    cmd = cli.streamlit_args(_args(str(run_dir)))
    assert cmd[0] == "run" and cmd[1].endswith("curate/browse/app.py")
    assert _opt(cmd, "--server.address") == ["127.0.0.1"]
    assert _opt(cmd, "--server.port") == ["8501"]
    assert cmd[cmd.index("--") + 1:] == [str(run_dir), "--labels", str(run_dir.parent / "labels.sqlite")]


def test_privacy_settings_are_passed(run_dir: Path):
    local = cli.streamlit_args(_args(str(run_dir)))
    for name, value in [("--browser.gatherUsageStats", "false"), ("--server.enableStaticServing", "false"),
                        ("--client.toolbarMode", "minimal"), ("--client.showErrorLinks", "false"),
                        ("--server.enableAgentApi", "false"), ("--client.showErrorDetails", "full")]:
        assert _opt(local, name) == [value], name
    assert _opt(local, "--server.allowedHosts") == ["localhost", "127.0.0.1", "::1"]  # no DNS rebinding
    lan = cli.streamlit_args(_args(str(run_dir), "--host", "0.0.0.0"))
    assert _opt(lan, "--client.showErrorDetails") == ["none"] and _opt(lan, "--server.allowedHosts") == []


def test_host_port_and_labels(run_dir: Path, tmp_path: Path):
    cmd = cli.streamlit_args(_args(str(run_dir), "--host", "0.0.0.0", "--port", "9000", "--labels",
                                   str(tmp_path / "l.sqlite")))
    assert _opt(cmd, "--server.address") == ["0.0.0.0"]
    assert _opt(cmd, "--server.port") == ["9000"]
    assert cmd[-1] == str(tmp_path / "l.sqlite")


def test_loopback_hosts():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]", "::ffff:127.0.0.1"):
        assert cli.is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "192.168.1.5", "10.0.0.1", "fe80::1", "myhost", "localhost.evil.example"):
        assert not cli.is_loopback(host), host


def test_non_loopback_host_warns_on_stderr(run_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]):
    started: list[list[str]] = []
    monkeypatch.setattr(cli, "serve", lambda st_args: started.append(st_args) or 0)
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        assert main(["browse", str(run_dir), "--host", host, "--port", "8600"]) == 0
        err = capsys.readouterr().err
        assert "not a loopback address" in err and "no authentication" in err and "8600" in err, host
    for host in ("127.0.0.1", "localhost", "::1"):
        assert main(["browse", str(run_dir), "--host", host]) == 0
        assert capsys.readouterr().err == "", host
    assert len(started) == 6


def test_bad_run_dir_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["browse", str(tmp_path)]) == 2
    assert "not a curate run directory" in capsys.readouterr().err


def test_app_argv():
    assert parse_argv(["runs/x/1", "--labels", "l.sqlite"]) == ("runs/x/1", "l.sqlite")
    assert parse_argv(["--labels=l.sqlite", "runs/x/1"]) == ("runs/x/1", "l.sqlite")
    assert parse_argv([]) == (None, None)


# -- the server's lifetime -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_curate_browse_stops_the_server(run_dir: Path, tmp_path: Path, sig: signal.Signals):
    port = _free_port()
    log = tmp_path / "browse.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "curate.cli", "browse", str(run_dir), "--port", str(port),
             "--labels", str(tmp_path / "labels.sqlite")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)
        time.sleep(1)  # past start-up: the server's signal handlers are in place
        tree = _descendants(proc.pid)
        os.kill(proc.pid, sig)
        proc.wait(15)
        deadline = time.monotonic() + 5
        while (_listening(port) or any(map(_alive, tree))) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening(port), f"port {port} still listening after {sig.name} to curate browse"
        assert not [p for p in tree if _alive(p)], "a child process outlived curate browse"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this test started, if anything is left
        except ProcessLookupError:
            pass
        proc.wait(5)
