"""Run directories for the browser tests.

``demo_runs`` (session): the demo corpus through the real runner and the GPT4All recipe, twice, the
second time after two drop labels (a label replay). Every file of these runs, report.json included,
is written by the runner and its steps; tests take their expected figures from those files.

``build_run``: a hand-assembled run of a few hundred records for rendering, paging, search and safety
tests, at paths named by :class:`curate.layout.RunLayout`. Its records are batches of the conversation
schema; its ledger, done.json files and report.json are written by the runner's own writers
(``ledger_frame``, ``StepCache``, ``build_report``/``write_report``) and its dedup groups by the dedup
steps' ``resolve_groups``/``write_groups`` (diversity figures are tested on ``demo_runs``). A tiny 3-d FAISS index over hand-made vectors (one direction per
cluster, so a query's nearest records are known) and a map with known clusters sit beside them.
Three hostile records sit among them: a <script> tag, javascript: links and a 5 MB string.
``build_run(root, network=True)`` also plants records whose text, subset, source, language or id would
make the browser fetch from :data:`EVIL` if any of it reached the page as Markdown.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate import layout as L
from curate.layout import RunLayout
from curate.schema import make_batch
from curate.steps.base import StepContext, StepReport

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
N = 300
SOURCES = ("alpaca", "oig", "sharegpt")
TOPICS = ("cooking pasta", "python code", "french capital")
# Cluster c's records point along axis c: a query embedded to axis c finds cluster c first.
AXES = np.eye(3, dtype=np.float32)
HUGE_CHARS = 5_000_000
HOSTILE = {
    "script": "Look: <script>document.title='pwned'</script><img src=x onerror=alert(1)> done",
    "js_link": "Click [here](javascript:alert(document.cookie)) or <a href=\"javascript:alert(1)\">this</a>",
    "huge": "A" * HUGE_CHARS,
}


EVIL = "http://evil.invalid"
# Assistant turns of r0030, r0031, ...: each would load a remote image (or link out) if rendered as Markdown.
NETWORK = {
    "fence_info_backtick": f"```a`b\n![fence]({EVIL}/fence-info.png)\n",
    "fence_in_list": f"- step one\n\n  ```\n  code\n\n![list]({EVIL}/fence-list.png)\n",
    "inline_code_across_paragraphs": f"`a\n\n![span]({EVIL}/span.png)\n\n`",
    "raw_html": f"<img src={EVIL}/html.png> and <img src='{EVIL}/html2.png'/>",
    "reference_image": f"![ref][r]\n\n[r]: {EVIL}/ref.png",
    "reference_in_list": f"- [r2]: {EVIL}/list-ref.png\n\n![ref2][r2] [link][r2]",
    "autolinks": f"<{EVIL}/autolink.png> {EVIL}/literal.png www.evil.invalid/w.png x@evil.invalid",
    "tilde_fence": f"~~~py`x\ncode\n~~~\n![tilde]({EVIL}/tilde.png)",
}
NETWORK_FIELDS = {  # index column -> (record number, value)
    "subset": (30, f"![subset]({EVIL}/subset.png)"),
    "source": (31, f"![source]({EVIL}/source.png)"),
    "lang": (32, f"<img src={EVIL}/lang.png>"),
}
NETWORK_ID = f"net`![id]({EVIL}/id.png)`"  # an extra record whose id would be an image outside a code span


def rid(i: int) -> str:
    return f"r{i:04d}"


def _records(network: bool = False) -> pl.DataFrame:
    rows = []
    for i in range(N):
        c = i % 3
        user = f"Question {i} about {TOPICS[c]}?"
        assistant = f"Answer {i}: here is some text about {TOPICS[c]}.\n\n```python\nprint({i})\n```"
        rows.append(
            {"id": rid(i), "source": SOURCES[i % len(SOURCES)], "subset": f"part{i % 2}",
             "turns": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
             "meta": None, "provenance": {"file": "fixture.jsonl", "record": i}}
        )
    for j, (name, text) in enumerate(HOSTILE.items()):
        i = N + j
        rows.append(
            {"id": f"hostile_{name}", "source": "alpaca", "subset": "part0",
             "turns": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}],
             "meta": None, "provenance": {"file": "fixture.jsonl", "record": i}}
        )
    if network:
        for j, text in enumerate(NETWORK.values()):
            rows[30 + j]["turns"][1]["content"] = text
        for col, (i, value) in NETWORK_FIELDS.items():
            if col in ("subset", "source"):
                rows[i][col] = value
        rows.append(
            {"id": NETWORK_ID, "source": "alpaca", "subset": "part0",
             "turns": [{"role": "user", "content": f"see {EVIL}"}, {"role": f"![role]({EVIL}/role.png)",
                                                                  "content": "ok"}],
             "meta": None, "provenance": {"file": "fixture.jsonl", "record": len(rows)}}
        )
    df = make_batch(rows)
    chars = df.select(
        pl.col("turns").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    ).to_series()
    lang = ["en" if i % 4 else "fr" for i in range(df.height)]
    if network:
        i, value = NETWORK_FIELDS["lang"]
        lang[i] = value
    return df.with_columns(chars.alias("filter_length.chars"), pl.Series("filter_language.lang", lang))


def build_run(root: Path, *, artifacts: bool = True, network: bool = False) -> Path:
    """Write runs/<name>/<ts> under ``root``; ``artifacts=False`` leaves out map, groups and the index;
    ``network=True`` plants the :data:`NETWORK` payloads."""
    from curate.pipeline.batches import ledger_frame
    from curate.pipeline.cache import StepCache

    lay = RunLayout(root / "runs" / "fixture" / "20260101-000000")
    run = lay.root
    steps = {1: "filter_length", 2: "dedup_exact", 3: "embed", 4: "map"}
    lay.ledger_dir.mkdir(parents=True, exist_ok=True)
    lay.quarantine_dir.mkdir(parents=True, exist_ok=True)
    for i, sid in steps.items():
        lay.step(i, sid).path.mkdir(parents=True, exist_ok=True)
    lay.ingest.path.mkdir(parents=True, exist_ok=True)
    cache = StepCache(lay)
    df = _records(network)
    idx = pl.Series(range(df.height))
    # filter_length removes r0000..r0009 (too_short); dedup_exact removes r0010..r0029, each a duplicate of
    # the record 30 places later (r0040..r0059), so groups are {survivor r0040+k: member r0010+k}.
    too_short = idx < 10
    dup = (idx >= 10) & (idx < 30)
    d = df.filter(dup)
    ledger_frame(df.filter(too_short), steps[1], "too_short").write_parquet(lay.step(1, steps[1]).ledger)
    ledger_frame(d, steps[2], "exact_dup", duplicate_of=pl.Series([rid(i + 30) for i in range(10, 30)]),
                 similarity=pl.Series([1.0] * d.height)).write_parquet(lay.step(2, steps[2]).ledger)
    df.write_parquet(lay.ingest.kept)
    kept1 = df.filter(~too_short)
    kept1.write_parquet(lay.step(1, steps[1]).kept)
    kept = df.filter(~too_short & ~dup)
    for i in (2, 3, 4):
        kept.write_parquet(lay.step(i, steps[i]).kept)
    sources = {s: {"format": "alpaca", "files": 1, "read": int((df["source"] == s).sum()),
                   "ingested": int((df["source"] == s).sum()), "quarantined": 0, "by_reason": {}}
               for s in df["source"].unique().sort()}
    reports = [
        StepReport(step_id=L.INGEST_ID, kind="read", n_in=df.height, n_out=df.height),
        StepReport(step_id=steps[1], kind="filter", n_in=df.height, n_out=kept1.height,
                   rejected=Counter({"too_short": 10})),
        StepReport(step_id=steps[2], kind="dedup", n_in=kept1.height, n_out=kept.height,
                   rejected=Counter({"exact_dup": 20})),
        StepReport(step_id=steps[3], kind="embed", n_in=kept.height, n_out=kept.height),
        StepReport(step_id=steps[4], kind="score", n_in=kept.height, n_out=kept.height),
    ]
    for folder, rep in zip([lay.ingest, *(lay.step(i, sid) for i, sid in steps.items())], reports):
        cache.finish(folder, f"fixture-{folder.name}", rep)
    kept_ids = kept["id"].to_list()
    cluster = np.array([int(i[1:]) % 3 if i.startswith("r") else 0 for i in kept_ids], dtype=np.int32)
    if artifacts:
        from curate.steps.dedup.keep import resolve_groups, write_groups

        # the dedup steps' own writer: survivors r0040.. (higher key) and members r0010.., one group each
        pairs = pl.DataFrame({"id": [rid(i + 30) for i in range(10, 30)] + [rid(i) for i in range(10, 30)],
                              "_key": [1.0] * 20 + [0.0] * 20}).with_row_index("_row").with_columns(
            pl.col("_row").cast(pl.Int64))
        ctx = StepContext(run_dir=run, work_dir=lay.step(2, steps[2]).path)
        _, groups = resolve_groups(pairs, np.tile(np.arange(20), 2), lambda a, b: np.ones(len(a)),
                                   reason="exact_dup", ctx=ctx, step_id=steps[2])
        write_groups(groups, ctx)
        rng = np.random.default_rng(0)
        vec = AXES[cluster] + rng.normal(0, 0.05, (len(kept_ids), 3)).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        import faiss

        embed = lay.step(3, steps[3])
        index = faiss.IndexFlatIP(3)
        index.add(vec.astype(np.float32))
        faiss.write_index(index, str(embed.file(L.INDEX)))
        np.save(embed.file(L.EMBEDDINGS), vec.astype(np.float32))
        pl.DataFrame({"id": kept_ids}).write_parquet(embed.file(L.INDEX_IDS))
        pl.DataFrame({"id": kept_ids}).write_parquet(embed.file(L.EMBEDDING_IDS))
        embed.file(L.EMBEDDING_INFO).write_text(json.dumps({"model": "fake-3d", "dim": 3, "text": "first_user"}))
        centers = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 8.0]])
        xy = centers[cluster] + rng.normal(0, 0.5, (len(kept_ids), 2))
        pl.DataFrame({
            "id": kept_ids, "x": xy[:, 0], "y": xy[:, 1], "cluster": cluster,
            "topic": [TOPICS[c] for c in cluster], "source": kept["source"],
        }).cast(dict(L.MAP.schema or {})).write_parquet(lay.step(4, steps[4]).file(L.MAP))
    from curate.pipeline.report import build_report, write_report

    head = {"name": "fixture", "run_dir": str(run), "recipe_hash": "fixture", "started": "2026-01-01T00:00:00",
            "seconds": 0.1, "dry_run": False, "limit": None}
    write_report(lay, build_report(lay, lay.step(4, steps[4]), reports=reports, source_stats=sources, head=head))
    lay.spec.write_text("name: fixture\nseed: 0\nsources: []\nsteps:\n  - use: label.apply\n")
    return run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared, read-only run dir (tests that label use their own labels file via ``labels_path``)."""
    return build_run(tmp_path_factory.mktemp("browse"))


