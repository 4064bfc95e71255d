"""The real app in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Starts ``curate browse RUN_DIR`` (with the settings it passes Streamlit) on a free port. On a run whose
records carry remote-image payloads (conftest.NETWORK): opens the Map and Browse pages, clicks a label
button and presses a labelling hotkey, and checks that both labels reached SQLite and that the page
never requested anything outside 127.0.0.1. On the demo run after a label replay (conftest.demo_runs):
reads the Overview, Duplicates, Map, Label and Browse pages and checks them against the run's files.
The README's screenshots come from docs/screenshots/take.py, on the real demo run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from curate.labels import LabelStore

from .conftest import EVIL, ROOT, build_run, rid

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (`make chromium` installs it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_labels(store: LabelStore, want: dict[str, str], timeout: float = 15.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        eff = dict(store.effective().select("record_id", "label").iter_rows())
        if all(eff.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return eff
        time.sleep(0.2)


def _retry(action, store: LabelStore, want: dict[str, str], tries: int = 4) -> dict[str, str]:
    eff: dict[str, str] = {}
    for _ in range(tries):
        action()
        eff = _wait_labels(store, want, timeout=6.0)
        if all(eff.get(k) == v for k, v in want.items()):
            break
    return eff


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost")


@contextlib.contextmanager
def serve(run: Path, labels: Path) -> Iterator[str]:
    """``curate browse RUN`` on a free port, as a person starts it; yields the URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "browse", str(run), "--port", str(port), "--labels", str(labels)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"streamlit did not start: {out[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def server(tmp_path: Path):
    run = build_run(tmp_path, network=True)
    labels = tmp_path / "labels.sqlite"
    with serve(run, labels) as url:
        yield url, LabelStore(labels)


