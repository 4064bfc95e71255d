"""The step protocol: one small base class per kind; the runner owns batching, counting and files.

Kinds and the one method an author implements:

* ``Filter``    ``measure(batch)`` adds score columns, ``reject_reason(batch)`` says why to drop (null = keep)
* ``Transform`` ``apply(batch)`` returns the changed batch (may split rows; never rejects)
* ``Dedup``     ``decide(ds, ctx)`` returns ``[id, reason, duplicate_of, similarity]`` for records to remove
* ``Scorer``    ``score(ds, ctx)`` returns ``[id, <step_id>.<metric>...]`` columns joined onto the set
* ``GlobalStep`` the general case: ``run(ds, ctx) -> GlobalResult`` (decisions, scores, quarantine)

A batch is a ``polars.DataFrame`` in the conversation schema (see ``curate.schema``). Any step may
mark rows it cannot process by setting ``curate.schema.ERROR_COLUMN`` (``_error``) to
``"<ExcType>: <msg>"``; the runner moves those rows to quarantine, so one bad record never fails a batch.

A step declares the run artifacts it reads (``needs``) and writes (``provides``), from
:mod:`curate.layout`; ``build_plan`` checks their order before any data is read.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from curate.layout import Artifact, RunLayout, StepFolder
from curate.schema import ERROR_COLUMN

# A Transform may set this column to reject rows (e.g. clean.pii in drop mode); the runner sends them to the ledger.
REJECT_COLUMN = "_reject"

DECISION_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Utf8(),
    "reason": pl.Utf8(),
    "duplicate_of": pl.Utf8(),
    "similarity": pl.Float64(),
}


class StepParams(BaseModel):
    """Validated step parameters. Unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterParams(StepParams):
    """Parameters every filter takes: whether its reasons remove records or only flag them."""

    mode: Literal["remove", "flag"] = Field(
        "remove",
        description="remove: records with a reason go to the ledger; flag: the reason is written to "
        "`<id>.flag` and nothing is removed, so the reason can be read in the report and browser first.",
    )


