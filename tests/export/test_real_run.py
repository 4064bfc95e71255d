"""The export on a run the real runner made (skipped while the runner is missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.export.run import ExportOptions, export_run
from curate.export.splits import parse_splits
from curate.rundir import RunDir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _runner():
    try:
        from curate.pipeline.runner import run_pipeline
        from curate.pipeline.spec import build_plan
    except ImportError as e:
        pytest.skip(f"the runner is not available yet: {e}")
    return run_pipeline, build_plan


def test_recipe_with_write_step_then_cli_export(tmp_path: Path, offline_hf: Path) -> None:
    run_pipeline, build_plan = _runner()
    import datasets
    from huggingface_hub import DatasetCard

    recipe = {
        "name": "export-e2e",
        "seed": 5,
        "sources": [
            {"id": "chats", "format": "sharegpt", "path": str(FIXTURES / "sharegpt" / "tiny.jsonl")},
            {"id": "instr", "format": "alpaca", "path": str(FIXTURES / "alpaca" / "tiny.jsonl")},
        ],
        "steps": [
            {"use": "filter.length", "params": {"min_chars": 5}},
            {"use": "write.hub_dataset", "params": {"path": str(tmp_path / "in_run"), "splits": {"train": 0.5, "test": 0.5}}},
        ],
        "limits": {"max_quarantine_frac": 1.0},
    }
    run_dir = tmp_path / "run"
    run_pipeline(build_plan(recipe), run_dir, progress=False, log=lambda _msg: None)
    rd = RunDir(run_dir)
    report = rd.report()
    kept = report["totals"]["kept"]
    assert kept > 0

    dd = datasets.load_dataset(str(tmp_path / "in_run"), cache_dir=str(offline_hf))
    assert dd["train"].num_rows + dd["test"].num_rows == kept
    card = DatasetCard.load(tmp_path / "in_run" / "README.md")
    assert sum(s["num_examples"] for s in card.data.dataset_info["splits"]) == kept
    ingest = report["steps"][0]
    assert f"| `ingest` | read | {ingest['n_in']:,} | {ingest['n_out']:,} |" in card.text

    res = export_run(run_dir, tmp_path / "cli", ExportOptions(splits=parse_splits("train=1.0")))
    assert res.n_exported == kept == rd.final().collect().height
    assert DatasetCard.load(tmp_path / "cli" / "README.md").data.license == ["cc-by-nc-4.0", "other"]


def test_mini_recipe_exports(tmp_path: Path, offline_hf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_pipeline, _ = _runner()
    mini = FIXTURES / "pipelines" / "mini.yaml"
    if not mini.exists():
        pytest.skip(f"{mini} does not exist yet")
    import datasets

    from curate.pipeline.spec import load_recipe

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    run_dir = tmp_path / "run"
    plan = load_recipe(mini, [f"steps.write_hub_dataset.params.path={tmp_path / 'in_recipe'}"])  # not the repo's out/
    run_pipeline(plan, run_dir, progress=False, log=lambda _msg: None)
    res = export_run(run_dir, tmp_path / "out", ExportOptions(splits=parse_splits("train=0.8,validation=0.2")))
    dd = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(offline_hf))
    assert sum(d.num_rows for d in dd.values()) == res.n_exported == RunDir(run_dir).report()["totals"]["kept"]
