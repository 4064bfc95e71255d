"""P3Reader: JSONL, streamed Parquet in the Hub layout, a saved `datasets` folder; subsets and meta."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.ingest.base import InputError
from curate.ingest.p3 import P3Reader, p3_subset
from curate.ingest.tabular import iter_parquet_records

from ._helpers import convs, expected_ids, read_all

FIXTURE = Path(__file__).parents[1] / "fixtures" / "p3" / "tiny.jsonl"


def p3_rows(n: int) -> list[dict]:
    return [
        {
            "inputs": list(range(i % 7 + 1)),
            "inputs_pretokenized": f"Article {i}: stocks rose.\nWhich topic is this about? ",
            "targets": [3],
            "targets_pretokenized": " Business",
            "answer_choices": ["World", "Sports", "Business", "Science/Tech"],
        }
        for i in range(n)
    ]


def test_fixture_jsonl():
    df, quarantined, _ = read_all(P3Reader.from_params(), [FIXTURE])
    assert df["provenance"].struct.field("record").to_list() == [1, 2]
    assert df["id"].to_list() == expected_ids(df)
    assert convs(df) == [
        [("user", "Review: great film\nIs this review positive or negative?"), ("assistant", "positive")],
        [("user", "Question: what is 2+2?"), ("assistant", "")],  # empty target kept
    ]
    assert df["subset"].to_list() == ["imdb_Movie_Expressed_Sentiment", "tiny"]
    # answer_choices kept; token ids dropped
    assert [json.loads(m) if m else None for m in df["meta"].to_list()] == [
        {"answer_choices": ["negative", "positive"]},
        None,
    ]
    assert [(q.record, q.line, q.reason) for q in quarantined] == [
        (3, 3, "empty_prompt"),
        (4, 4, "json_decode"),
        (5, 5, "missing_field"),
        (6, 6, "wrong_type"),
    ]


def test_ids_stable_across_reads():
    a, _, _ = read_all(P3Reader.from_params(), [FIXTURE])
    b, _, _ = read_all(P3Reader.from_params(), [FIXTURE])
    assert a["id"].to_list() == b["id"].to_list()


@pytest.mark.parametrize(
    ("path", "subset"),
    [
        ("p3/ag_news_classify/train.parquet", "ag_news_classify"),
        ("p3/ag_news_classify/train/0000.parquet", "ag_news_classify"),
        ("p3/super_glue_cb_based_on/validation-00000-of-00001.parquet", "super_glue_cb_based_on"),
        ("dumps/imdb_Sentiment_with_choices_.jsonl.gz", "imdb_Sentiment_with_choices_"),
    ],
)
def test_subset_from_path(path, subset):
    assert p3_subset(path) == subset


def test_hub_layout_parquet_glob(tmp_path):
    for template, n in (("ag_news_classify", 5), ("imdb_Movie_Expressed_Sentiment", 3)):
        (tmp_path / template).mkdir()
        pq.write_table(
            pa.Table.from_pylist(p3_rows(n)), tmp_path / template / "train.parquet", row_group_size=2
        )
    from curate.ingest.base import expand_paths

    paths = expand_paths(str(tmp_path / "*" / "*.parquet"))
    df, quarantined, stats = read_all(P3Reader.from_params(), paths)
    assert quarantined == [] and stats.files == 2
    assert df["subset"].to_list() == ["ag_news_classify"] * 5 + ["imdb_Movie_Expressed_Sentiment"] * 3
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 3, 4, 5, 1, 2, 3]
    assert convs(df)[0] == [
        ("user", "Article 0: stocks rose.\nWhich topic is this about?"),
        ("assistant", "Business"),
    ]
    assert json.loads(df["meta"][0]) == {"answer_choices": ["World", "Sports", "Business", "Science/Tech"]}


def test_parquet_streams_without_token_columns(tmp_path):
    """Memory stays flat: rows come one row group at a time, and inputs/targets are never read."""
    n = 20_000
    big = pa.table(
        {
            "inputs": pa.array([list(range(400))] * n, pa.list_(pa.int32())),  # ~32 MB of token ids
            "inputs_pretokenized": ["Is this positive? " + "x" * 100] * n,
            "targets": pa.array([[1]] * n, pa.list_(pa.int32())),
            "targets_pretokenized": ["yes"] * n,
        }
    )
    f = tmp_path / "cb_template.parquet"
    pq.write_table(big, f, row_group_size=2_000)
    del big
    base = pa.total_allocated_bytes()
    peak = 0
    count = 0
    for rr in iter_parquet_records(str(f), exclude=("inputs", "targets")):
        count += 1
        if count == 1:
            assert set(rr.obj) == {"inputs_pretokenized", "targets_pretokenized"}
        if count % 1000 == 0:
            peak = max(peak, pa.total_allocated_bytes() - base)
    assert count == n and rr.record == n
    assert peak < 8 << 20, f"Arrow memory grew by {peak} bytes"


def test_saved_datasets_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "super_glue_cb_can_we_infer"
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(p3_rows(3)),
            "validation": datasets.Dataset.from_list(p3_rows(2)),
        }
    )
    dd.save_to_disk(str(folder))
    df, quarantined, stats = read_all(P3Reader.from_params(), [folder])
    assert quarantined == [] and stats.read == 5
    assert df["subset"].unique().to_list() == ["super_glue_cb_can_we_infer"]
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 3, 4, 5]
    assert [json.loads(m)["split"] for m in df["meta"].to_list()] == ["train"] * 3 + ["validation"] * 2
    single = tmp_path / "single"
    datasets.Dataset.from_list(p3_rows(2)).save_to_disk(str(single))
    df, _, _ = read_all(P3Reader.from_params(), [single])
    assert len(df) == 2 and "split" not in json.loads(df["meta"][0])


def test_plain_folder_and_other_formats_are_input_errors(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match=r"not a saved `datasets` dataset.*\*\*/\*\.parquet"):
        read_all(P3Reader.from_params(), [tmp_path / "plain"])
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text(
        "".join(json.dumps({"instruction": "a", "input": "", "output": "b"}) + "\n" for _ in range(5))
    )
    with pytest.raises(InputError, match="like alpaca"):
        read_all(P3Reader.from_params(), [alpaca])


def test_hub_paths_go_to_the_base_reader(monkeypatch):
    pytest.importorskip("curate.ingest.hub")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(InputError, match="bigscience/P3"):
        read_all(P3Reader.from_params(), ["hub:bigscience/P3"])
