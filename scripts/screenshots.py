"""Screenshots of the browser's pages for the README: `python scripts/screenshots.py RUN_DIR [OUT_DIR]`.

Starts the Streamlit app on a free local port, opens each page in Debian's headless Chromium through
Playwright, and saves PNGs (default docs/screenshots/).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PAGES = {"map": ".js-plotly-plot", "browse": "text=matching records", "overview": "text=Funnel",
         "duplicates": "text=groups"}


def main(run_dir: str, out_dir: str = str(ROOT / "docs" / "screenshots")) -> None:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--", run_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for name, selector in PAGES.items():
                page.goto(f"{url}/?page={name}")
                page.wait_for_selector(selector, timeout=60_000)
                page.wait_for_timeout(2500)
                page.screenshot(path=str(out / f"{name}.png"))
                print(f"wrote {out / f'{name}.png'}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main(*sys.argv[1:])
