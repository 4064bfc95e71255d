"""A small finished run directory built by hand, in the layout curate.rundir documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from curate.schema import make_batch, record_id

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


def _done(d: Path) -> None:
    (d / "done.json").write_text(json.dumps({"fingerprint": d.name}))


def build_run(root: Path) -> Path:
    """Write a finished run: ingest (17 read, 1 quarantined) -> filter_length -> filter_language."""
    run = root / "runs" / "mini-export" / "20260101-000000"
    (run / "ledger").mkdir(parents=True)
    (run / "quarantine").mkdir()
    (run / "spec.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    base = make_batch(ingested())
    d0 = run / "00_ingest"
    d0.mkdir()
    base.write_parquet(d0 / "kept.parquet")
    _done(d0)

    chars = pl.col("turns").list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()
    measured = base.with_columns(chars.cast(pl.Int64).alias("filter_length.chars"))
    short = measured["filter_length.chars"] < 20
    ledger = measured.filter(short).with_columns(
        pl.lit("filter_length").alias("step"), pl.lit("too_short").alias("reason"),
        pl.lit(None, dtype=pl.Utf8).alias("duplicate_of"), pl.lit(None, dtype=pl.Float64).alias("similarity"),
    )
    ledger.write_parquet(run / "ledger" / "01_filter_length.parquet")
    kept1 = measured.filter(~short)
    d1 = run / "01_filter_length"
    d1.mkdir()
    kept1.write_parquet(d1 / "kept.parquet")
    _done(d1)

    lang = {"de": "Berlin", "fr": "araignée"}
    text = pl.col("turns").list.eval(pl.element().struct.field("content")).list.join(" ")
    kept2 = kept1.with_columns(
        pl.when(text.str.contains(lang["de"])).then(pl.lit("de"))
        .when(text.str.contains(lang["fr"])).then(pl.lit("fr"))
        .otherwise(pl.lit("en")).alias("filter_language.lang"),
        pl.lit(0.98).alias("filter_language.score"),
    )
    wrong = kept2["filter_language.lang"] == "fr"
    kept2.filter(wrong).with_columns(
        pl.lit("filter_language").alias("step"), pl.lit("wrong_language").alias("reason"),
        pl.lit(None, dtype=pl.Utf8).alias("duplicate_of"), pl.lit(None, dtype=pl.Float64).alias("similarity"),
    ).write_parquet(run / "ledger" / "02_filter_language.parquet")
    kept2 = kept2.filter(~wrong)
    d2 = run / "02_filter_language"
    d2.mkdir()
    kept2.write_parquet(d2 / "kept.parquet")
    _done(d2)
    (run / "quarantine" / "00_ingest.jsonl").write_text(json.dumps({"source": "dolly", "error": "json_decode"}) + "\n")

    n0, n1, n2 = base.height, kept1.height, kept2.height
    per_source = dict(kept2.group_by("source").len().iter_rows())
    report = {
        "name": SPEC["name"],
        "steps": [
            {"step_id": "filter_length", "kind": "filter", "n_in": n0, "n_out": n1, "n_added": 0,
             "rejected": {"too_short": n0 - n1}, "quarantined": {}, "seconds": 0.01, "extra": {}},
            {"step_id": "filter_language", "kind": "filter", "n_in": n1, "n_out": n2, "n_added": 0,
             "rejected": {"wrong_language": n1 - n2}, "quarantined": {}, "seconds": 0.02, "extra": {}},
        ],
        "sources": {
            "gpt4all": {"format": "gpt4all", "files": 1, "read": 9, "ingested": 9, "quarantined": 0,
                        "kept": per_source["gpt4all"]},
            "vicuna": {"format": "sharegpt", "files": 1, "read": 5, "ingested": 5, "quarantined": 0,
                       "kept": per_source["vicuna"]},
            "dolly": {"format": "dolly", "files": 1, "read": 6, "ingested": 5, "quarantined": 1,
                      "kept": per_source["dolly"]},
        },
        "totals": {"read": n0 + 1, "kept": n2, "removed": n0 - n2, "quarantined": 1},
        "diversity": {"clusters": 4, "mean_knn_dist": 0.4123},
    }
    (run / "report.json").write_text(json.dumps(report, indent=2))
    return run


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
