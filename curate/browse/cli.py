"""``curate browse RUN_DIR [--port P] [--host H] [--labels PATH]``: start the Streamlit browser.

Streamlit runs in this process, through its own ``streamlit run`` entry point, so the server lives
exactly as long as ``curate browse``: SIGTERM and SIGINT stop it cleanly (Streamlit's own handlers),
and a SIGKILL cannot leave a server orphaned and still listening on the port.

The browser shows raw training data and writes labels, and it has no authentication. It listens on
127.0.0.1 unless another host is given; a host that is not a loopback address gets a warning on stderr.

Every start passes these settings as flags (flags win over config files and environment variables),
where the installed Streamlit knows them:

- no usage statistics, no static file serving, no agent API, no "deploy"/developer toolbar;
- no external help links (Google, ChatGPT) in error boxes: following one would send the error text out;
- error details (tracebacks, messages that may quote records) in the browser only on loopback;
- on loopback, the websocket accepts only ``Host: localhost``, ``127.0.0.1`` or ``::1``, so a web page
  that rebinds its own DNS name to 127.0.0.1 cannot drive the app (DNS rebinding).

Not possible: Streamlit has no setting for a Content-Security-Policy or other response headers, so
the page itself cannot forbid outside requests; record text is kept inert instead (see ``render``).
A reverse proxy in front of Streamlit can add ``Content-Security-Policy: default-src 'self'`` (with
``connect-src 'self' ws: wss:``, and ``'unsafe-inline'``/``'unsafe-eval'`` as Streamlit's frontend needs).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from curate import layout as L
from curate.labels import default_labels_path

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory (runs/<name>/<ts>, or runs/<name> with a `latest` link)")
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything else exposes the unauthenticated UI)")
    parser.add_argument("--labels", help=f"labels SQLite file (default: runs/<name>/{L.LABELS_DB})")
    parser.add_argument("--no-headless", action="store_true", help="let Streamlit open a browser window")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1, IPv4-mapped 127.x)."""
    host = host.strip().strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False  # another name: it may resolve to anything
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def exposure_warning(host: str, port: int) -> str | None:
    """The stderr warning for a host that is not loopback, else None."""
    if is_loopback(host):
        return None
    return (
        f"warning: --host {host!r} is not a loopback address. curate browse has no authentication: anyone who "
        f"can reach port {port} on this machine can read every record of the run and write labels. "
        "Use the default 127.0.0.1 (with an SSH tunnel for remote access) unless this network is trusted."
    )


def settings(host: str) -> list[tuple[str, str]]:
    """The Streamlit options every start passes, as (option, value); see the module docstring."""
    local = is_loopback(host)
    out = [
        ("browser.gatherUsageStats", "false"),
        ("server.enableStaticServing", "false"),
        ("server.enableAgentApi", "false"),
        ("server.enableCORS", "true"),
        ("server.enableXsrfProtection", "true"),
        ("client.toolbarMode", "minimal"),
        ("client.showErrorLinks", "false"),
        ("client.showErrorDetails", "full" if local else "none"),
    ]
    if local:
        hosts = dict.fromkeys([*LOOPBACK_HOSTS, host.strip().strip("[]").lower()])
        out += [("server.allowedHosts", h) for h in hosts]
    return out


def _known_options() -> dict[str, str]:
    """Option name -> click type name, for the installed Streamlit's ``streamlit run``."""
    from streamlit.web import cli as st_cli

    return {opt[2:]: p.type.name for p in st_cli.main_run.params for opt in p.opts if opt.startswith("--")}


def streamlit_args(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` arguments for these arguments (validates the run dir first)."""
    from curate.rundir import RunDir

    run = RunDir(args.run_dir).path
    labels = Path(args.labels) if args.labels else default_labels_path(run)
    app = Path(__file__).with_name("app.py")
    known = _known_options()
    flags: list[str] = []
    for name, value in settings(args.host):
        kind = known.get(name)
        if kind is None:
            continue  # an older Streamlit without this option
        if name == "client.showErrorDetails" and kind == "boolean":  # before the "full"/"none" levels
            value = "true" if value == "full" else "false"
        flags += [f"--{name}", value]
    return [
        "run", str(app),
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--server.headless", "false" if args.no_headless else "true",
        *flags,
        "--", str(run), "--labels", str(labels),
    ]


def serve(st_args: list[str]) -> int:
    """Run ``streamlit <st_args>`` in this process until the server stops; the exit status."""
    import click
    from streamlit.web import cli as st_cli

    try:
        st_cli.main.main(args=st_args, prog_name="streamlit", standalone_mode=False)
    except click.ClickException as e:
        print(f"error: streamlit: {e.format_message()}", file=sys.stderr)
        return 2
    except click.Abort:  # Ctrl-C before the server installed its own handler
        return 130
    return 0


def run(args: argparse.Namespace) -> int:
    st_args = streamlit_args(args)
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"curate browse: http://{host}:{args.port}  (labels: {st_args[-1]})", flush=True)
    return serve(st_args)
