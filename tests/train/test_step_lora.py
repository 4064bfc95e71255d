"""The ``train.lora`` step (curate/steps/train/lora.py): a recipe can end by fine-tuning on its own export."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from curate.errors import ConfigError
from curate.steps.base import StepContext
from curate.steps.registry import get_step
from curate.steps.train.lora import LoraTrainer

CPU = {"train.bf16": False, "train.progress": False, "train.micro_batch_size": 4, "data.max_seq_len": 256,
       "hardware.device": "cpu"}


def test_registered_as_train_kind_and_config_validated_with_the_recipe() -> None:
    assert get_step("train.lora") is LoraTrainer and LoraTrainer.kind == "train"
    with pytest.raises(ValidationError, match="lora.rank: unknown key"):
        LoraTrainer.from_params(set={"lora.rank": 4})
    with pytest.raises(ValidationError, match="config file not found"):
        LoraTrainer.from_params(config="no/such.yaml")


def test_trains_on_the_export_of_the_runs_write_step(tiny_model: Path, tiny_export: Path, tmp_path: Path) -> None:
    step = LoraTrainer.from_params(base_model=str(tiny_model), max_steps=2, set=CPU)
    ctx = StepContext(run_dir=tmp_path, work_dir=tmp_path / "05_train_lora", progress=False,
                      extra={"spec": {"steps": [{"use": "write.hub_dataset", "params": {"path": str(tiny_export)}},
                                                {"use": "train.lora"}]}})
    result = step.run(pl.LazyFrame(), ctx)
    assert result.decisions is None  # a trainer removes nothing
    out = tmp_path / "05_train_lora" / "finetune"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2
    assert step.report_extra["steps"] == 2.0 and step.report_extra["eval_loss"] > 0
    assert "[[The sky is blue.</s>]]" in (tmp_path / "05_train_lora" / "check.txt").read_text()


def test_without_dataset_or_write_step_says_what_to_do(tmp_path: Path) -> None:
    step = LoraTrainer.from_params()
    with pytest.raises(ConfigError, match="set params.dataset .* or put a write.hub_dataset step"):
        step.run(pl.LazyFrame(), StepContext(run_dir=tmp_path, work_dir=tmp_path / "01_x"))
