"""Recipes and run comparisons shared by the Ray executor's tests (test_ray_executor.py, test_ray_shards.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from curate.layout import CLUSTERS, DIVERSITY, GROUPS, MAP, MAP_REMOVED, VERBS, RunLayout
from curate.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
BATCH = 64


# ------------------------------------------------------------------------------------------- data


def demo_recipe(raw: Path, out: Path, executor: dict[str, Any]) -> dict[str, Any]:
    rec = yaml.safe_load((ROOT / "pipelines" / "gpt4all.yaml").read_text())
    paths = {"oig": raw / "oig" / "unified_chip2.jsonl", "stackoverflow": raw / "stackoverflow" / "Posts.xml",
             "p3": raw / "p3" / "p3.jsonl"}
    for src in rec["sources"]:
        src["path"] = str(paths[src["id"]])
    steps = []
    for s in rec["steps"]:
        if s["use"] == "embed.sentence_transformer":
            s = {"use": "embed.hashing", "params": {"text": s["params"]["text"], "dim": 32}}
        elif s["use"] == "score.map":  # both runs fit their own map (not one the other run left beside it)
            s = {**s, "params": {**s.get("params", {}), "stable": False}}
        elif s["use"] == "write.hub_dataset":
            s = {**s, "params": {**s["params"], "path": str(out)}}
        steps.append(s)
    return {**rec, "steps": steps, "executor": executor}


def write_records(path: Path, n: int, source_tag: str = "") -> None:
    """Alpaca records with planted cases: short, refusal, messy whitespace, HTML (some too large), dups."""
    lines = []
    for i in range(n):
        q = f"{source_tag}Question {i} about topic {i % 37}: how does part {i % 11} work?"
        a = f"Part {i % 11} works by step {i}. " + "It is simple and it works well. " * (i % 5)
        k = i % 20
        if k == 1:
            q, a = "hi", "yo"
        elif k == 2:
            a = "As an AI language model, I cannot answer questions about this topic."
        elif k == 3:
            a = f"<p>Part <b>{i % 11}</b> works by <code>step {i}</code>.</p><ul><li>one</li><li>two</li></ul>"
        elif k == 4 and i % 3 == 0:
            a = "<div>" + f"<p>paragraph {i} of a page scrape</p>" * 40 + "</div>"  # quarantined
        elif k == 5:
            a = f"Part  {i % 11}\r\n\r\n\r\n\r\nworks\u200b by   step {i}.  "
        elif k == 6 and i % 7 == 0:
            q, a = "What is a duplicate?", "A record that repeats another one exactly."
        lines.append(json.dumps({"instruction": q, "input": "", "output": a}))
    lines.append("{broken json")
    path.write_text("\n".join(lines) + "\n")


def small_recipe(tmp_path: Path, executor: dict[str, Any]) -> dict[str, Any]:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    if not a.exists():
        write_records(a, 900)
        write_records(b, 150, source_tag="B ")
    return {
        "name": "ray_small", "seed": 7,
        "sources": [{"id": "a", "format": "alpaca", "path": str(a)}, {"id": "b", "format": "alpaca", "path": str(b)}],
        "steps": [
            {"use": "clean.normalize"},
            {"use": "filter.length", "params": {"min_chars": 20}},
            {"use": "filter.refusal"},
            {"use": "clean.html_to_markdown", "params": {"max_chars": 600}},
            {"use": "dedup.exact"},
            {"use": "dedup.minhash"},
            {"use": "filter.source", "params": {"drop_sources": ["b"]}},
        ],
        "limits": {"max_quarantine_frac": 0.05},
        "executor": executor,
    }


LOCAL = {"kind": "local", "workers": 1, "batch_size": BATCH}


# ------------------------------------------------------------------------------------- comparison


def kept_ids(run: Path) -> dict[str, list[str]]:
    """Kept ids after every step, in file order."""
    return {f.name: pl.scan_parquet(f.kept).select("id").collect()["id"].to_list()
            for f in RunLayout(run).step_folders()}


def ledger(run: Path) -> pl.DataFrame:
    lf = RunDir(run).ledger()
    return lf.collect() if lf is not None else pl.DataFrame()


def report(run: Path) -> dict[str, Any]:
    rep = json.loads(RunLayout(run).report.read_text())
    timing = ("seconds", "per_s")
    steps = [{**{k: v for k, v in s.items() if k not in ("seconds", "cached")},
              "extra": {k: v for k, v in s["extra"].items() if not any(t in k for t in timing)}} for s in rep["steps"]]
    return {"steps": steps, "sources": rep["sources"], "totals": rep["totals"]}


def assert_same_run(local: Path, ray_run: Path) -> None:
    ka, kb = kept_ids(local), kept_ids(ray_run)
    assert list(kb) == list(ka)
    assert [k for k in ka if ka[k] != kb[k]] == []  # same records kept after every step, in the same order
    assert ledger(ray_run).equals(ledger(local))  # same removals, reasons, duplicate_of and similarity
    assert RunDir(ray_run).quarantine() == RunDir(local).quarantine()
    ga, gb = list(RunLayout(local).find_all(GROUPS)), list(RunLayout(ray_run).find_all(GROUPS))
    assert [g.parent.name for g in gb] == [g.parent.name for g in ga]
    for a, b in zip(ga, gb, strict=True):
        assert pl.read_parquet(b).equals(pl.read_parquet(a)), a.parent.name
    assert report(ray_run) == report(local)
    # the scorers' per-record columns and files (diversity, map) are the local ones too
    la, lb = RunLayout(local), RunLayout(ray_run)
    for fa, fb in zip(la.step_folders(), lb.step_folders(), strict=True):
        a, b = pl.scan_parquet(fa.kept_files()), pl.scan_parquet(fb.kept_files())
        cols = [c for c in a.collect_schema().names() if "." in c]
        assert b.select(cols).collect().equals(a.select(cols).collect()), fa.name
    for art in (DIVERSITY, MAP, MAP_REMOVED, CLUSTERS, VERBS):
        pa, pb = la.find(art), lb.find(art)
        assert (pa is None) == (pb is None), art.name
        if pa is not None and pb is not None:
            if art.name.endswith(".parquet"):
                assert pl.read_parquet(pb).equals(pl.read_parquet(pa)), art.name
            else:
                assert json.loads(pb.read_text()) == json.loads(pa.read_text()), art.name


def nodes_used(run: Path) -> set[str]:
    nodes = set()
    for f in RunLayout(run).step_folders():
        for c in sorted((f.path / "shards").glob("*.json")):
            nodes.add(json.loads(c.read_text())["more"].get("node", ""))
    return nodes - {""}
