"""Hand-built run directories for the browser tests: a few hundred records with every artifact.

Layout mirrors what the runner writes (see curate/rundir.py): three steps with kept.parquet and
done.json, a ledger, groups.parquet from a dedup step, a tiny 3-d FAISS index over hand-made
vectors (one direction per cluster, so a query's nearest records are known), and map.parquet.
Three hostile records sit among them: a <script> tag, javascript: links and a 5 MB string.
``build_run(root, network=True)`` also plants records whose text, subset, source, language or id would
make the browser fetch from :data:`EVIL` if any of it reached the page as Markdown.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate.schema import make_batch

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
    run = root / "runs" / "fixture" / "20260101-000000"
    for d in ("01_filter_length", "02_dedup_exact", "03_embed", "04_map", "ledger", "quarantine"):
        (run / d).mkdir(parents=True, exist_ok=True)
    df = _records(network)
    idx = pl.Series(range(df.height))
    # filter_length removes r0000..r0009 (too_short); dedup_exact removes r0010..r0029, each a duplicate of
    # the record 30 places later (r0040..r0059), so groups are {survivor r0040+k: member r0010+k}.
    too_short = idx < 10
    dup = (idx >= 10) & (idx < 30)
    extra = pl.DataFrame({"step": [None], "reason": [None], "duplicate_of": [None], "similarity": [None]},
                         schema={"step": pl.Utf8, "reason": pl.Utf8, "duplicate_of": pl.Utf8, "similarity": pl.Float64})
    led1 = df.filter(too_short).with_columns(step=pl.lit("filter_length"), reason=pl.lit("too_short"),
                                             duplicate_of=pl.lit(None, pl.Utf8), similarity=pl.lit(None, pl.Float64))
    d = df.filter(dup)
    led2 = d.with_columns(
        step=pl.lit("dedup_exact"), reason=pl.lit("exact_dup"),
        duplicate_of=pl.Series([rid(i + 30) for i in range(10, 30)]), similarity=pl.lit(1.0),
    )
    assert extra.width == 4
    led1.write_parquet(run / "ledger" / "01_filter_length.parquet")
    led2.write_parquet(run / "ledger" / "02_dedup_exact.parquet")
    kept1 = df.filter(~too_short)
    kept1.write_parquet(run / "01_filter_length" / "kept.parquet")
    kept = df.filter(~too_short & ~dup)
    for step in ("02_dedup_exact", "03_embed", "04_map"):
        kept.write_parquet(run / step / "kept.parquet")
    for step in ("01_filter_length", "02_dedup_exact", "03_embed", "04_map"):
        (run / step / "done.json").write_text("{}")
    kept_ids = kept["id"].to_list()
    cluster = np.array([int(i[1:]) % 3 if i.startswith("r") else 0 for i in kept_ids], dtype=np.int32)
    if artifacts:
        pl.DataFrame({
            "group_id": list(range(20)),
            "survivor": [rid(i + 30) for i in range(10, 30)],
            "member": [rid(i) for i in range(10, 30)],
            "similarity": [1.0] * 20,
            "step": ["dedup_exact"] * 20,
        }).write_parquet(run / "02_dedup_exact" / "groups.parquet")
        rng = np.random.default_rng(0)
        vec = AXES[cluster] + rng.normal(0, 0.05, (len(kept_ids), 3)).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        import faiss

        index = faiss.IndexFlatIP(3)
        index.add(vec.astype(np.float32))
        faiss.write_index(index, str(run / "03_embed" / "index.faiss"))
        np.save(run / "03_embed" / "embeddings.npy", vec.astype(np.float32))
        pl.DataFrame({"id": kept_ids}).write_parquet(run / "03_embed" / "index_ids.parquet")
        pl.DataFrame({"id": kept_ids}).write_parquet(run / "03_embed" / "embedding_ids.parquet")
        (run / "03_embed" / "embedding.json").write_text(json.dumps({"model": "fake-3d", "dim": 3, "text": "first_user"}))
        centers = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 8.0]])
        xy = centers[cluster] + rng.normal(0, 0.5, (len(kept_ids), 2))
        pl.DataFrame({
            "id": kept_ids, "x": xy[:, 0], "y": xy[:, 1], "cluster": cluster,
            "topic": [TOPICS[c] for c in cluster],
        }).write_parquet(run / "04_map" / "map.parquet")
    report = {
        "name": "fixture",
        "steps": [
            {"step_id": "filter_length", "kind": "filter", "n_in": df.height, "n_out": kept1.height, "n_added": 0,
             "rejected": {"too_short": 10}, "quarantined": {}, "seconds": 0.1, "extra": {}},
            {"step_id": "dedup_exact", "kind": "dedup", "n_in": kept1.height, "n_out": kept.height, "n_added": 0,
             "rejected": {"exact_dup": 20}, "quarantined": {}, "seconds": 0.1, "extra": {}},
        ],
        "sources": {s: {"format": "alpaca", "files": 1, "read": 101, "ingested": 101, "quarantined": 0,
                        "kept": 90} for s in SOURCES},
        "totals": {"read": df.height, "kept": kept.height},
        "diversity": {s: {"clusters": 3, "mean_knn_dist": 0.2} for s in SOURCES},
    }
    (run / "report.json").write_text(json.dumps(report))
    (run / "spec.yaml").write_text("name: fixture\nseed: 0\nsources: []\nsteps:\n  - use: label.apply\n")
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