@pytest.fixture(scope="session")
def bare_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("bare"), artifacts=False)


@pytest.fixture
def labels_path(tmp_path: Path) -> Path:
    return tmp_path / "labels.sqlite"


class AxisEmbedder:
    """Embeds a query to the axis of the topic it names (fake model for the Search page)."""

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for t in texts:
            hits = [c for c, topic in enumerate(TOPICS) if topic.split()[0] in t.lower()]
            if not hits:
                raise KeyError(t)
            out.append(AXES[hits[0]])
        return np.stack(out).astype(np.float32)


@pytest.fixture
def app(run_dir: Path, labels_path: Path):
    """An AppTest of app.py on the fixture run; call ``app(page="map")`` to open a page."""
    from streamlit.testing.v1 import AppTest

    def make(page: str = "overview", run: Path | None = None, **state: object) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=30)
        at.session_state["curate.run_dir"] = str(run or run_dir)
        at.session_state["curate.labels_path"] = str(labels_path)
        for k, v in state.items():
            at.session_state[k] = v
        at.query_params["page"] = page
        return at.run()

    return make


def markdown_hazards(md: str) -> list[str]:
    """What a CommonMark parser (with GFM tables) makes of ``md`` that could reach outside: images,
    links, autolinks and raw HTML, as ``type: detail`` strings. Streamlit dedents and strips a body first."""
    import textwrap

    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    out: list[str] = []

    def walk(tokens: list) -> None:
        for t in tokens:
            if t.type in ("image", "link_open", "html_inline", "html_block"):
                out.append(f"{t.type}: {t.attrs or t.content}")
            if t.children:
                walk(t.children)

    walk(parser.parse(textwrap.dedent(md).strip()))
    return out