@dataclass
class StepReport:
    step_id: str
    kind: str = ""
    n_in: int = 0
    n_out: int = 0
    n_added: int = 0  # rows created by splitting (clean.split_long); counted apart from n_in
    seconds: float = 0.0
    rejected: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    flagged: Counter[str] = field(default_factory=Counter)  # flag reason -> kept records marked for review
    flag_examples: dict[str, list[str]] = field(default_factory=dict)  # flag reason -> a few record ids

    def balanced(self) -> bool:
        return self.n_in + self.n_added == self.n_out + sum(self.rejected.values()) + sum(
            self.quarantined.values()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "kind": self.kind,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "n_added": self.n_added,
            "rejected": dict(self.rejected.most_common()),
            "quarantined": dict(self.quarantined.most_common()),
            "seconds": round(self.seconds, 3),
            "extra": {k: _clean_number(v) for k, v in self.extra.items()},
            "cached": self.cached,
            "flagged": dict(self.flagged.most_common()),
            "flag_examples": self.flag_examples,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StepReport:
        return cls(
            step_id=d["step_id"],
            kind=d.get("kind", ""),
            n_in=d["n_in"],
            n_out=d["n_out"],
            n_added=d.get("n_added", 0),
            seconds=d.get("seconds", 0.0),
            rejected=Counter(d.get("rejected", {})),
            quarantined=Counter(d.get("quarantined", {})),
            extra=dict(d.get("extra", {})),
            cached=d.get("cached", False),
            flagged=Counter(d.get("flagged", {})),
            flag_examples=dict(d.get("flag_examples", {})),
        )


def _clean_number(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


@dataclass
class StepContext:
    """What a step may use besides its records: its folder of the run directory, the run's layout, the seed.

    ``protected_ids`` are records a person labelled keep: the runner never removes them.
    ``not_duplicate_ids`` are records a person marked "not a duplicate": dedup never removes them.
    ``input_path`` is the ``kept.parquet`` the step reads (the previous step's output).
    """

    run_dir: Path
    work_dir: Path
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    protected_ids: frozenset[str] = frozenset()
    not_duplicate_ids: frozenset[str] = frozenset()
    progress: bool = True
    input_path: Path | None = None

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    @property
    def folder(self) -> StepFolder:
        """This step's own folder (``NN_<step_id>``)."""
        return self.layout.folder(self.work_dir)

    def artifact(self, artifact: Artifact | str) -> Path:
        """Where this step writes ``artifact`` (a declared :mod:`curate.layout` artifact, or its file name)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir / (artifact.name if isinstance(artifact, Artifact) else artifact)

    def find_artifact(self, artifact: Artifact | str) -> Path | None:
        """``artifact`` as the newest earlier step of this run wrote it (e.g. the embeddings), or None."""
        name = artifact.name if isinstance(artifact, Artifact) else artifact
        hits = [f.path / name for f in self.layout.step_folders()
                if f.name < self.work_dir.name and f.path != self.work_dir and (f.path / name).exists()]
        return hits[-1] if hits else None


@dataclass
class GlobalResult:
    decisions: pl.DataFrame | None = None  # DECISION_SCHEMA: rows to remove, with reasons
    scores: pl.DataFrame | None = None  # id + new columns, joined onto the kept rows
    quarantined: pl.DataFrame | None = None  # id + error


class Step(ABC):
    """Base of every registered step. Subclasses declare ``kind`` (via their base) and ``Params``."""

    kind: ClassVar[str] = ""
    key: ClassVar[str] = ""  # set by @register
    scope: ClassVar[str] = "batch"  # "batch": sees one batch at a time; "global": sees the whole set
    Params: ClassVar[type[StepParams]] = StepParams
    # Run artifacts an earlier step must have written (needs) and that this step writes (provides).
    needs: ClassVar[tuple[Artifact, ...]] = ()
    provides: ClassVar[tuple[Artifact, ...]] = ()

    def __init__(self, params: StepParams | None = None, step_id: str | None = None, seed: int = 0) -> None:
        self.params: Any = params if params is not None else self.Params()
        self.id = step_id or self.key or type(self).__name__
        self.seed = seed
        # Step-level totals (e.g. pii_email=12); the runner adds them up into StepReport.extra.
        self.report_extra: dict[str, float] = {}

    @classmethod
    def from_params(cls, step_id: str | None = None, seed: int = 0, **params: Any) -> Step:
        return cls(cls.Params.model_validate(params), step_id=step_id, seed=seed)

    # False for steps whose state comes from prepare(): they run in the main process only.
    parallel: ClassVar[bool] = True

    def prepare(self, ctx: StepContext) -> None:
        """Called once before the first batch, with the run's context (e.g. to read an earlier artifact)."""

    def needed(self) -> tuple[Artifact, ...]:
        """What this configured step needs; ``needs`` unless a parameter adds or removes a need."""
        return self.needs

    def fingerprint(self) -> dict[str, Any]:
        """What determines this step's output apart from its input (for the resume cache)."""
        return {"key": self.key, "id": self.id, "params": self.params.model_dump(mode="json"), "seed": self.seed}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, params={self.params!r})"


class Filter(Step):
    kind: ClassVar[str] = "filter"
    Params: ClassVar[type[StepParams]] = FilterParams

    def measure(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Add ``<step_id>.<metric>`` columns. Decides nothing."""
        return batch

    @abstractmethod
    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        """A Utf8 series aligned with the batch: the reason to remove, or null to keep."""

    def flag_reason(self, batch: pl.DataFrame) -> pl.Series | None:
        """A Utf8 series of reasons that mark a record for review without removing it (None: no flags)."""
        return None

    @property
    def flag_column(self) -> str:
        return f"{self.id}.flag"

    def decide(self, batch: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
        """(remove reasons, flag reasons) of a measured batch, with ``mode`` applied.

        In ``mode: flag`` every reject reason becomes a flag. A record has at most one of each; a
        reject reason wins over a flag of the same filter.
        """
        reasons = self.reject_reason(batch).cast(pl.Utf8)
        flags = self.flag_reason(batch)
        flags = pl.Series([None] * len(batch), dtype=pl.Utf8) if flags is None else flags.cast(pl.Utf8)
        if self.params.mode == "flag":
            return pl.Series([None] * len(batch), dtype=pl.Utf8), reasons.fill_null(flags).alias("flag")
        return reasons, flags.zip_with(reasons.is_null(), pl.Series([None] * len(batch), dtype=pl.Utf8))

    def score_columns(self, batch: pl.DataFrame) -> list[str]:
        return [c for c in batch.columns if c.startswith(self.id + ".")]


class Transform(Step):
    kind: ClassVar[str] = "clean"

    @abstractmethod
    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        """To implement in a subclass."""


class GlobalStep(Step):
    scope: ClassVar[str] = "global"

    @abstractmethod
    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        """To implement in a subclass."""


class Dedup(GlobalStep):
    kind: ClassVar[str] = "dedup"

    @abstractmethod
    def decide(self, ds: pl.LazyFrame, ctx: StepContext) -> pl.DataFrame:
        """Rows to remove: ``DECISION_SCHEMA`` columns; ``reason`` names the kind of duplicate."""

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        decisions = self.decide(ds, ctx)
        if ctx.not_duplicate_ids:
            decisions = decisions.filter(~pl.col("id").is_in(list(ctx.not_duplicate_ids)))
        return GlobalResult(decisions=decisions)


class Scorer(GlobalStep):
    kind: ClassVar[str] = "score"

    @abstractmethod
    def score(self, ds: pl.LazyFrame, ctx: StepContext) -> pl.DataFrame:
        """To implement in a subclass."""

    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        return GlobalResult(scores=self.score(ds, ctx))


def map_records(
    batch: pl.DataFrame,
    fn: Callable[[dict[str, Any]], Any],
    out_dtype: pl.DataType,
) -> tuple[pl.Series, pl.Series]:
    """Apply a per-record Python function, capturing each failure as an error string.

    Returns ``(values, errors)``: for a failing record, value is null and error is ``"<ExcType>: <msg>"``.
    """
    values: list[Any] = []
    errors: list[str | None] = []
    for row in batch.iter_rows(named=True):
        try:
            values.append(fn(row))
            errors.append(None)
        except Exception as e:  # noqa: BLE001 - one bad record is quarantined, never the batch
            values.append(None)
            errors.append(f"{type(e).__name__}: {e}"[:500])
    return pl.Series(values, dtype=out_dtype), pl.Series(ERROR_COLUMN, errors, dtype=pl.Utf8)


def with_errors(batch: pl.DataFrame, errors: pl.Series) -> pl.DataFrame:
    """Attach per-record errors to a batch, merging with errors already there."""
    if errors.null_count() == len(errors):
        return batch
    if ERROR_COLUMN in batch.columns:
        merged = batch[ERROR_COLUMN].fill_null(errors)
        return batch.with_columns(merged.alias(ERROR_COLUMN))
    return batch.with_columns(errors.alias(ERROR_COLUMN))


def empty_decisions() -> pl.DataFrame:
    return pl.DataFrame(schema=DECISION_SCHEMA)
