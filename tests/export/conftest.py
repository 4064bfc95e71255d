"""A small finished run directory, written through curate.layout by the runner's own writers (StepCache for
done.json, ledger_frame for the ledger, build_report/write_report for report.json)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from curate import layout as L
from curate.layout import RunLayout, StepFolder
from curate.pipeline.batches import ledger_frame
from curate.pipeline.cache import StepCache
from curate.pipeline.report import build_report, write_report
from curate.rundir import write_text_atomic
from curate.schema import make_batch, record_id
from curate.steps.base import StepReport

SPEC: dict[str, Any] = {
    "name": "mini-export",
    "seed": 7,
    "description": "A hand-built run for the export tests.",
    "sources": [
        {"id": "gpt4all", "format": "gpt4all", "path": "data/raw/gpt4all.jsonl", "params": {}},
        {"id": "vicuna", "format": "sharegpt", "path": "data/raw/sharegpt.json", "params": {"preference": "chosen"}},
        {"id": "dolly", "format": "dolly", "path": "data/raw/dolly.jsonl", "params": {}},
    ],
    "steps": [
        {"use": "filter.length", "id": "filter_length", "params": {"min_chars": 20, "max_chars": 16000}},
        {"use": "filter.language", "id": "filter_language", "params": {"languages": ["en", "de"]}},
    ],
    "limits": {"max_quarantine_frac": 0.01},
}


def conv(source: str, i: int, turns: list[tuple[str, str]], subset: str | None = None) -> dict[str, Any]:
    return {
        "id": record_id(source, f"data/raw/{source}", i),
        "source": source,
        "subset": subset,
        "turns": [{"role": r, "content": c} for r, c in turns],
        "meta": {"n": i},
        "provenance": {"file": f"data/raw/{source}", "record": i},
    }


def ingested() -> list[dict[str, Any]]:
    rows = [
        conv("gpt4all", i, [("user", f"Question number {i}: how do I sort a list?"), ("assistant", f"Use sorted() - {i}.")])
        for i in range(8)
    ]
    rows.append(conv("gpt4all", 8, [("user", "hi"), ("assistant", "yo")]))  # too short
    rows += [
        conv("vicuna", 0, [("system", "You are terse."), ("user", "Name a prime number please."),
                           ("assistant", "Seven."), ("user", "And an even one?"), ("assistant", "Two.")], "sharegpt_90k"),
        conv("vicuna", 1, [("user", "What is the weather in Paris today?"), ("assistant", "get_weather(city='Paris')"),
                           ("tool", '{"temp_c": 21}'), ("assistant", "It is 21 degrees.")], "sharegpt_90k"),
        conv("vicuna", 2, [("user", "Tell me a story about a dragon."), ("assistant", "Once upon a time..."),
                           ("user", "Go on, make it longer.")], "sharegpt_90k"),
        conv("vicuna", 3, [("user", "Wie spät ist es in Berlin jetzt gerade?"), ("assistant", "Es ist zwölf Uhr mittags.")]),
        conv("vicuna", 4, [("user", "ok"), ("assistant", "k")]),  # too short
    ]
    rows += [
        conv("dolly", i, [("system", "Answer from the context."), ("user", f"Context {i}: the sky is blue. Why?"),
                          ("assistant", "Rayleigh scattering of sunlight.")], "open_qa")
        for i in range(4)
    ]
    rows.append(conv("dolly", 4, [("user", "Combien de pattes a une araignée ?"), ("assistant", "Huit pattes.")], "open_qa"))
    return rows


def _finish(run: RunLayout, folder: StepFolder, kept: pl.DataFrame, rep: StepReport, ledger: pl.DataFrame | None,
            cache: StepCache) -> None:
    """Write one step's outputs with the runner's own writers: kept rows, ledger, done.json."""
    folder.path.mkdir(parents=True)
    kept.write_parquet(folder.kept)
    if ledger is not None and len(ledger):
        ledger.write_parquet(folder.ledger)
    rep.n_out = kept.height
    cache.finish(folder, f"fixture-{folder.name}", rep)


def build_run(root: Path) -> Path:
    """A finished run written by the runner's writers: ingest (20 read, 1 quarantined) -> filter_length ->
    filter_language, with report.json built by curate.pipeline.report from the files."""
    run = RunLayout(root / "runs" / "mini-export" / "20260101-000000")
    run.ledger_dir.mkdir(parents=True)
    run.quarantine_dir.mkdir()
    write_text_atomic(run.spec, yaml.safe_dump(SPEC, sort_keys=False))
    cache = StepCache(run)
    base = make_batch(ingested())
    sources = {
        "gpt4all": {"format": "gpt4all", "files": 1, "read": 9, "ingested": 9, "quarantined": 0, "by_reason": {}},
        "vicuna": {"format": "sharegpt", "files": 1, "read": 5, "ingested": 5, "quarantined": 0, "by_reason": {}},
        "dolly": {"format": "dolly", "files": 1, "read": 6, "ingested": 5, "quarantined": 1,
                  "by_reason": {"json_decode": 1}},
    }
    run.ingest.path.mkdir()
    write_text_atomic(run.ingest.file(L.SOURCE_STATS), json.dumps(sources))
    with run.ingest.quarantine.open("w") as fh:
        fh.write(json.dumps({"step": L.INGEST_ID, "source": "dolly", "file": "data/raw/dolly", "record": 6,
                             "reason": "json_decode", "error": "json_decode: bad line", "raw": "{", "line": 6}) + "\n")
    ingest = StepReport(step_id=L.INGEST_ID, kind="read", n_in=20, quarantined=Counter({"json_decode": 1}))
    cache.finish(run.ingest, "fixture-ingest", ingest)
    base.write_parquet(run.ingest.kept)
    ingest.n_out = base.height
    cache.finish(run.ingest, "fixture-ingest", ingest)

    chars = pl.col("turns").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    measured = base.with_columns(chars.cast(pl.Int64).alias("filter_length.chars"))
    short = measured["filter_length.chars"] < 20
    kept1 = measured.filter(~short)
    removed1 = measured.filter(short)
    rep1 = StepReport(step_id="filter_length", kind="filter", n_in=base.height, seconds=0.01,
                      rejected=Counter({"too_short": removed1.height}))
    _finish(run, run.step(1, "filter_length"), kept1, rep1, ledger_frame(removed1, "filter_length", "too_short"), cache)

    lang = {"de": "Berlin", "fr": "araignée"}
    text = pl.col("turns").list.eval(pl.element().struct.field("content")).list.join(" ")
    kept2 = kept1.with_columns(
        pl.when(text.str.contains(lang["de"])).then(pl.lit("de"))
        .when(text.str.contains(lang["fr"])).then(pl.lit("fr"))
        .otherwise(pl.lit("en")).alias("filter_language.lang"),
        pl.lit(0.98).alias("filter_language.score"),
    )
    wrong = kept2["filter_language.lang"] == "fr"
    rep2 = StepReport(step_id="filter_language", kind="filter", n_in=kept1.height, seconds=0.02,
                      rejected=Counter({"wrong_language": int(wrong.sum())}))
    folder2 = run.step(2, "filter_language")
    _finish(run, folder2, kept2.filter(~wrong), rep2,
            ledger_frame(kept2.filter(wrong), "filter_language", "wrong_language"), cache)
    # figures as a diversity step would leave them, so the card shows a diversity table
    folder2.file(L.DIVERSITY).write_text(json.dumps({"clusters": 4, "mean_knn_dist": 0.4123}))

    head = {"name": SPEC["name"], "run_dir": str(run.root), "recipe_hash": "fixture", "started": "2026-01-01T00:00:00",
            "seconds": 0.1, "dry_run": False, "limit": None}
    write_report(run, build_report(run, folder2, reports=[ingest, rep1, rep2], source_stats=sources, head=head))
    return run.root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return build_run(tmp_path)


@pytest.fixture
def offline_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """datasets with no network and a cache inside tmp_path."""
    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    return cache
