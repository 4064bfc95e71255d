"""``label.apply``: the bridge from the browser's labels store back into a recipe run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from pydantic import Field

from curate.errors import MissingResourceError
from curate.labels import LabelStore, default_labels_path
from curate.steps.base import DECISION_SCHEMA, GlobalResult, GlobalStep, StepContext, StepParams
from curate.steps.registry import register

_EMPTY = {"record_id": pl.Utf8(), "label": pl.Utf8()}


@register("label.apply")
class ApplyLabel(GlobalStep):
    """Remove the records a person labelled drop; protect those labelled keep or not a duplicate.

    The latest label per record counts (``clear`` withdraws it). Keep ids are protected from every
    automatic removal and not-duplicate ids from dedup steps: the runner reads them through
    :meth:`protected` before the first step runs and hands them to every step in ``StepContext``.
    The labels file is ``params.path``, else the runner's ``--labels``, else
    ``runs/<name>/labels.sqlite``; a recipe nobody labelled yet has no default file and nothing happens.
    Labels whose record is not among the run's ingested records are counted in the step report
    (``labels_unmatched``, with a few ids in ``labels_unmatched_examples``) and on the printed run line.

    Reasons: manual_drop.
    """

    kind: ClassVar[str] = "label"

    class Params(StepParams):
        path: str | None = Field(
            None,
            description="Labels SQLite file; null = the runner's --labels, else runs/<name>/labels.sqlite.",
        )
        annotators: list[str] | None = Field(
            None, description="Count only labels by these annotators; null = everyone's."
        )

    @classmethod
    def _params(cls, params: StepParams | dict[str, Any]) -> Any:
        return params if isinstance(params, cls.Params) else cls.Params.model_validate(params)

    @classmethod
    def effective(
        cls, params: StepParams | dict[str, Any], run_dir: str | Path, labels_path: str | Path | None = None
    ) -> pl.DataFrame:
        """The effective label per record (``record_id``, ``label``); empty when nobody labelled yet."""
        p = cls._params(params)
        explicit = p.path or labels_path
        if explicit is None:
            path = default_labels_path(run_dir)
            if not path.exists():
                return pl.DataFrame(schema=_EMPTY)
        else:
            path = Path(explicit)
            if not path.exists():
                raise MissingResourceError(f"label.apply: labels file {path} does not exist (params.path / --labels)")
        return LabelStore(path, create=False).effective(p.annotators).select("record_id", "label")

    @classmethod
    def protected(
        cls, params: StepParams | dict[str, Any], run_dir: str | Path, labels_path: str | Path | None = None
    ) -> tuple[frozenset[str], frozenset[str]]:
        """(keep ids, not-duplicate ids) from the labels store, for ``StepContext``."""
        eff = cls.effective(params, run_dir, labels_path)
        keep = frozenset(eff.filter(pl.col("label") == "keep")["record_id"].to_list())
        not_dup = frozenset(eff.filter(pl.col("label") == "not_duplicate")["record_id"].to_list())
        return keep, not_dup

    @classmethod
    def labels_digest(
        cls, params: StepParams | dict[str, Any], run_dir: str | Path, labels_path: str | Path | None = None
    ) -> str:
        """Changes whenever an effective label changes: part of this step's cache fingerprint."""
        eff = cls.effective(params, run_dir, labels_path).sort("record_id")
        h = hashlib.blake2b(digest_size=16)
        for rid, label in eff.iter_rows():
            h.update(f"{rid}\x1f{label}\x1e".encode())
        return h.hexdigest()

    @classmethod
    def unmatched(
        cls, params: StepParams | dict[str, Any], run_dir: str | Path, ids: pl.LazyFrame,
        labels_path: str | Path | None = None,
    ) -> list[str]:
        """Labelled record ids (sorted) that are not among ``ids`` (the run's ingested records): a label
        that matches no record changes nothing, usually because the data or its ids changed since."""
        eff = cls.effective(params, run_dir, labels_path)
        if eff.is_empty():
            return []
        labelled = eff.lazy().select(pl.col("record_id").alias("id")).unique()
        return sorted(labelled.join(ids.select("id"), on="id", how="anti").collect()["id"].to_list())

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        eff = self.effective(self.params, ctx.run_dir, ctx.extra.get("labels_path"))
        drops = eff.filter(pl.col("label") == "drop").select(pl.col("record_id").alias("id"))
        decisions = (
            ds.select("id")
            .join(drops.lazy(), on="id", how="semi")
            .collect()
            .with_columns(
                reason=pl.lit("manual_drop"),
                duplicate_of=pl.lit(None, dtype=pl.Utf8),
                similarity=pl.lit(None, dtype=pl.Float64),
            )
            .cast(DECISION_SCHEMA)  # type: ignore[arg-type]
        )
        self.report_extra["labels_drop"] = float(drops.height)
        self.report_extra["labels_keep"] = float(eff.filter(pl.col("label") == "keep").height)
        self.report_extra["labels_not_duplicate"] = float(eff.filter(pl.col("label") == "not_duplicate").height)
        return GlobalResult(decisions=decisions)
