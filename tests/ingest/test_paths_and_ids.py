"""Which files a source reads (literal names, globs, links, folders, names that are not UTF-8) and the
ids its conversations get (stable across paths, moves, compression and re-ingestion)."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.cli import main
from curate.ingest.alpaca import AlpacaReader
from curate.ingest.base import InputError, expand_paths

from ._helpers import expected_ids, read_all


def rec(i: int) -> dict[str, str]:
    return {"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."}


def write(path: Path, *ids: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(rec(i)) + "\n" for i in ids))
    return path


# --------------------------------------------------------------------------- 12a, 14, 18: which files


def test_folder_given_as_a_file_is_a_clear_error(tmp_path, capsys):
    d = tmp_path / "data"
    write(d / "a.jsonl", 1)
    with pytest.raises(InputError, match=r"data: is a folder, not a file; give the files in it, e\.g\. .*data/\*\.jsonl"):
        read_all(AlpacaReader.from_params(), [d])
    assert main(["ingest", "alpaca", str(d), "-o", str(tmp_path / "o.parquet")]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a file" in err and "Traceback" not in err


@pytest.mark.timeout(60)
def test_recursive_glob_does_not_follow_symlinked_folders(tmp_path):
    d = tmp_path / "d"
    write(d / "a.jsonl", 1, 2)
    write(d / "sub" / "b.jsonl", 3)
    (d / "sub" / "up").symlink_to("..")  # a loop
    (d / "self").symlink_to(".")  # another: together 2**40 paths for a glob that follows links
    (d / "link.jsonl").symlink_to("a.jsonl")  # the same file under a second name
    write(d / ".hidden" / "h.jsonl", 9)
    paths = expand_paths(str(d / "**" / "*.jsonl"))
    assert paths == [str(d / "a.jsonl"), str(d / "sub" / "b.jsonl")]
    assert expand_paths(str(d / "**")) == paths  # a trailing ** matches files at every level, as in glob.glob
    df, _, stats = read_all(AlpacaReader.from_params(), paths)
    assert stats.read == 3 and len(df) == 3
    assert expand_paths(str(d / ".hidden" / "*.jsonl")) == [str(d / ".hidden" / "h.jsonl")]


def test_existing_file_with_glob_characters_is_read_as_named(tmp_path):
    f = write(tmp_path / "data[1].jsonl", 1, 2)
    write(tmp_path / "data1.jsonl", 3)  # what the name would match as a pattern
    assert expand_paths(str(f)) == [str(f)]
    assert expand_paths(str(tmp_path / "data[[]1].jsonl")) == [str(f)]  # escaped pattern
    df, _, stats = read_all(AlpacaReader.from_params(), expand_paths(str(f)))
    assert stats.read == 2 and len(df) == 2
    with pytest.raises(InputError, match=r"escape them as \[\*\], \[\?\], \[\[\]"):
        expand_paths(str(tmp_path / "nothing[2].jsonl"))


def test_file_name_that_is_not_utf8_is_read_and_escaped_in_provenance(tmp_path, capsys):
    raw_name = os.fsencode(str(tmp_path)) + b"/caf\xe9.jsonl"
    with open(raw_name, "wb") as fh:
        fh.write(b"".join(json.dumps(rec(i)).encode() + b"\n" for i in (1, 2)) + b"{bad\n")
    name = os.fsdecode(raw_name)
    paths = expand_paths(str(tmp_path / "*.jsonl"))
    assert paths == [name]
    df, quarantined, _stats = read_all(AlpacaReader.from_params(), paths)
    shown = str(tmp_path / "caf\\xe9.jsonl")
    assert df["provenance"].struct.field("file").to_list() == [shown, shown]
    assert [(q.file, q.reason) for q in quarantined] == [(shown, "json_decode")]
    pq.write_table(df.to_arrow(), tmp_path / "o.parquet")
    out = tmp_path / "cli.parquet"
    assert main(["ingest", "alpaca", name, "-o", str(out), "--quiet"]) == 0
    assert pq.read_table(out).num_rows == 2
    q = json.loads((tmp_path / "cli.quarantine.jsonl").read_text("utf-8"))
    assert q["file"] == shown and q["reason"] == "json_decode"


def test_same_file_listed_twice_is_read_once(tmp_path, monkeypatch, caplog):
    f = write(tmp_path / "data" / "x.jsonl", 1, 2)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="curate.ingest"):
        paths = expand_paths(["data/x.jsonl", str(f), "data/*.jsonl"])
    assert paths == ["data/x.jsonl"]
    assert "the same file as data/x.jsonl" in caplog.text and "read once" in caplog.text
    df, _, stats = read_all(AlpacaReader.from_params(), ["data/x.jsonl", str(f)])  # a caller that did not expand
    assert stats.read == 2 and stats.files == 1 and stats.repeated_files == [str(f)]
    assert df["id"].n_unique() == 2


# --------------------------------------------------------------------------- 5: ids


def test_ids_survive_relative_and_absolute_paths_moves_renames_and_compression(tmp_path, monkeypatch):
    src = write(tmp_path / "data" / "x.jsonl", 1, 2, 3)
    monkeypatch.chdir(tmp_path)
    first, _, _ = read_all(AlpacaReader.from_params(), ["data/x.jsonl"], source="alpaca")
    again, _, _ = read_all(AlpacaReader.from_params(), [str(src)], source="alpaca")
    moved = tmp_path / "elsewhere" / "renamed.jsonl.gz"
    moved.parent.mkdir()
    moved.write_bytes(gzip.compress(src.read_bytes()))
    shutil.rmtree(tmp_path / "data")
    after_move, _, _ = read_all(AlpacaReader.from_params(), [moved], source="alpaca")
    assert first["id"].to_list() == again["id"].to_list() == after_move["id"].to_list()
    assert first["id"].to_list() == expected_ids(first, "alpaca")
    assert after_move["provenance"].struct.field("file").to_list() == [str(moved)] * 3  # where it came from
    other_source, _, _ = read_all(AlpacaReader.from_params(), [moved], source="alpaca_v2")
    assert set(other_source["id"]).isdisjoint(first["id"])


def test_exact_duplicates_get_distinct_ids_by_occurrence_across_files(tmp_path):
    a = write(tmp_path / "a.jsonl", 1, 2, 1)
    b = write(tmp_path / "b.jsonl", 1)
    df, _, _ = read_all(AlpacaReader.from_params(), [a, b])
    ids = df["id"].to_list()
    assert len(set(ids)) == 4 and df["content_hash"].n_unique() == 2
    assert ids == expected_ids(df)
    # re-reading gives the same ids; a record edited in place changes only its own id
    again, _, _ = read_all(AlpacaReader.from_params(), [a, b])
    assert again["id"].to_list() == ids
    a.write_text(json.dumps(rec(1)) + "\n" + json.dumps(rec(7)) + "\n" + json.dumps(rec(1)) + "\n")
    edited, _, _ = read_all(AlpacaReader.from_params(), [a, b])
    assert [i == j for i, j in zip(edited["id"].to_list(), ids, strict=True)] == [True, False, True, True]


def test_split_long_pieces_derive_from_the_new_ids(tmp_path):
    from curate.steps.clean.split_long import part_id

    f = write(tmp_path / "a.jsonl", 1)
    df, _, _ = read_all(AlpacaReader.from_params(), [f])
    parent = df["id"][0]
    assert part_id(parent, 0) != part_id(parent, 1) and len(part_id(parent, 0)) == len(parent) == 16
