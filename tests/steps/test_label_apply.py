"""label.apply: labels from the store become manual drops and protected ids for the runner."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.errors import MissingResourceError
from curate.labels import LabelStore
from curate.steps.base import DECISION_SCHEMA, StepContext
from curate.steps.registry import get_step


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs" / "recipe" / "20260101-000000"
    d.mkdir(parents=True)
    return d


def _ctx(run_dir: Path, **extra: object) -> StepContext:
    return StepContext(run_dir=run_dir, work_dir=run_dir / "03_label_apply", extra=dict(extra))


def test_drops_keeps_and_not_duplicates(run_dir: Path, tiny_ds: pl.DataFrame):
    cls = get_step("label.apply")
    ids = tiny_ds["id"].to_list()
    store = LabelStore(run_dir.parent / "labels.sqlite")  # the default location
    store.add([ids[0], "gone-from-this-run"], "drop", annotator="ann")
    store.add([ids[1]], "drop", annotator="ann")
    store.add([ids[1]], "keep", annotator="bob")  # latest wins: a keep, not a drop
    store.add([ids[2]], "not_duplicate", annotator="ann")
    store.add([ids[3]], "drop", annotator="bob")
    store.add([ids[3]], "clear", annotator="bob")

    step = cls.from_params()
    res = step.run(tiny_ds.lazy(), _ctx(run_dir))
    assert res.decisions is not None
    assert res.decisions.schema == pl.Schema(DECISION_SCHEMA)
    assert res.decisions.rows() == [(ids[0], "manual_drop", None, None)]
    assert step.report_extra["labels_keep"] == 1.0
    assert cls.protected(step.params, run_dir) == (frozenset({ids[1]}), frozenset({ids[2]}))

    only_ann = cls.from_params(annotators=["ann"])
    assert set(only_ann.run(tiny_ds.lazy(), _ctx(run_dir)).decisions["id"]) == {ids[0], ids[1]}
    assert cls.protected({"annotators": ["ann"]}, run_dir) == (frozenset(), frozenset({ids[2]}))


def test_digest_follows_the_effective_labels(run_dir: Path):
    cls = get_step("label.apply")
    store = LabelStore(run_dir.parent / "labels.sqlite")
    store.add(["a"], "drop")
    d1 = cls.labels_digest({}, run_dir)
    store.add(["a"], "drop", note="again")  # same effective label
    assert cls.labels_digest({}, run_dir) == d1
    store.add(["a"], "keep")
    assert cls.labels_digest({}, run_dir) != d1


def test_no_labels_yet_is_a_no_op_but_a_named_file_must_exist(run_dir: Path, tiny_ds: pl.DataFrame):
    cls = get_step("label.apply")
    assert cls.protected({}, run_dir) == (frozenset(), frozenset())
    assert cls.from_params().run(tiny_ds.lazy(), _ctx(run_dir)).decisions.height == 0
    with pytest.raises(MissingResourceError, match="does not exist"):
        cls.protected({"path": str(run_dir / "nope.sqlite")}, run_dir)
    with pytest.raises(MissingResourceError):
        cls.from_params().run(tiny_ds.lazy(), _ctx(run_dir, labels_path=str(run_dir / "nope.sqlite")))


def test_runner_labels_path_is_used_when_params_leave_it(run_dir: Path, tiny_ds: pl.DataFrame, tmp_path: Path):
    cls = get_step("label.apply")
    other = tmp_path / "elsewhere.sqlite"
    LabelStore(other).add([tiny_ds["id"][2]], "drop")
    res = cls.from_params().run(tiny_ds.lazy(), _ctx(run_dir, labels_path=str(other)))
    assert res.decisions["id"].to_list() == [tiny_ds["id"][2]]
    assert cls.protected({}, run_dir, labels_path=other) == (frozenset(), frozenset())