def test_map_and_browse_in_chromium(server, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    url, store = server
    shots = [tmp_path / "map.png", tmp_path / "browse.png"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
        outside: list[str] = []  # every request the page made that leaves this machine
        page.on("request", lambda r: None if _local(r.url) else outside.append(r.url))

        page.goto(url + "/?page=overview")  # a Vega-Lite chart and data frames
        page.wait_for_selector("[data-testid='stVegaLiteChart'] canvas, .vega-embed", timeout=30_000)

        page.goto(url + "/?page=map")
        page.wait_for_selector(".js-plotly-plot .scatterlayer, .js-plotly-plot canvas", timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots[0]), full_page=False)
        assert page.locator(".js-plotly-plot").count() == 1
        assert "cooking pasta" in page.locator(".js-plotly-plot").inner_text()  # cluster topic labels

        page.goto(url + "/?page=browse")
        page.get_by_text("matching records").wait_for(timeout=30_000)
        keep = page.get_by_role("button", name="Keep", exact=True).first
        # a click that lands while Streamlit re-renders the page is lost: retry (labels are idempotent)
        assert _retry(keep.click, store, {rid(30): "keep"}).get(rid(30)) == "keep"  # the first record on page 1
        page.locator("strong", has_text="keep").first.wait_for(timeout=15_000)
        page.screenshot(path=str(shots[1]), full_page=False)

        page.goto(url + "/?page=label")
        page.get_by_role("button", name="Drop (d)").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.locator("h2").first.click()  # focus the page, not a text field
        page.keyboard.press("n")
        page.get_by_text("record 2 of").wait_for(timeout=15_000)
        assert _retry(lambda: page.keyboard.press("d"), store, {rid(31): "drop"}).get(rid(31)) == "drop"
        assert page.evaluate("document.title") != "pwned"

        # every record with a payload on one page: subset, source, language, id, role and turn text
        page.goto(url + "/?page=browse")
        page.get_by_text("matching records").wait_for(timeout=30_000)
        box = page.get_by_label("Text contains")
        box.fill("evil.invalid")
        box.press("Enter")
        page.get_by_text("9 matching records").wait_for(timeout=30_000)
        page.get_by_role("button", name="More like this").nth(8).wait_for(timeout=30_000)  # all 9 drawn
        page.wait_for_timeout(1500)  # let any image or font request go out
        assert not outside, outside  # since the first page load: overview, map, browse, label (hotkey iframe)
        page.get_by_text(f"![subset]({EVIL}/subset.png)", exact=False).first.wait_for(timeout=15_000)  # as text
        host = urlsplit(EVIL).hostname
        assert page.locator(f"img[src*='{host}'], [srcset*='{host}'], [style*='{host}']").count() == 0
        # GFM turns a bare URL into a link (Streamlit applies it after escapes are resolved): it may only
        # ever show its own target, never disguise it, and it loads nothing unless clicked
        links = page.locator(f"a[href*='{host}']").evaluate_all("els => els.map(e => [e.href, e.innerText])")
        assert all(text.strip() and text.strip() in href for href, text in links), links
        assert not errors, errors
        browser.close()
    for shot in shots:
        assert shot.stat().st_size > 10_000


# -- the demo run, after a label replay: what the pages show against the run's own files ------------------


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def _plot_points(page) -> list[dict]:
    """Name, x and y of every scatter trace of the page's plotly figure (as plotly holds them)."""
    return page.evaluate("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        return gd._fullData.filter(t => t.type === 'scattergl').map(t => (
            {name: t.name, x: Array.from(t.x), y: Array.from(t.y)}));
    }""")


def test_demo_run_pages_tell_the_truth_in_chromium(demo_runs, tmp_path: Path):
    """Duplicates counts, Overview diversity figures, Map positions and cluster numbers after a label
    replay, clear-selection and record text as written, read from the page and checked against the files."""
    import json
    import re

    import numpy as np
    import polars as pl
    from playwright.sync_api import sync_playwright

    from curate import layout as L
    from curate.layout import RunLayout

    from .conftest import INIT_ANSWER

    run = RunLayout(demo_runs.second)
    report = json.loads(run.report.read_text())
    groups = pl.concat([pl.read_parquet(f) for f in run.find_all(L.GROUPS)])
    removed = {f"{s}:{g}": int(n) for s, g, n in groups.group_by("step", "group_id").agg(
        pl.col("removed").sum()).iter_rows()}
    first_map = pl.read_parquet(RunLayout(demo_runs.first).find(L.MAP))
    second_map = pl.read_parquet(run.find(L.MAP))
    with serve(run.root, tmp_path / "labels.sqlite") as url, sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # Overview: the diversity figures are the run's
        page.goto(url + "/?page=overview")
        page.wait_for_selector("[data-testid='stTable'] table", timeout=60_000)
        cells = page.locator("[data-testid='stTable'] table").evaluate(
            "t => Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
        head = cells[0]
        by_metric = {row[head.index("metric")]: row for row in cells[1:]}
        for src, figures in report["diversity"]["per_source"].items():
            for metric in ("count", "vendi", "short_response_share", "unique_response_share", "near_dup_rate"):
                want = f"{figures[metric]:,}" if metric == "count" else f"{figures[metric]:.3g}"
                assert by_metric[metric][head.index(src)] == want, (src, metric)
        assert "dropped: short_response_share" in page.inner_text("body")

        # Duplicates: every group on the page says how many its step removed
        page.goto(url + "/?page=duplicates")
        page.get_by_text("removed members").wait_for(timeout=60_000)
        deadline = time.monotonic() + 30
        while True:  # the page streams in: wait for every group of page 1
            text = page.inner_text("body")
            shown = re.findall(r"Group (\S+) · step \S+ · (\d+) removed", text)
            if len(shown) >= min(5, len(removed)) or time.monotonic() > deadline:
                break
            page.wait_for_timeout(300)
        assert f"{len(removed):,} groups, {sum(removed.values()):,} removed members" in text
        assert len(shown) == min(5, len(removed))
        assert all(removed[g] == int(n) for g, n in shown), shown
        survivors = set(groups["survivor"])
        assert not [m for m in re.findall(r"Removed (\S+) · similarity", text) if m in survivors]

        # Map: the replay kept every position and cluster number of the first run
        page.goto(url + "/?page=map")
        page.wait_for_selector(".js-plotly-plot .scatterlayer, .js-plotly-plot canvas", timeout=60_000)
        page.wait_for_timeout(1500)
        traces = _plot_points(page)
        xs = np.concatenate([np.asarray(t["x"], float) for t in traces])
        ys = np.concatenate([np.asarray(t["y"], float) for t in traces])
        cl = np.concatenate([[int(t["name"].rsplit("#", 1)[1]) if "#" in t["name"] else -1] * len(t["x"])
                             for t in traces])
        assert len(xs) == second_map.height == first_map.height - 2
        fx, fy = first_map["x"].to_numpy(), first_map["y"].to_numpy()
        nearest = np.array([np.argmin((fx - x) ** 2 + (fy - y) ** 2) for x, y in zip(xs, ys)])
        assert np.allclose(fx[nearest], xs, atol=1e-4) and np.allclose(fy[nearest], ys, atol=1e-4)
        assert (first_map["cluster"].to_numpy()[nearest] == cl).all()
        assert "kept from the previous run" in page.inner_text("body")

        # a lasso selection, then Clear selection: gone from the Map and from the Label page's set
        box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        assert box is not None
        cx, cy, w, h = box["x"], box["y"], box["width"], box["height"]
        page.mouse.move(cx + 0.05 * w, cy + 0.05 * h)
        page.mouse.down()
        for fx_, fy_ in ((0.95, 0.05), (0.95, 0.95), (0.05, 0.95), (0.05, 0.06)):
            page.mouse.move(cx + fx_ * w, cy + fy_ * h, steps=8)
        page.mouse.up()
        page.get_by_text(re.compile(r"Selected: [\d,]+ records")).wait_for(timeout=30_000)
        page.get_by_role("button", name="Clear selection").click()
        page.get_by_text(re.compile(r"Selected: [\d,]+ records")).wait_for(state="detached", timeout=30_000)
        page.wait_for_timeout(1500)  # a rerun that brought the plot's old selection back would show here
        assert page.get_by_text(re.compile(r"Selected: [\d,]+ records")).count() == 0
        page.get_by_test_id("stSidebar").get_by_text("Label", exact=True).click()
        page.get_by_text("Map selection", exact=True).click()
        page.get_by_text("0 records in this set", exact=True).wait_for(timeout=30_000)
        assert page.get_by_text("The set is empty", exact=False).count() == 1

        # record text as written: dunder names and one line per line
        page.goto(url + "/?page=browse")
        page.get_by_text("matching records").wait_for(timeout=60_000)
        box_ = page.get_by_label("Text contains")
        box_.fill("does __init__ do")
        box_.press("Enter")
        page.get_by_text("1 matching records", exact=True).wait_for(timeout=30_000)
        msg = page.locator("[data-testid='stChatMessage']", has_text="runs when an object").first
        body = msg.locator("[data-testid='stMarkdownContainer']").last
        assert body.inner_text().strip() == INIT_ANSWER
        assert body.locator("strong, em").count() == 0
        assert not errors, errors
        browser.close()
