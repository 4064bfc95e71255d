from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from curate.errors import ConfigError, CurateError
from curate.export.run import ExportOptions, export_run
from curate.export.splits import parse_splits
from curate.layout import RunLayout
from curate.rundir import RunDir, RunDirError
from curate.schema import validate_record


def _export(run_dir: Path, out: Path, **kw) -> object:
    kw.setdefault("splits", parse_splits("train=0.75,validation=0.25"))
    return export_run(run_dir, out, ExportOptions(**kw))


def test_hub_layout_shards_and_records(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _export(run_dir, out, shard_rows=5)
    kept = RunDir(run_dir).final().collect()
    assert res.n_exported == kept.height == 16
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == ["train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet",
                     "validation-00000-of-00001.parquet"]
    table = pl.read_parquet(out / "data" / "*.parquet")
    assert table.columns == ["messages", "id", "source", "subset", "language", "filter_length.chars",
                             "filter_language.score"]
    assert sorted(table["id"]) == sorted(kept["id"])
    merged = table.join(kept.select("id", "turns", "provenance"), on="id")
    for row in merged.iter_rows(named=True):
        assert row["messages"] == row["turns"]
        validate_record({**row, "turns": row["messages"]})
    de = table.filter(pl.col("language") == "de")
    assert de.height == 1 and de["source"][0] == "vicuna"
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["splits"]["train"]["rows"] == 12 and manifest["language_column"] == "filter_language.lang"
    assert not list(tmp_path.glob(".out.curate-*"))


def test_load_dataset_offline_features_and_counts(run_dir: Path, tmp_path: Path, offline_hf: Path) -> None:
    import datasets

    out = tmp_path / "out"
    _export(run_dir, out, shard_rows=4)
    dd = datasets.load_dataset(str(out), cache_dir=str(offline_hf))
    assert {k: v.num_rows for k, v in dd.items()} == {"train": 12, "validation": 4}
    feats = dd["train"].features
    assert feats["messages"] == datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})
    assert feats["filter_length.chars"] == datasets.Value("int64")
    assert feats["language"] == datasets.Value("string")
    rows = [*dd["train"], *dd["validation"]]
    system_first = [r for r in rows if r["messages"][0]["role"] == "system"]
    assert len(system_first) == 5  # the vicuna multi-turn one and four dolly ones
    assert {tuple(m) for m in (r["messages"][0].keys() for r in system_first)} == {("role", "content")}


def test_card_parses_and_counts_equal_the_run(run_dir: Path, tmp_path: Path) -> None:
    from huggingface_hub import DatasetCard

    out = tmp_path / "out"
    _export(run_dir, out)
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    report = RunDir(run_dir).report()
    assert sum(s["num_examples"] for s in data["dataset_info"]["splits"]) == report["totals"]["kept"]
    assert {s["name"]: s["num_examples"] for s in data["dataset_info"]["splits"]} == {"train": 12, "validation": 4}
    assert data["license"] == ["apache-2.0", "cc-by-sa-3.0", "other"]
    assert data["language"] == ["de", "en"]
    assert data["size_categories"] == ["n<1K"] and data["task_categories"] == ["text-generation"]
    assert data["configs"][0]["data_files"] == [{"split": "train", "path": "data/train-*"},
                                                {"split": "validation", "path": "data/validation-*"}]
    body = card.text
    for step in report["steps"]:
        assert f"| `{step['step_id']}` | {step['kind']} | {step['n_in']:,} | {step['n_out']:,} |" in body
    assert "| `ingest` | read | 20 | 19 | 1 | quarantined: json_decode 1 |" in body
    assert "| `dolly` | dolly | `cc-by-sa-3.0` | 6 | 1 | 4 | 4 | 3 | 1 |" in body
    assert "| mean_knn_dist | 0.4123 |" in body
    assert "@misc{gpt4all," in body and "@online{DatabricksBlog2023DollyV2," in body
    assert "the most restrictive, **`other`**" in body
    assert "No dedup step ran" in body
    import yaml

    recipe = body.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(recipe) == RunDir(run_dir).spec()


def test_keep_scores_none_list_and_bad(run_dir: Path, tmp_path: Path) -> None:
    _export(run_dir, tmp_path / "none", keep_scores="none")
    assert pl.read_parquet(tmp_path / "none" / "data" / "*.parquet").columns[-1] == "language"
    _export(run_dir, tmp_path / "one", keep_scores=["filter_language.score"])
    assert pl.read_parquet(tmp_path / "one" / "data" / "*.parquet").columns[-1] == "filter_language.score"
    with pytest.raises(ConfigError, match="available"):
        _export(run_dir, tmp_path / "bad", keep_scores=["filter_language.lang"])
    assert not (tmp_path / "bad").exists()


def test_existing_out_dir_needs_overwrite_and_must_be_an_export(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export(run_dir, out)
    with pytest.raises(ConfigError, match="--overwrite"):
        _export(run_dir, out)
    _export(run_dir, out, overwrite=True, splits=parse_splits("train=1.0"))
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a curate export"):
        _export(run_dir, precious, overwrite=True)
    assert (precious / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="replace the run directory"):
        _export(run_dir, run_dir.parent, overwrite=True)


def test_unfinished_or_inconsistent_run_fails_before_writing(run_dir: Path, tmp_path: Path) -> None:
    report_path = RunLayout(run_dir).report
    report = json.loads(report_path.read_text())
    report["totals"]["kept"] = 99
    report_path.write_text(json.dumps(report))
    with pytest.raises(CurateError, match="inconsistent"):
        _export(run_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.curate-*"))
    report_path.unlink()
    with pytest.raises(RunDirError, match="did not finish"):
        _export(run_dir, tmp_path / "out")


def test_invalid_records_are_refused(run_dir: Path, tmp_path: Path) -> None:
    last = RunDir(run_dir).final_path()
    df = pl.read_parquet(last)
    bad = df.with_columns(
        pl.when(pl.col("source") == "dolly")
        .then(pl.col("turns").list.eval(pl.struct(pl.lit("robot").alias("role"), pl.element().struct.field("content").alias("content"))))
        .otherwise(pl.col("turns")).alias("turns")
    )
    bad.write_parquet(last)
    with pytest.raises(CurateError, match="unknown_role"):
        _export(run_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_streamed_export_keeps_every_records_split(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches smaller than the set and than a shard: same split per record as assign_splits over all."""
    import curate.export.run as export_run_mod
    from curate.export.splits import assign_splits, parse_splits
    from curate.rundir import RunDir

    monkeypatch.setattr(export_run_mod, "BATCH_ROWS", 3)
    out = tmp_path / "ds"
    splits = "train=0.5,validation=0.25,test=0.25"
    res = export_run(run_dir, out, ExportOptions(splits=parse_splits(splits), shard_rows=2))
    kept = RunDir(run_dir).final().collect()
    want = dict(assign_splits(kept.select("id", "source"), parse_splits(splits), 7).select("id", "split").iter_rows())
    got: dict[str, str] = {}
    for s in res.splits:
        assert len(s.files) == max(1, -(-s.rows // 2))
        for i, rel in enumerate(s.files):
            assert rel == f"data/{s.name}-{i:05d}-of-{len(s.files):05d}.parquet"
            for rid in pq.read_table(out / rel)["id"].to_pylist():
                got[rid] = s.name
    assert got == want
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(Path(f).name for s in res.splits for f in s.files)
