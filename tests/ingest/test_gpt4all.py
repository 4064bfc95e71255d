"""GPT4AllReader: JSONL and streamed Parquet rows; subset is the row's `source`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest.base import InputError
from curate.ingest.gpt4all import GPT4AllReader

from ._helpers import convs, expected_ids, read_all

FIXTURE = Path(__file__).parents[1] / "fixtures" / "gpt4all" / "tiny.jsonl"


def test_fixture_jsonl():
    df, quarantined, _ = read_all(GPT4AllReader.from_params(), [FIXTURE])
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 6]
    assert df["id"].to_list() == expected_ids(df)
    assert convs(df) == [
        [("user", "Write a Python hello world."), ("assistant", "print('hello')")],
        [("user", "Summarise this text."), ("assistant", "")],
        [("user", "Name a fruit."), ("assistant", "Apple")],
    ]
    assert df["subset"].to_list() == ["pacovaldez/stackoverflow-questions", "laion/unified_chip2", None]
    assert [json.loads(m) if m else None for m in df["meta"].to_list()] == [None, None, {"id": 6}]
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (3, 3, "empty_prompt"),
        (4, 4, "json_decode"),
        (5, 5, "missing_field"),
    ]


def test_parquet_rows_stream_with_1_based_row_numbers(tmp_path):
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.startswith("{")]
    keys = sorted({k for r in rows for k in r})
    table = pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows * 3])  # 15 rows
    f = tmp_path / "gpt4all.parquet"
    pq.write_table(table, f, row_group_size=4)
    df, quarantined, stats = read_all(GPT4AllReader.from_params(), [f])
    assert stats.read == 15 and len(df) == 9
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (r, None, reason)
        for base in (0, 5, 10)
        for r, reason in ((base + 3, "empty_prompt"), (base + 4, "missing_field"))
    ]
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 5, 6, 7, 10, 11, 12, 15]
    assert df["id"].to_list() == expected_ids(df) and df["id"].n_unique() == 9  # 3 copies: 3 occurrences
    assert convs(df)[:3] == convs(read_all(GPT4AllReader.from_params(), [FIXTURE])[0])
    assert df["meta"].to_list()[:3] == [None, None, '{"id": 6}']  # null cells are not meta
    assert df["subset"].to_list()[:3] == ["pacovaldez/stackoverflow-questions", "laion/unified_chip2", None]


def test_not_parquet_and_xml_are_input_errors(tmp_path):
    fake = tmp_path / "fake.parquet"
    fake.write_text('{"prompt": "a"}\n')
    with pytest.raises(InputError, match=r"fake\.parquet: cannot open as Parquet"):
        read_all(GPT4AllReader.from_params(), [fake])
    xml = tmp_path / "a.xml"
    xml.write_text("<rows><row/></rows>")
    with pytest.raises(InputError, match="looks like xml"):
        read_all(GPT4AllReader.from_params(), [xml])


def test_damaged_parquet_row_group_is_quarantined_and_the_others_read(tmp_path):
    rows = [{"prompt": f"Question {i} " + "x" * 50, "response": f"Answer {i} " + "y" * 50, "source": "s"}
            for i in range(30)]
    f = tmp_path / "rg.parquet"
    pq.write_table(pa.Table.from_pylist(rows), f, row_group_size=10, compression="zstd")
    col = pq.ParquetFile(f).metadata.row_group(1).column(0)
    data = bytearray(f.read_bytes())
    start = col.data_page_offset + 20
    data[start : col.data_page_offset + col.total_compressed_size - 5] = b"\x55" * (
        col.total_compressed_size - 25
    )
    f.write_bytes(bytes(data))
    df, quarantined, stats = read_all(GPT4AllReader.from_params(), [f])
    assert [(q.record, q.reason) for q in quarantined] == [(11, "damaged_file")]
    assert "row group 1 cannot be read from row 11 to 20" in quarantined[0].error
    records = df["provenance"].struct.field("record").to_list()
    assert records == [*range(1, 11), *range(21, 31)] and stats.read == 21
