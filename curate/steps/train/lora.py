"""``train.lora``: LoRA fine-tune on the dataset a recipe exported, as its last step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from curate import layout as L
from curate.steps.base import StepContext, StepParams
from curate.steps.registry import register
from curate.steps.train.base import Trainer


@register("train.lora")
class LoraTrainer(Trainer):
    """Fine-tune a LoRA adapter on the exported dataset (the same run as ``curate finetune``); keeps every record.

    The fine-tune config (``config`` plus ``set``) is validated with the recipe, before any data is read.
    The ``--check`` of the data and template runs before training and fails the step on a problem.

    Reasons: none (a trainer removes nothing).
    """

    provides = (L.TRAIN_CHECK,)

    class Params(StepParams):
        dataset: str | None = Field(
            None, description="Exported Hub dataset folder; default: the path of this run's write.hub_dataset step."
        )
        config: str | None = Field(
            None, description="Fine-tune YAML (e.g. pipelines/finetune/lora-a100.yaml); default: built-in defaults."
        )
        base_model: str | None = Field(None, description="Local model folder or Hub name (model.name_or_path).")
        output: str | None = Field(None, description="Output folder; default: this step's folder in the run.")
        max_steps: int | None = Field(None, gt=0, description="Stop after N optimizer steps (train.max_steps).")
        set: dict[str, Any] = Field(
            default_factory=dict, description="Config overrides by key path, e.g. {train.learning_rate: 1e-4}."
        )
        merge: bool = Field(False, description="Also write merged weights (output.merge).")
        resume: bool = Field(False, description="Continue from the last checkpoint in the output folder.")

        @model_validator(mode="after")
        def _config_valid(self) -> LoraTrainer.Params:
            self.finetune_config(None)
            return self

        def finetune_config(self, default_output: Path | None) -> Any:
            from curate.train.config import load_config

            named = dict(self.set)
            for key, value in (
                ("model.name_or_path", self.base_model),
                ("output.dir", self.output or (str(default_output) if default_output else None)),
                ("train.max_steps", self.max_steps),
            ):
                if value is not None:
                    named[key] = value
            if self.merge:
                named["output.merge"] = True
            bad = [k for k in named if k.count(".") != 1]
            if bad:
                raise ValueError(f"set: keys must be section.key (e.g. train.learning_rate), got {bad}")
            return load_config(self.config, named=named)

    def train(self, dataset_dir: Path, ctx: StepContext) -> dict[str, Any]:
        from curate.train.trainer import prepare, train

        cfg = self.params.finetune_config(ctx.work_dir / "finetune")
        if not ctx.progress:
            cfg.train.progress = False
        prep = prepare(dataset_dir, cfg)
        ctx.artifact(L.TRAIN_CHECK).write_text(prep.report + "\n", encoding="utf-8")
        return train(prep, resume=self.params.resume).metrics
