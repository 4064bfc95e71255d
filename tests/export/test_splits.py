from __future__ import annotations

import polars as pl
import pytest

from curate.errors import ConfigError
from curate.export.splits import assign_splits, parse_splits, source_quotas, split_key, split_targets


def _ids(per_source: dict[str, int]) -> pl.DataFrame:
    rows = [(f"{s}-{i}", s) for s, n in per_source.items() for i in range(n)]
    return pl.DataFrame(rows, schema={"id": pl.Utf8, "source": pl.Utf8}, orient="row")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train=0.9,validation=0.2", "sum to 1.1"),
        ("train=0.9,test=50", "mix fractions and counts"),
        ("train=rest,test=rest", "only one split"),
        ("train", "NAME=SIZE"),
        ("train=abc", "neither a fraction"),
        ("train=1.5", "must be in (0, 1]"),
        ("train=-3", ">= 0"),
        ("tr-ain=1.0", "split name"),
        ("train=0.5,train=0.5", "given twice"),
    ],
)
def test_parse_splits_errors_say_how_to_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_splits(text)


def test_split_targets_fractions_counts_and_rest() -> None:
    assert split_targets(parse_splits("train=0.9,validation=0.1"), 15) == {"train": 14, "validation": 1}
    assert split_targets(parse_splits("train=rest,test=5"), 15) == {"train": 10, "test": 5}
    assert split_targets(parse_splits({"train": "rest", "validation": 0.2, "test": 3}), 20) == {
        "train": 13, "validation": 4, "test": 3}
    assert split_targets(parse_splits("a=10,b=5"), 15) == {"a": 10, "b": 5}
    with pytest.raises(ConfigError, match="give one split as 'rest'"):
        split_targets(parse_splits("a=10,b=4"), 15)
    with pytest.raises(ConfigError, match="more than the 15 records"):
        split_targets(parse_splits("train=rest,test=16"), 15)


def test_source_quotas_exact_margins_and_proportional_rows() -> None:
    per_source = {"a": 101, "b": 7, "c": 1, "d": 33}
    targets = split_targets(parse_splits("train=0.8,validation=0.1,test=0.1"), sum(per_source.values()))
    q = source_quotas(per_source, targets)
    for s, n in per_source.items():
        assert sum(q[s].values()) == n
        for name, t in targets.items():
            ideal = n * t / sum(per_source.values())
            assert abs(q[s][name] - ideal) < len(targets), (s, name, q[s][name], ideal)
    for name, t in targets.items():
        assert sum(q[s][name] for s in per_source) == t
    assert q["a"]["validation"] in (10, 11) and q["b"]["train"] in (5, 6)


def test_assign_splits_is_stratified_and_deterministic() -> None:
    ids = _ids({"big": 200, "small": 20})
    spec = parse_splits("train=0.9,validation=0.1")
    a = assign_splits(ids, spec, seed=1)
    assert a.height == 220 and a["id"].n_unique() == 220
    by = {(s, sp): n for s, sp, n in a.group_by("source", "split").len().iter_rows()}
    assert by == {("big", "train"): 180, ("big", "validation"): 20, ("small", "train"): 18, ("small", "validation"): 2}
    assert a.equals(assign_splits(ids.reverse(), spec, seed=1))  # input order does not matter
    other = assign_splits(ids, spec, seed=2)
    assert set(a.filter(pl.col("split") == "validation")["id"]) != set(other.filter(pl.col("split") == "validation")["id"])
    # within each source, validation takes the records with the largest keys after train's quota
    val = a.filter(pl.col("split") == "validation")
    assert val["split_key"].to_list() == sorted(val["split_key"].to_list())


def test_split_key_is_stable_and_uniform_range() -> None:
    assert split_key("abc", 0) == split_key("abc", 0) != split_key("abc", 1)
    keys = [split_key(str(i), 3) for i in range(2000)]
    assert 0 <= min(keys) and max(keys) < 1
    assert 0.45 < sum(keys) / len(keys) < 0.55
