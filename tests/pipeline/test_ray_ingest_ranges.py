"""The Ray ingest's byte ranges of big JSONL files: each line read by one task, from the right place."""

from __future__ import annotations

import json

import polars as pl
import pytest

from curate.ingest import jsonio
from curate.layout import RunLayout
from curate.pipeline.ingest import input_files, read_sources
from curate.pipeline.ray import ingest as ring
from curate.pipeline.spec import build_plan

pytest.importorskip("ray", reason="ray is not installed: pip install 'curate[ray]'")
pytestmark = pytest.mark.ray


def test_line_cuts_fall_after_every_nth_newline(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b"".join(b'{"i": %d}\n' % i for i in range(10)))
    starts = [i * 9 for i in range(10)]  # every line is 9 bytes
    assert ring.line_cuts(str(p), 3) == [(starts[3], 3), (starts[6], 6), (starts[9], 9)]
    assert ring.line_cuts(str(p), 5) == [(starts[5], 5)]  # none at the end of the file
    assert ring.line_cuts(str(p), 10) == [] and ring.line_cuts(str(p), 50) == []
    p.write_bytes(p.read_bytes()[:-1])  # no final newline: the last line is still a line
    assert ring.line_cuts(str(p), 3)[-1] == (starts[9], 9)


def _read(tmp_path, path, shard_rows, name):
    plan = build_plan({"name": "r", "sources": [{"id": "a", "format": "alpaca", "path": str(path)}],
                       "limits": {"max_quarantine_frac": 0.5}})
    inputs = input_files(plan)
    readers = [(src.id, src.subset, reader) for src, reader in plan.readers]
    folder = RunLayout(tmp_path / name).ingest
    folder.path.mkdir(parents=True)
    folder.run.quarantine_dir.mkdir()
    shards = ring.plan_shards(readers, inputs, shard_rows, None)  # type: ignore[arg-type]
    for i, sh in enumerate(shards):
        ring.read_shard(i, sh, readers[0][2], folder, batch_size=8, limit=None, n_buckets=2)
    whole = RunLayout(tmp_path / f"{name}_whole").ingest
    whole.path.mkdir(parents=True)
    whole.run.quarantine_dir.mkdir()
    read_sources(plan, inputs, whole, limit=None, batch_size=8, bar=lambda d: None)
    return shards, pl.read_parquet(folder.kept), pl.read_parquet(whole.kept)


def test_each_line_is_decoded_by_one_shard_only(tmp_path, monkeypatch):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(100)))
    decoded = []
    real = jsonio._decode_jsonl_line
    monkeypatch.setattr(jsonio, "_decode_jsonl_line", lambda raw, d: (decoded.append(raw), real(raw, d))[1])
    shards, got, _ = _read(tmp_path, path, 30, "s")
    assert len(shards) == 4 and len(decoded) == 100 + 100  # the shards once, the one-pass reference once
    assert got["provenance"].struct.field("record").to_list() == list(range(1, 101))


def test_a_json_array_named_jsonl_is_read_whole_by_its_first_shard(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("[\n" + ",\n".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(60))
                    + "\n]\n")
    shards, got, whole = _read(tmp_path, path, 20, "arr")
    assert len(shards) >= 3 and got.height == 60 and got.equals(whole)


def test_a_parquet_file_is_cut_into_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": f"question {i % 23}", "response": f"answer {i % 23}" if i % 17 else None,
             "source": "s"} for i in range(250)]
    path = tmp_path / "g.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=20)  # 13 row groups
    plan = build_plan({"name": "r", "sources": [{"id": "a", "format": "gpt4all", "path": str(path)}],
                       "limits": {"max_quarantine_frac": 0.5}})
    inputs = input_files(plan)
    readers = [(src.id, src.subset, reader) for src, reader in plan.readers]
    shards = ring.plan_shards(readers, inputs, 50, None)  # type: ignore[arg-type]
    assert [(s.start, s.stop, s.first) for s in shards] == [(0, 3, 0), (3, 6, 60), (6, 9, 120), (9, 12, 180),
                                                            (12, None, 240)]
    folder = RunLayout(tmp_path / "sharded").ingest
    folder.path.mkdir(parents=True)
    folder.run.quarantine_dir.mkdir()
    for i, sh in enumerate(shards):
        ring.read_shard(i, sh, readers[0][2], folder, batch_size=8, limit=None, n_buckets=2)
    for b in range(2):
        ring.offsets_of_bucket(b, folder)
    for i in ring.shards_to_fix(folder):
        ring.fix_shard(i, folder)
    whole = RunLayout(tmp_path / "whole").ingest
    whole.path.mkdir(parents=True)
    whole.run.quarantine_dir.mkdir()
    read_sources(plan, inputs, whole, limit=None, batch_size=8, bar=lambda d: None)
    assert pl.read_parquet(folder.kept).equals(pl.read_parquet(whole.kept))
    q_shards = [line for p in folder.quarantine_paths() for line in p.read_text().splitlines()]
    assert q_shards == whole.quarantine.read_text().splitlines() and len(q_shards) == 15  # null responses
