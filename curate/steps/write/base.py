"""The ``write`` kind: a global step whose ``run()`` writes the kept records and removes none."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import polars as pl

from curate.steps.base import GlobalResult, GlobalStep, StepContext


class Writer(GlobalStep):
    """Base of writers: implement ``write(ds, ctx)``; the step passes every record through unchanged."""

    kind: ClassVar[str] = "write"

    @abstractmethod
    def write(self, ds: pl.LazyFrame, ctx: StepContext) -> None:
        """To implement in a subclass."""

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        self.write(ds, ctx)
        return GlobalResult()
