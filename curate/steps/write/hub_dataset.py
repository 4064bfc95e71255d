"""``write.hub_dataset``: the kept records as a Hugging Face dataset folder with its card, inside a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field, field_validator

from curate import layout as L
from curate.errors import CurateError
from curate.steps.base import StepContext, StepParams
from curate.steps.registry import register
from curate.steps.write.base import Writer


def _reports(ctx: StepContext) -> list[dict[str, Any]]:
    """Step reports of the run so far: ``ctx.extra["reports"]`` (dicts or StepReport objects).

    The runner writes report.json only when the run ends, after this step, so it passes the reports
    of the steps before this one. A resumed run may instead have a report.json from an earlier end.
    """
    reports = ctx.extra.get("reports")
    if reports is None:
        report_json = ctx.layout.report
        if report_json.exists():
            return list(json.loads(report_json.read_text()).get("steps", []))
        raise CurateError(
            "write.hub_dataset needs the step reports of the run for its dataset card: the runner must pass "
            "them as ctx.extra['reports'] (a list of StepReport dicts)"
        )
    return [r.to_json() if hasattr(r, "to_json") else dict(r) for r in reports]


def _spec(ctx: StepContext) -> dict[str, Any]:
    spec = ctx.extra.get("spec")
    if spec is not None:
        return dict(spec)
    path = ctx.layout.spec
    if not path.exists():
        raise CurateError(
            f"write.hub_dataset needs the run's spec for its card: pass ctx.extra['spec'] or write {path.name} first"
        )
    import yaml

    return dict(yaml.safe_load(path.read_text()))


def _default_splits() -> dict[str, float | int | str]:
    return {"train": 1.0}


@register("write.hub_dataset")
class HubDatasetWriter(Writer):
    """Write the kept records as a Hub dataset folder (Parquet shards, README card) and keep them all.

    The folder is what ``curate export RUN_DIR OUT --format hub`` writes: ``data/{split}-*.parquet``
    with ``messages``/id/source/subset/language/score columns, a README.md card whose funnel comes
    from the step reports the runner passes in ``ctx.extra["reports"]`` (report.json does not exist
    yet while the run is going), whose per-source table uses ``ctx.extra["source_stats"]`` and whose
    recipe is ``ctx.extra["spec"]`` (else spec.yaml); a ``diversity.json`` of an earlier step is shown. The
    folder is written atomically. ``overwrite`` defaults to true here, unlike the CLI: a recipe's
    output belongs to the recipe, and running it again should refresh it; a folder holding anything
    curate did not write there (a file not listed in its export.json) is still never replaced. A trial
    run (``--dry-run``, ``--limit``) writes into its own run directory instead and leaves ``path`` alone.

    Reasons: none (a writer removes nothing).
    """

    class Params(StepParams):
        path: str = Field(description="Output folder; a relative path is taken from the working directory.")
        splits: dict[str, float | int | str] = Field(
            default_factory=_default_splits,
            description="Split sizes: fractions summing to 1, counts, and at most one 'rest' "
            "(e.g. {train: rest, test: 500}); every source is split in the same proportions.",
        )
        shard_rows: int = Field(100_000, ge=1, description="Rows per Parquet shard.")
        overwrite: bool = Field(True, description="Replace an earlier export in `path` (never another folder).")
        keep_scores: Literal["all", "none"] | list[str] = Field(
            "all", description="Numeric score columns to keep: all, none, or a list of `<step_id>.<metric>`."
        )
        seed: int | None = Field(None, ge=0, description="Split seed; default: the recipe's seed.")
        licenses: dict[str, str] = Field(
            default_factory=dict, description="Licence per source id when its format's default is wrong."
        )

        @field_validator("splits")
        @classmethod
        def _valid_splits(cls, v: dict[str, float | int | str]) -> dict[str, float | int | str]:
            from curate.export.splits import parse_splits

            parse_splits(v)
            return v

    def check_target(self) -> None:
        from curate.export.atomic import check_target

        check_target(Path(self.params.path).absolute(), self.params.overwrite)

    def write(self, ds: pl.LazyFrame, ctx: StepContext) -> None:
        from curate.export.run import ExportOptions, RunInfo, export_records
        from curate.export.splits import parse_splits

        p = self.params
        spec = _spec(ctx)
        diversity_json = ctx.find_artifact(L.DIVERSITY)
        run = RunInfo(
            name=str(spec.get("name") or ctx.run_dir.name),
            spec=spec,
            steps=_reports(ctx),
            sources=dict(ctx.extra.get("source_stats") or ctx.extra.get("sources") or {}),
            diversity=json.loads(diversity_json.read_text()) if diversity_json else None,
            run_dir=str(ctx.run_dir),
            trial=ctx.extra.get("trial"),
        )
        opts = ExportOptions(
            fmt="hub",
            splits=parse_splits(p.splits),
            shard_rows=p.shard_rows,
            seed=p.seed if p.seed is not None else ctx.seed,
            overwrite=p.overwrite,
            keep_scores=p.keep_scores,
            licenses=p.licenses,
        )
        result = export_records(ds, Path(p.path), opts, run)
        self.report_extra["exported"] = float(result.n_exported)
        if result.no_assistant:
            self.report_extra["no_assistant_turn"] = float(result.no_assistant)
        for s in result.splits:
            self.report_extra[f"rows_{s.name}"] = float(s.rows)
