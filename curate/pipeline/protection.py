"""Label protection: what people decided in the browser, applied to a whole run.

With a ``label.apply`` step in the recipe, records labelled keep are protected from every removal and
records marked "not a duplicate" from dedup steps; the labels' digest is part of every step's
fingerprint, so a changed label reruns the steps it can change. Labels that match no ingested record
are counted in label.apply's report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from curate.pipeline.cache import digest
from curate.steps.base import Step, StepReport

LABEL_STEP = "label.apply"
LABEL_EXAMPLES = 5  # ids shown of labels that match no record


@dataclass(frozen=True)
class Protection:
    keep: frozenset[str] = frozenset()  # protected from every removal
    not_duplicate: frozenset[str] = frozenset()  # protected from dedup steps
    digest: str = ""  # changes whenever an effective label changes

    def for_step(self, step: Step) -> frozenset[str]:
        """Ids ``step`` must not remove as duplicates (the not-duplicate labels apply to dedup steps only)."""
        return self.not_duplicate if step.kind == "dedup" else frozenset()


def _label_step(steps: list[Step]) -> Any:
    return next((s for s in steps if s.key == LABEL_STEP and hasattr(s, "protected")), None)


def load_protection(steps: list[Step], run_dir: Path, labels_path: Path | None) -> Protection:
    """The labels of the recipe's label.apply step (none without one)."""
    step = _label_step(steps)
    if step is None:
        return Protection()
    keep, not_dup = step.protected(step.params, run_dir, labels_path)
    keep, not_dup = frozenset(keep), frozenset(not_dup)
    labels = getattr(step, "labels_digest", lambda *a: "")(step.params, run_dir, labels_path)
    return Protection(keep, not_dup, digest([sorted(keep), sorted(not_dup), labels]))


def report_unmatched(step: Step, rep: StepReport, run_dir: Path, ingested: pl.LazyFrame,
                     labels_path: Path | None) -> None:
    """After label.apply: count (and name a few of) the labels whose record the run never read."""
    if step.key != LABEL_STEP or not hasattr(step, "unmatched"):
        return
    unmatched: list[str] = step.unmatched(step.params, run_dir, ingested.select("id"), labels_path)
    rep.extra["labels_unmatched"] = len(unmatched)
    if unmatched:
        rep.extra["labels_unmatched_examples"] = unmatched[:LABEL_EXAMPLES]
