"""The ``train`` kind: a global step that trains on an exported dataset folder and removes no record."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from curate.errors import ConfigError
from curate.steps.base import GlobalResult, GlobalStep, StepContext


class Trainer(GlobalStep):
    """Base of trainers: implement ``train(dataset_dir, ctx)``; the records pass through unchanged."""

    kind: ClassVar[str] = "train"

    @abstractmethod
    def train(self, dataset_dir: Path, ctx: StepContext) -> dict[str, Any]:
        """Train on the exported folder; return the metrics to put in the step report."""

    def dataset_dir(self, ctx: StepContext) -> Path:
        """``params.dataset`` when set, else the folder of the last ``write.hub_dataset`` step of this run."""
        given = getattr(self.params, "dataset", None)
        if given:
            return Path(given)
        spec = ctx.extra.get("spec")
        if spec is None and ctx.layout.spec.is_file():
            import yaml

            spec = yaml.safe_load(ctx.layout.spec.read_text(encoding="utf-8"))
        paths = [
            st.get("params", {}).get("path")
            for st in (spec or {}).get("steps", [])
            if isinstance(st, dict) and st.get("use") == "write.hub_dataset"
        ]
        paths = [p for p in paths if p]
        if not paths:
            raise ConfigError(
                f"{self.key}: no dataset to train on: set params.dataset to an exported folder, or put a "
                "write.hub_dataset step before this one in the recipe"
            )
        return Path(paths[-1])

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        metrics = self.train(self.dataset_dir(ctx), ctx)
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.report_extra[key] = float(value)
        return GlobalResult()
