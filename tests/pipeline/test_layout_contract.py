"""The run directory as a contract: a real run's every file is named by curate.layout, has the declared
schema, and every consumer we ship (RunDir, the export, the report) reads it through the layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from curate import layout as L
from curate.layout import RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import load_recipe
from curate.rundir import RunDir, is_finished

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "pipelines" / "mini.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The mini recipe through the real runner (real readers, real MiniLM embeddings, real FAISS)."""
    tmp = tmp_path_factory.mktemp("contract")
    mp = pytest.MonkeyPatch()
    mp.chdir(ROOT)
    mp.setenv("CURATE_CACHE_DIR", str(tmp / "cache"))
    try:
        plan = load_recipe(MINI, [f"steps.write_hub_dataset.params.path={tmp / 'export'}"])
        res = run_pipeline(plan, tmp / "runs" / "mini" / "ts", progress=False, log=lambda _m: None)
    finally:
        mp.undo()
    return {"dir": res.run_dir, "plan": plan, "report": res.report, "tmp": tmp}


def _named_by_layout(lay: RunLayout, folders: list[L.StepFolder], path: Path) -> bool:
    if path in (lay.spec, lay.report, lay.report_md, lay.manifest, lay.lock):
        return True
    if path in {f.ledger for f in folders} | {f.quarantine for f in folders}:
        return True
    for f in folders:
        if path.parent == f.path and (path.name in (L.KEPT, L.DONE) or path.name in {a.name for a in L.ARTIFACTS}):
            return True
    return False


def test_every_file_of_the_run_is_named_by_the_layout(run: dict[str, Any]) -> None:
    lay = RunLayout(run["dir"])
    folders = [lay.ingest] + [lay.step(i, s.id) for i, s in enumerate(run["plan"].steps, start=1)]
    assert lay.step_folders() == folders
    files = [p for p in lay.root.rglob("*") if p.is_file()]
    assert files and [p for p in files if not _named_by_layout(lay, folders, p)] == []
    assert all(is_finished(f) for f in folders)
    done = json.loads(folders[-1].done.read_text())
    assert isinstance(done["fingerprint"], str) and done["report"]["step_id"] == folders[-1].step_id


def test_the_run_records_its_layout_version(run: dict[str, Any]) -> None:
    rd = RunDir(run["dir"])
    assert rd.version == L.LAYOUT_VERSION == rd.manifest()["layout"]


def test_tables_have_the_declared_schemas(run: dict[str, Any]) -> None:
    rd = RunDir(run["dir"])
    lay = rd.layout
    for f in rd.finished_steps():
        cols = pl.read_parquet_schema(f.kept)
        assert list(cols)[: len(L.KEPT_SCHEMA)] == list(L.KEPT_SCHEMA), f.name
    ledgers = lay.ledger_files()
    assert ledgers
    for p in ledgers:
        assert dict(pl.read_parquet_schema(p)) == L.LEDGER_SCHEMA, p.name
    seen = []
    for art in L.ARTIFACTS:
        if art.schema is None:
            continue
        for p in rd.find_all(art):
            got = pl.read_parquet_schema(p)
            assert {k: got[k] for k in art.schema} == dict(art.schema), p
            seen.append(art.name)
    assert {"embedding_ids.parquet", "index_ids.parquet", "groups.parquet", "map.parquet"} <= set(seen)
    entries = rd.quarantine()
    assert entries
    for entry in entries:
        fields = L.INGEST_QUARANTINE_FIELDS if entry["step"] == L.INGEST_ID else L.QUARANTINE_FIELDS
        assert set(fields) <= set(entry), entry


def test_artifacts_are_found_through_the_layout(run: dict[str, Any]) -> None:
    rd = RunDir(run["dir"])
    lay = rd.layout
    emb = rd.find(L.EMBEDDINGS)
    assert emb is not None and emb.parent.name.endswith("embed_sentence_transformer")
    from curate.index.vectors import load_embedding_info, load_embeddings, load_index

    ids, matrix = load_embeddings(emb)
    index, index_ids = load_index(emb)
    assert matrix.shape[0] == len(ids) == index.ntotal == len(index_ids)
    assert set(load_embedding_info(emb)) >= {"model", "dim", "text", "count", "index"}
    diversity = rd.read_json_artifact(L.DIVERSITY)
    assert set(diversity) >= {"overall", "per_source", "per_subset"} and diversity == run["report"]["diversity"]
    assert isinstance(rd.read_json_artifact(L.CLUSTERS), list)
    assert len(rd.find_all(L.GROUPS)) == 3  # exact, minhash, semantic
    sources = json.loads(lay.ingest.file(L.SOURCE_STATS).read_text())
    assert set(sources) == set(run["report"]["sources"])
    kept = rd.final().select(pl.len()).collect().item()
    assert kept == run["report"]["totals"]["kept"] == len(pl.read_parquet(rd.find(L.MAP)))  # type: ignore[arg-type]
    ledger = rd.ledger()
    assert ledger is not None and ledger.select(pl.len()).collect().item() == run["report"]["totals"]["removed"]
    assert rd.ingested().select(pl.len()).collect().item() == run["report"]["steps"][0]["n_out"]


def test_export_and_report_read_the_run_through_the_layout(run: dict[str, Any]) -> None:
    from curate.analysis.report import write_report
    from curate.export.run import ExportOptions, export_run

    out = export_run(run["dir"], run["tmp"] / "export-again", ExportOptions())
    assert out.n_exported == run["report"]["totals"]["kept"]
    html_path, md_path = write_report(run["dir"])
    lay = RunLayout(run["dir"])
    assert (html_path, md_path) == (lay.report_html, lay.report_md)
    assert "Cluster map" in html_path.read_text() and "Largest clusters" in html_path.read_text()
