"""The demo corpus's API: generate it, read its ground truth, run the recipes on it, score the outcome."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from curate.demo.common import ALPACA_FILE, DEFAULT_RECORDS, FILES, OIG_FILE, P3_FILE, SHAREGPT_FILE, SO_FILE
from curate.demo.corpus import Corpus


def generate(out_dir: str | Path, n_records: int = DEFAULT_RECORDS, seed: int = 0, plant_scale: float = 1.0) -> dict[str, Any]:
    """Write the demo corpus under ``out_dir``; returns the ground-truth summary."""
    out = Path(out_dir)
    corpus = Corpus(n_records, seed, plant_scale)
    corpus.build()
    return corpus.write(out)


def iter_ground_truth(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    with open(Path(out_dir) / "ground_truth.jsonl", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


# The recipes ``make demo`` runs on the corpus: the sources each reads (recipe source id -> demo file).
RECIPE_SOURCES: dict[str, dict[str, str]] = {
    "gpt4all": {"oig": OIG_FILE, "stackoverflow": SO_FILE, "p3": P3_FILE},
    "vicuna": {"sharegpt": SHAREGPT_FILE},
    "alpaca": {"alpaca": ALPACA_FILE},
}


def recipe_overrides(recipe: str, raw_dir: str | Path, export_dir: str | Path) -> list[str]:
    """The ``--set`` overrides that point ``pipelines/<recipe>.yaml`` at the demo files (as ``make demo``)."""
    sets = [f"sources.{src}.path={Path(raw_dir) / rel}" for src, rel in RECIPE_SOURCES[recipe].items()]
    return [*sets, f"steps.write_hub_dataset.params.path={export_dir}"]


def recipe_plan(recipe_path: str | Path, raw_dir: str | Path, export_dir: str | Path,
                skip: Sequence[str] = ()) -> Any:
    """``pipelines/<name>.yaml`` pointed at the demo files, as a validated Plan; steps whose ``use`` is in
    ``skip`` are left out (e.g. the embedding steps, which need a model)."""
    import yaml

    from curate.pipeline.spec import apply_overrides, build_plan

    path = Path(recipe_path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["steps"] = [st for st in raw["steps"] if st["use"] not in skip]
    sets = recipe_overrides(raw["name"], raw_dir, export_dir)
    if not any(st["use"] == "write.hub_dataset" for st in raw["steps"]):
        sets = sets[:-1]
    return build_plan(apply_overrides(raw, sets), origin=str(path))


def planted_outcomes(raw_dir: str | Path, run_dirs: Sequence[str | Path]) -> Any:
    """What the runs did to each planted record of the corpus under ``raw_dir``.

    Returns a polars DataFrame, one row per planted record in a file the runs read: the ground truth
    (``file``, ``record``, ``kind``, ``detail``, ``of_file``, ``of_record``), then ``step`` and
    ``reason`` of the first removal (ledger: the step id; quarantine: ``quarantine:<step>``; both null
    when the record was kept), ``dup_file``/``dup_record`` of the record named in ``duplicate_of``,
    ``dup_matches_of`` (that record is the planted original or has the same content hash as it), and
    for duplicates the original's fate: ``of_step``, ``of_reason`` and ``of_removed_for_it`` (the
    original was removed as a duplicate of this record, or of one with the same content hash), which
    is how a dedup step that keeps the longer copy finds a pair.
    Records map through provenance: the file path ends with the ground-truth path, the record locator
    is equal.
    """
    import polars as pl

    from curate.rundir import RunDir

    runs = [RunDir(r) for r in run_dirs]
    ing = pl.concat(
        [r.ingested().select("id", "provenance", "content_hash").collect() for r in runs], how="vertical_relaxed",
    ).select("id", pl.col("provenance").struct.field("file").alias("path"),
             pl.col("provenance").struct.field("record"), "content_hash")
    removed = []
    for r in runs:
        for f in r.layout.ledger_files():
            led = pl.read_parquet(f, columns=["id", "provenance", "step", "reason", "duplicate_of"])
            removed.append(led.select(
                pl.col("provenance").struct.field("file").alias("path"),
                pl.col("provenance").struct.field("record"), "step", "reason", "duplicate_of",
                pl.lit(f"{r.path}/{f.stem}").alias("_order"),
            ))
        for f in r.layout.quarantine_files():
            with f.open(encoding="utf-8") as fh:
                q = [json.loads(line) for line in fh if line.strip()]
            removed.append(pl.DataFrame(
                {"path": [e["file"] for e in q], "record": [e["record"] for e in q],
                 "step": [f"quarantine:{e['step']}" for e in q], "reason": [e["reason"] for e in q],
                 "duplicate_of": [None] * len(q), "_order": [f"{r.path}/{f.stem}"] * len(q)},
                schema={"path": pl.Utf8, "record": pl.Int64, "step": pl.Utf8, "reason": pl.Utf8,
                        "duplicate_of": pl.Utf8, "_order": pl.Utf8},
            ))
    rem = pl.concat(removed, how="vertical_relaxed").sort("_order", maintain_order=True)
    paths = set(ing["path"].unique().to_list()) | set(rem["path"].unique().to_list())
    gt = [g for g in iter_ground_truth(raw_dir)]
    to_path = {rel: next((p for p in paths if p == rel or p.endswith("/" + rel)), None) for rel in FILES.values()}
    gt = [g for g in gt if to_path[g["file"]] is not None]
    truth = pl.DataFrame(
        {"file": [g["file"] for g in gt], "record": [g["record"] for g in gt], "kind": [g["kind"] for g in gt],
         "detail": [None if g["detail"] is None else str(g["detail"]) for g in gt],
         "of_file": [g["of"]["file"] if g["of"] else None for g in gt],
         "of_record": [g["of"]["record"] if g["of"] else None for g in gt]},
        schema={"file": pl.Utf8, "record": pl.Int64, "kind": pl.Utf8, "detail": pl.Utf8, "of_file": pl.Utf8,
                "of_record": pl.Int64},
    )
    rel_of = {p: rel for rel, p in to_path.items() if p is not None}
    ing = ing.with_columns(pl.col("path").replace_strict(rel_of, default=None).alias("file"))
    by_id = ing.select(pl.col("id").alias("duplicate_of"), pl.col("file").alias("dup_file"),
                       pl.col("record").alias("dup_record"), pl.col("content_hash").alias("dup_hash")).unique(
        "duplicate_of")
    first = (
        rem.with_columns(pl.col("path").replace_strict(rel_of, default=None).alias("file"))
        .unique(["file", "record"], keep="first", maintain_order=True)
        .join(by_id, on="duplicate_of", how="left")
        .select("file", "record", "step", "reason", "dup_file", "dup_record", "dup_hash")
    )
    hashes = ing.select("file", "record", pl.col("content_hash").alias("hash")).unique(["file", "record"])
    of = first.select(pl.col("file").alias("of_file"), pl.col("record").alias("of_record"),
                      pl.col("step").alias("of_step"), pl.col("reason").alias("of_reason"),
                      pl.col("dup_file").alias("of_dup_file"), pl.col("dup_record").alias("of_dup_record"))
    out = (
        truth.join(first, on=["file", "record"], how="left")
        .join(hashes, on=["file", "record"], how="left")
        .join(of, on=["of_file", "of_record"], how="left")
        .join(hashes.rename({"file": "of_file", "record": "of_record", "hash": "of_hash"}),
              on=["of_file", "of_record"], how="left")
        .with_columns(
            (((pl.col("dup_file") == pl.col("of_file")) & (pl.col("dup_record") == pl.col("of_record")))
             | (pl.col("dup_hash") == pl.col("of_hash"))).fill_null(False).alias("dup_matches_of"),
            (((pl.col("of_dup_file") == pl.col("file")) & (pl.col("of_dup_record") == pl.col("record")))
             | (pl.col("hash") == pl.col("of_hash"))).fill_null(False).alias("of_removed_for_it"),
        )
    )
    return out.drop("dup_hash", "hash", "of_hash", "of_dup_file", "of_dup_record")


def outcome_table(outcomes: Any) -> dict[str, Counter[str]]:
    """Per planted kind: how many records each ``step: reason`` removed (``kept`` when none did; a kept
    duplicate whose original was removed as its duplicate names that step instead)."""
    table: dict[str, Counter[str]] = {}
    cols = ("kind", "step", "reason", "of_step", "of_reason", "of_removed_for_it")
    for kind, step, reason, of_step, of_reason, of_for_it in outcomes.select(*cols).iter_rows():
        if step is not None:
            key = f"{step}: {reason}"
        elif of_for_it:
            key = f"kept, its original removed by {of_step}: {of_reason}"
        else:
            key = "kept"
        table.setdefault(kind, Counter())[key] += 1
    return dict(sorted(table.items()))
