from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.layout import RunLayout
from curate.rundir import RunDir
from curate.steps.base import GlobalResult, StepContext
from curate.steps.registry import get_step
from curate.steps.write.hub_dataset import HubDatasetWriter


def _ctx(run_dir: Path, **extra) -> StepContext:
    return StepContext(run_dir=run_dir, work_dir=RunLayout(run_dir).step(3, "write_hub_dataset").path, seed=7,
                       extra=extra)


def test_registered_with_kind_and_docstring() -> None:
    cls = get_step("write.hub_dataset")
    assert cls is HubDatasetWriter and cls.kind == "write" and "Reasons:" in (cls.__doc__ or "")
    assert HubDatasetWriter.Params.model_fields["overwrite"].default is True


def test_params_validate_splits_and_forbid_extras() -> None:
    with pytest.raises(ValueError, match="sum to 1.2"):
        HubDatasetWriter.from_params(path="x", splits={"train": 0.9, "validation": 0.3})
    with pytest.raises(ValueError, match="extra"):
        HubDatasetWriter.from_params(path="x", shards=3)


def test_step_writes_dataset_from_runner_reports_and_removes_nothing(run_dir: Path, tmp_path: Path) -> None:
    rd = RunDir(run_dir)
    report = rd.report()
    out = tmp_path / "hub"
    step = HubDatasetWriter.from_params(path=str(out), splits={"train": "rest", "test": 4}, shard_rows=3)
    ctx = _ctx(run_dir, reports=report["steps"], spec=rd.spec(), sources=report["sources"])
    result = step.run(rd.final(), ctx)
    assert isinstance(result, GlobalResult) and result.decisions is None and result.scores is None
    assert step.report_extra == {"exported": 16.0, "rows_train": 12.0, "rows_test": 4.0}
    card = (out / "README.md").read_text()
    assert "| `filter_language` | filter | 17 | 16 | 1 | wrong_language 1 |" in card
    assert len(list((out / "data").glob("train-*-of-00004.parquet"))) == 4
    # a recipe re-run replaces its own earlier export (overwrite defaults to true in a recipe)
    step.run(rd.final(), ctx)
    assert json.loads((out / "export.json").read_text())["n_exported"] == 16


def test_step_without_reports_uses_report_json_or_fails(run_dir: Path, tmp_path: Path) -> None:
    rd = RunDir(run_dir)
    step = HubDatasetWriter.from_params(path=str(tmp_path / "a"))
    step.run(rd.final(), _ctx(run_dir))  # resumed run: report.json of an earlier end, spec.yaml
    rd.layout.report.unlink()
    with pytest.raises(CurateError, match=r"ctx.extra\['reports'\]"):
        HubDatasetWriter.from_params(path=str(tmp_path / "b")).run(rd.final(), _ctx(run_dir))
    assert not (tmp_path / "b").exists()


def test_step_refuses_counts_that_disagree_with_reports(run_dir: Path, tmp_path: Path) -> None:
    rd = RunDir(run_dir)
    reports = rd.report()["steps"]
    reports[-1]["n_out"] = 15
    step = HubDatasetWriter.from_params(path=str(tmp_path / "a"))
    with pytest.raises(CurateError, match="inconsistent"):
        step.run(rd.final(), _ctx(run_dir, reports=reports, spec=rd.spec()))
