"""Rewrite the browser screenshots of docs/ and the README from a run, in headless Chromium.

    .venv/bin/python docs/screenshots/take.py runs/demo/gpt4all/latest     # after `make demo`

Starts ``curate browse RUN`` with a throwaway labels file (the run's labels are not touched), opens the
pages as a person would and saves overview.png, map.png, map-status.png, browse.png and duplicates.png
here. Needs Debian's /usr/bin/chromium and Playwright (never Playwright's own browser download).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(run: str) -> None:
    from playwright.sync_api import sync_playwright

    port = _port()
    labels = Path(tempfile.mkdtemp()) / "labels.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    proc = subprocess.Popen([sys.executable, "-m", "curate.cli", "browse", run, "--port", str(port), "--labels",
                             str(labels)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})

            def shot(name: str) -> None:
                page.wait_for_timeout(1000)  # let a rerun start before waiting for its end
                page.wait_for_selector("[data-test-script-state=notRunning]", timeout=300_000)
                page.wait_for_timeout(2500)  # plotly and the data grids draw after the script ends
                page.screenshot(path=str(HERE / name), full_page=False)
                print(HERE / name)

            page.goto(url + "/?page=overview&annotator=demo")
            page.wait_for_selector("[data-testid='stTable'] table", timeout=120_000)
            page.get_by_text("Diversity per source").evaluate("e => e.scrollIntoView({block: 'start'})")
            shot("overview.png")

            page.goto(url + "/?page=map&annotator=demo")
            page.wait_for_selector(".js-plotly-plot .scatterlayer, .js-plotly-plot canvas", timeout=120_000)
            shot("map.png")
            page.get_by_label("Colour by").click()
            page.get_by_role("option", name="status").click()
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            shot("map-status.png")

            page.goto(url + "/?page=browse&annotator=demo")
            page.get_by_text("matching records").wait_for(timeout=120_000)
            box = page.get_by_label("Text contains")
            box.fill("__init__")
            box.press("Enter")
            page.get_by_text("matching records").wait_for(timeout=60_000)
            shot("browse.png")

            page.goto(url + "/?page=duplicates&annotator=demo")
            page.get_by_text("removed members").wait_for(timeout=120_000)
            shot("duplicates.png")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo/gpt4all/latest")
