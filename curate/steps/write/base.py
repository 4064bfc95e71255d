"""The ``write`` kind: a global step whose ``run()`` writes the kept records and removes none."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import polars as pl

from curate import layout as L
from curate.errors import ConfigError
from curate.steps.base import GlobalResult, GlobalStep, StepContext

TRIAL_EXPORT = L.TRIAL_EXPORT.name  # a trial run's writer writes into <run>/NN_<step_id>/export, not its path


class Writer(GlobalStep):
    """Base of writers: implement ``write(ds, ctx)``; the step passes every record through unchanged.

    A writer with a ``path`` parameter also gets :meth:`check_target` (is the folder writable?, asked
    before the run) and :meth:`redirected` (the same writer aimed elsewhere, for trial runs).
    """

    kind: ClassVar[str] = "write"

    @abstractmethod
    def write(self, ds: pl.LazyFrame, ctx: StepContext) -> None:
        """To implement in a subclass."""

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        self.write(ds, ctx)
        return GlobalResult()

    def target(self) -> Path | None:
        """Where this writer writes, or None when it has no ``path`` parameter."""
        path = getattr(self.params, "path", None)
        return Path(path) if path else None

    def check_target(self) -> None:
        """Raise ConfigError when the write would be refused; a writer with a target overrides this."""

    def redirected(self, folder: Path) -> Writer:
        """This writer writing into ``folder`` instead (replacing what an earlier trial left there)."""
        fields = type(self.params).model_fields
        if "path" not in fields:
            raise ConfigError(f"{self.id}: {self.key} has no `path` parameter, so a trial run cannot redirect it")
        update: dict[str, object] = {"path": str(folder)}
        if "overwrite" in fields:
            update["overwrite"] = True
        params = type(self.params).model_validate({**self.params.model_dump(), **update})
        return type(self)(params, step_id=self.id, seed=self.seed)
