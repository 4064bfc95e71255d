"""``score.map`` on the cluster (being written: until then the step runs in the driver)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from curate.pipeline.ray.shards import InputShard
from curate.steps.base import GlobalResult, GlobalStep, StepContext

if TYPE_CHECKING:
    from curate.layout import StepFolder
    from curate.pipeline.ray_executor import RayExecutor


def run_map(step: GlobalStep, shards: list[InputShard], folder: StepFolder, ctx: StepContext,
                  ex: RayExecutor) -> tuple[GlobalResult, pl.DataFrame | None]:
    return step.run(pl.scan_parquet(sorted({s.path for s in shards})), ctx), None
