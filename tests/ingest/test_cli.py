"""`curate ingest` and `curate inspect` through curate.cli.main in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from curate.cli import main

FIX = Path(__file__).parents[1] / "fixtures"


def test_ingest_oasst_writes_parquet_quarantine_and_json_summary(tmp_path, capsys):
    out = tmp_path / "o" / "oa.parquet"
    rc = main(["ingest", "oasst", str(FIX / "oasst" / "tiny.jsonl"), "-o", str(out), "--json", "--quiet"])
    assert rc == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(stdout[-1])
    assert {k: summary[k] for k in ("read", "ingested", "quarantined", "by_reason")} == {
        "read": 9, "ingested": 4, "quarantined": 5,
        "by_reason": {"unknown_role": 1, "empty_turn": 1, "no_answer": 1, "deleted_message": 1, "json_decode": 1},
    }
    assert summary["extra"]["messages"] == 17
    df = pl.read_parquet(out)
    assert df.height == 4 and df["source"].unique().to_list() == ["oasst"]
    assert pq_compression(out) == "ZSTD"
    q = [json.loads(line) for line in (tmp_path / "o" / "oa.quarantine.jsonl").read_text().splitlines()]
    assert [x["reason"] for x in q] == ["unknown_role", "empty_turn", "no_answer", "deleted_message", "json_decode"]
    assert q[-1]["line"] == 5 and q[-1]["source"] == "oasst"
    assert not list(tmp_path.glob("o/*.tmp"))


def pq_compression(path: Path) -> str:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.row_group(0).column(0).compression


def test_ingest_params_source_limit_and_human_summary(tmp_path, capsys):
    out = tmp_path / "se.parquet"
    rc = main([
        "ingest", "stackexchange", str(FIX / "stackexchange" / "Posts.xml"), "-o", str(out),
        "--source", "stackoverflow", "--params", '{"answer": "top", "site": "demo"}', "--quiet",
    ])
    assert rc == 0
    text = capsys.readouterr().out
    assert "read 5 from 1 file(s): ingested 2, quarantined 3" in text
    assert "skipped.answer_paired 2" in text
    df = pl.read_parquet(out)
    assert df["source"].unique().to_list() == ["stackoverflow"] and df["subset"].unique().to_list() == ["demo"]
    assert df.filter(pl.col("provenance").struct.field("record") == 10)["turns"][0][1]["content"] == "Use numpy."

    rc = main(["ingest", "oasst", str(FIX / "oasst" / "tiny.jsonl"), "-o", str(out), "--limit", "2", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and summary["read"] == 2 and pl.read_parquet(out).height == 2


def test_user_errors_exit_2_without_traceback(tmp_path, capsys):
    out = str(tmp_path / "x.parquet")
    cases = [
        (["ingest", "nosuchformat", str(FIX / "oasst" / "tiny.jsonl"), "-o", out], "unknown step 'read.nosuchformat'"),
        (["ingest", "oasst", str(tmp_path / "missing.jsonl"), "-o", out], "file not found"),
        (["ingest", "oasst", str(FIX / "oasst" / "tiny.jsonl"), "-o", out, "--params", "{bad"], "not valid JSON"),
        (["ingest", "oasst", str(FIX / "oasst" / "tiny.jsonl"), "-o", out, "--params", '{"best_path": true}'],
         "best_path: Extra inputs are not permitted"),
        (["ingest", "stackexchange", str(FIX / "stackexchange" / "malformed.xml"), "-o", out], "malformed.xml:5"),
        (["inspect", str(tmp_path / "nope.parquet")], "no such file"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "x.parquet").exists()  # a failed ingest leaves no half-written output


def test_inspect_shows_counts_stats_and_conversations(tmp_path, capsys):
    out = tmp_path / "se.parquet"
    assert main(["ingest", "stackexchange", str(FIX / "stackexchange" / "Posts.xml"), "-o", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "-n", "1"]) == 0
    text = capsys.readouterr().out
    assert f"{out}: 2 records" in text
    assert "turns per record: min 2, mean 2.00, max 2" in text
    assert "turns by role: user 2, assistant 2" in text or "turns by role: assistant 2, user 2" in text
    assert "2  stackexchange / stackexchange" in text
    assert text.count("--- ") == 1 and "[user] Double a list" in text and "```py" in text


def test_inspect_rejects_non_conversation_parquet(tmp_path, capsys):
    p = tmp_path / "other.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(p)
    assert main(["inspect", str(p)]) == 2
    assert "not in the conversation schema" in capsys.readouterr().err
