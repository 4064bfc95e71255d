"""Precision and recall of dedup decisions against planted ground truth (the demo corpus).

Ground truth lines (``DIR/ground_truth.jsonl`` from ``curate demo-data``)::

    {"file": "<relative path>", "record": <locator>, "kind": "exact_dup" | "near_dup" | ..., "of": {"file", "record"}}

Records map to ids through provenance: ``provenance.file`` ends with the ground-truth path and
``provenance.record`` equals the locator. A removal is correct when the removed record and the
record it names in ``duplicate_of`` belong to the same planted cluster (so removing the original and
keeping its copy counts too); a planted pair is found when the decisions join both records.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate.index.vectors import components


@dataclass
class DedupScore:
    precision: float
    recall: float
    removed: int
    correct: int
    planted: int
    found: int
    recall_by_kind: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_ground_truth(path: str | Path) -> pl.DataFrame:
    """Columns file, record, kind, of_file, of_record: one row per planted duplicate (lines with an ``of``)."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                if d.get("of") is None:  # planted kinds that duplicate nothing (failed_*, pii, ...)
                    continue
                rows.append(
                    {"file": d["file"], "record": int(d["record"]), "kind": d["kind"],
                     "of_file": d["of"]["file"], "of_record": int(d["of"]["record"])}
                )
    return pl.DataFrame(
        rows, schema={"file": pl.Utf8, "record": pl.Int64, "kind": pl.Utf8, "of_file": pl.Utf8, "of_record": pl.Int64}
    )


def _locate(files: pl.Series, records: pl.Series, prov: pl.DataFrame) -> pl.Series:
    """Record id for each (ground-truth file, locator); null when no row has that provenance."""
    prov_files = prov["file"].unique().to_list()
    mapping: dict[str, list[str]] = {}
    for f in files.unique().to_list():
        hits = [p for p in prov_files if p.endswith(f)]
        for h in hits:
            mapping.setdefault(f, []).append(h)
    q = pl.DataFrame({"_gt_file": files, "record": records}).with_row_index("_q")
    pairs = pl.DataFrame(
        [(g, p) for g, ps in mapping.items() for p in ps], schema={"_gt_file": pl.Utf8, "file": pl.Utf8}, orient="row"
    )
    joined = (
        q.join(pairs, on="_gt_file", how="left")
        .join(prov, on=["file", "record"], how="left")
        .group_by("_q")
        .agg(pl.col("id").drop_nulls().first())
        .sort("_q")
    )
    return joined["id"]


def attach_ids(truth: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Add ``id`` and ``of_id`` to ground truth; ``rows`` has ``id`` and ``provenance`` (all input rows)."""
    prov = rows.select("id", pl.col("provenance").struct.field("file"), pl.col("provenance").struct.field("record"))
    return truth.with_columns(
        _locate(truth["file"], truth["record"], prov).alias("id"),
        _locate(truth["of_file"], truth["of_record"], prov).alias("of_id"),
    )


def evaluate(decisions: pl.DataFrame, truth: pl.DataFrame, kinds: set[str] | None = None) -> DedupScore:
    """Score ``decisions`` (id, duplicate_of) against ``truth`` with ids (see :func:`attach_ids`).

    Precision counts every removal; recall counts planted pairs of ``kinds`` (all kinds when None).
    """
    truth = truth.filter(pl.col("id").is_not_null() & pl.col("of_id").is_not_null())
    all_ids = pl.concat(
        [truth["id"], truth["of_id"], decisions["id"], decisions["duplicate_of"].drop_nulls()]
    ).unique(maintain_order=True)
    pos = {v: k for k, v in enumerate(all_ids.to_list())}

    def idx(s: pl.Series) -> np.ndarray:
        return np.array([pos[v] for v in s.to_list()], dtype=np.int64)

    n = len(all_ids)
    truth_lab = components(n, idx(truth["id"]), idx(truth["of_id"]))
    dec = decisions.filter(pl.col("duplicate_of").is_not_null())
    dec_lab = components(n, idx(dec["id"]), idx(dec["duplicate_of"]))
    di, ds = idx(dec["id"]), idx(dec["duplicate_of"])
    correct = int(np.sum(truth_lab[di] == truth_lab[ds]))
    target = truth if kinds is None else truth.filter(pl.col("kind").is_in(sorted(kinds)))
    ti, to = idx(target["id"]), idx(target["of_id"])
    hit = dec_lab[ti] == dec_lab[to]
    by_kind = {}
    for kind in sorted(set(target["kind"].to_list())):
        m = (target["kind"] == kind).to_numpy()
        by_kind[kind] = float(hit[m].mean()) if m.any() else 0.0
    return DedupScore(
        precision=correct / len(dec) if len(dec) else 1.0,
        recall=float(hit.mean()) if len(target) else 1.0,
        removed=len(dec),
        correct=correct,
        planted=len(target),
        found=int(hit.sum()),
        recall_by_kind=by_kind,
    )