@pytest.fixture(scope="session")
def net_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose records carry the :data:`NETWORK` payloads."""
    return build_run(tmp_path_factory.mktemp("net"), network=True)


# ---------------------------------------------------------------------------- the demo run, twice

PIPELINES = ROOT / "pipelines"
DEMO_RECORDS = 600
DEMO_SEED = 5
# Appended to the demo's OIG file: prose with dunder names and one statement per line, which Markdown
# would turn into bold "init" and one run-on paragraph.
INIT_PROMPT = "In Python, what does __init__ do in a class?"
INIT_ANSWER = "__init__ runs when an object is created.\nIt sets the first attributes: self.name = name.\nIt returns None."
# More, smaller clusters than the recipe's 30 on a demo of this size (the recipe is otherwise as shipped).
DEMO_SETS = ["steps.score_map.params.min_cluster_size=10"]


@dataclass(frozen=True)
class DemoRuns:
    first: Path  # runs/gpt4all/t1: the recipe on the demo corpus
    second: Path  # runs/gpt4all/t2: the same recipe after two drop labels (label.apply replays them)
    dropped: tuple[str, str]
    labels: Path


def demo_plan(raw: Path, export: Path):
    """pipelines/gpt4all.yaml on the demo files, without the hub export, with :data:`DEMO_SETS`."""
    import yaml

    from curate import demo
    from curate.pipeline.spec import apply_overrides, build_plan

    recipe = PIPELINES / "gpt4all.yaml"
    raw_spec = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    raw_spec["steps"] = [st for st in raw_spec["steps"] if st["use"] != "write.hub_dataset"]
    sets = demo.recipe_overrides("gpt4all", raw, export)[:-1] + DEMO_SETS
    return build_plan(apply_overrides(raw_spec, sets), origin=str(recipe))


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> DemoRuns:
    """The demo corpus (:data:`DEMO_RECORDS`) through the GPT4All recipe with the real runner, the real
    MiniLM model and UMAP; then two kept, mapped records labelled drop and the recipe run again."""
    import os

    from curate import demo
    from curate.labels import LabelStore
    from curate.pipeline.runner import run_pipeline

    root = tmp_path_factory.mktemp("demo")
    raw = root / "raw"
    demo.generate(raw, DEMO_RECORDS, DEMO_SEED)
    line = {"text": f"<human>: {INIT_PROMPT}\n<bot>: {INIT_ANSWER}", "metadata": {"source": "browse-test"}}
    with (raw / demo.OIG_FILE).open("ab") as fh:
        fh.write(json.dumps(line).encode() + b"\n")
    plan = demo_plan(raw, root / "export")
    recipe = root / "runs" / "gpt4all"
    old = os.environ.get("CURATE_CACHE_DIR")
    os.environ["CURATE_CACHE_DIR"] = str(root / "cache")
    try:
        first = recipe / "t1"
        run_pipeline(plan, run_dir=first, progress=False, log=lambda m: None)
        mapped = pl.read_parquet(RunLayout(first).find(L.MAP) or first, columns=["id", "cluster"])
        # two records of the largest cluster, so it keeps members and its id
        big = mapped.filter(pl.col("cluster") >= 0).group_by("cluster").len().sort("len", descending=True)
        pick = mapped.filter(pl.col("cluster") == big["cluster"][0]).sort("id")["id"].head(2).to_list()
        labels = RunLayout(first).recipe.labels
        LabelStore(labels).add(pick, "drop", annotator="browse-test", note="label replay")
        second = recipe / "t2"
        run_pipeline(plan, run_dir=second, progress=False, log=lambda m: None)
    finally:
        if old is None:
            os.environ.pop("CURATE_CACHE_DIR", None)
        else:
            os.environ["CURATE_CACHE_DIR"] = old
    return DemoRuns(first=first, second=second, dropped=(pick[0], pick[1]), labels=labels)
