"""Real-world damage through the shared reader machinery: bad text, cut or corrupt compressed files,
deep nesting, minified arrays, other encodings, non-JSON constants and oversized records.

Each case asserts the exact quarantine reason and that ``read == ingested + quarantined``.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from curate.ingest import base, jsonio
from curate.ingest.alpaca import AlpacaReader
from curate.ingest.base import InputError, read_batches
from curate.ingest.oasst import OasstReader
from curate.ingest.sharegpt import ShareGPTReader

from ._helpers import convs, read_all


def rec(i: int, **extra: object) -> dict[str, object]:
    return {"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}.", **extra}


def jsonl(*rows: str | dict[str, object]) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def outcome(quarantined: list[base.Quarantined]) -> list[tuple[int, str]]:
    return [(q.record, q.reason) for q in quarantined]


def write_parquet(df, path: Path) -> None:
    pq.write_table(df.to_arrow(), path)  # what `curate ingest` and the runner do with a batch
    assert pq.read_table(path).num_rows == len(df)


# --------------------------------------------------------------------------- 1, 2: text UTF-8 cannot hold

HALF_EMOJI = '{"instruction": "Smile \\ud83d please", "input": "", "output": "ok"}'  # a lone high surrogate
WHOLE_EMOJI = '{"instruction": "Smile \\ud83d\\ude00 please", "input": "", "output": "ok"}'  # a proper pair


def test_lone_surrogate_in_jsonl_is_quarantined_and_the_rest_written(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_bytes(jsonl(rec(1), HALF_EMOJI, WHOLE_EMOJI, '{"instruction": "a", "output": "b", "k": "\\udc00"}'))
    df, quarantined, stats = read_all(AlpacaReader.from_params(), [f])
    assert outcome(quarantined) == [(2, "lone_surrogate"), (4, "lone_surrogate")]
    assert "invalid text" in quarantined[0].error and "U+D83D" in quarantined[0].error
    assert (stats.read, stats.ingested, stats.quarantined) == (4, 2, 2)
    assert convs(df)[1][0] == ("user", "Smile \U0001f600 please")  # the pair decodes to the emoji
    write_parquet(df, tmp_path / "out.parquet")
    json.dumps([q.to_json() for q in quarantined], ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("indent", [None, 2])
def test_lone_surrogate_in_json_array_is_quarantined(tmp_path, indent):
    body = json.dumps([rec(1), rec(2), rec(3)], indent=indent)
    body = body.replace("Question 2?", "Question \\ud83d", 1).replace('"Answer 3."', '"Answer 3.", "m": {"x": "\\ude00"}')
    f = tmp_path / "s.json"
    f.write_text(body)
    df, quarantined, stats = read_all(AlpacaReader.from_params(), [f])
    assert outcome(quarantined) == [(2, "lone_surrogate"), (3, "lone_surrogate")]
    assert "$.instruction" in quarantined[0].error and "$.m.x" in quarantined[1].error
    assert (stats.read, stats.ingested) == (3, 1)
    write_parquet(df, tmp_path / "out.parquet")


def test_invalid_utf8_anywhere_in_an_array_or_on_jsonl_line_one(tmp_path):
    # the bad byte sits in a short string while a longer string is clean (the old check missed that)
    bad = b'{"instruction": "caf\xe9", "input": "", "output": "a much longer answer than the instruction"}'
    arr = tmp_path / "a.json"
    arr.write_bytes(b"[" + json.dumps(rec(1)).encode() + b",\n" + bad + b",\n" + json.dumps(rec(3)).encode() + b"]")
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [arr])
    assert outcome(quarantined) == [(2, "invalid_utf8")]
    assert "byte 0xe9 on line 2" in quarantined[0].error and "\\xe9" in quarantined[0].raw
    assert len(df) == 2
    first = tmp_path / "first.jsonl"
    first.write_bytes(bad + b"\n" + jsonl(rec(2), rec(3)))
    df, quarantined, stats = read_all(AlpacaReader.from_params(), [first])
    assert outcome(quarantined) == [(1, "invalid_utf8")] and (stats.read, stats.ingested) == (3, 2)


def test_quarantine_file_is_written_when_records_hold_bad_bytes(tmp_path, capsys):
    from curate.cli import main

    f = tmp_path / "bad.jsonl"
    f.write_bytes(b'{"instruction": "caf\xe9", "output": "x"}\n' + HALF_EMOJI.encode() + b"\n" + jsonl(rec(3)))
    out = tmp_path / "o.parquet"
    assert main(["ingest", "alpaca", str(f), "-o", str(out), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["read"], summary["ingested"], summary["quarantined"]) == (3, 1, 2)
    assert summary["by_reason"] == {"invalid_utf8": 1, "lone_surrogate": 1}
    q = [json.loads(line) for line in (tmp_path / "o.quarantine.jsonl").read_text("utf-8").splitlines()]
    assert [x["reason"] for x in q] == ["invalid_utf8", "lone_surrogate"] and "caf\\xe9" in q[0]["raw"]
    assert pq.read_table(out).num_rows == 1


def test_run_ingests_around_bad_text_and_writes_parquet(tmp_path):
    from curate.pipeline.runner import run_pipeline
    from curate.pipeline.spec import build_plan
    from curate.rundir import RunDir

    f = tmp_path / "a.jsonl"
    f.write_bytes(jsonl(*(rec(i) for i in range(8))) + HALF_EMOJI.encode() + b'\n{"instruction": "\xff", "output": "x"}\n')
    plan = build_plan({"name": "t", "seed": 1, "sources": [{"id": "a", "format": "alpaca", "path": str(f)}],
                       "steps": [{"use": "filter.length", "params": {"min_chars": 1}}],
                       "limits": {"max_quarantine_frac": 0.5}})
    run_pipeline(plan, tmp_path / "run", progress=False)
    ingest = json.loads((tmp_path / "run" / "report.json").read_text())["steps"][0]
    assert (ingest["n_in"], ingest["n_out"]) == (10, 8)
    assert ingest["quarantined"] == {"lone_surrogate": 1, "invalid_utf8": 1}
    assert RunDir(tmp_path / "run").final().collect().height == 8


def test_row_level_check_catches_text_no_container_check_saw(tmp_path):
    class Direct(base.Reader):
        """Yields rows straight from Python (as a hub or Parquet reader would)."""

        format = "direct"

        def records(self, path, source):
            for i, text in enumerate(["fine", "half \ud83d", "also fine"], start=1):
                yield {"source": source, "subset": None, "turns": [{"role": "user", "content": text}],
                       "meta": {"n": i}, "provenance": {"file": path, "record": i}}

    f = tmp_path / "x"
    f.write_text("")
    df, quarantined, stats = read_all(Direct.from_params(), [f])
    assert outcome(quarantined) == [(2, "lone_surrogate")] and df["meta"].to_list() == ['{"n": 1}', '{"n": 3}']
    assert (stats.read, stats.ingested, stats.quarantined) == (3, 2, 1)


# --------------------------------------------------------------------------- 6, 7: cut and damaged compressed files

ROWS = [rec(i, pad="x" * 120) for i in range(2000)]
PLAIN = jsonl(*ROWS)


def _cut_read(tmp_path: Path, name: str, data: bytes):
    f = tmp_path / name
    f.write_bytes(data)
    return read_all(AlpacaReader.from_params(), [f])


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        (".zst", lambda b: zstandard.ZstdCompressor().compress(b)),
        (".gz", gzip.compress),
        (".xz", lzma.compress),
    ],
)
def test_cut_compressed_jsonl_keeps_records_before_the_cut(tmp_path, suffix, compress):
    data = compress(PLAIN)
    df, quarantined, stats = _cut_read(tmp_path, "cut.jsonl" + suffix, data[: len(data) // 2])
    assert 0 < len(df) < 2000
    assert df["provenance"].struct.field("record").to_list() == list(range(1, len(df) + 1))
    assert outcome(quarantined) == [(len(df) + 1, "truncated_file")]
    assert "ends early after" in quarantined[0].error and f"line {len(df) + 1}" in quarantined[0].error
    assert stats.read == stats.ingested + stats.quarantined == len(df) + 1


def test_cut_bz2_with_nothing_decodable_still_reports_the_cut(tmp_path):
    data = bz2.compress(PLAIN)  # one 900 KB block: half of it decodes to nothing
    df, quarantined, stats = _cut_read(tmp_path, "cut.jsonl.bz2", data[: len(data) // 2])
    assert len(df) == 0 and outcome(quarantined) == [(1, "truncated_file")]
    assert "before any data could be read" in quarantined[0].error and stats.read == 1


def test_cut_zst_json_array_and_small_frame(tmp_path):
    arr = json.dumps(ROWS, indent=1).encode()
    data = zstandard.ZstdCompressor().compress(arr)
    df, quarantined, stats = _cut_read(tmp_path, "cut.json.zst", data[: len(data) // 2])
    assert 0 < len(df) < 2000 and outcome(quarantined) == [(len(df) + 1, "truncated_file")]
    assert "inside the record that starts on line" in quarantined[0].error
    small = zstandard.ZstdCompressor().compress(json.dumps(ROWS[:3]).encode())  # one block: nothing before the cut
    df, quarantined, stats = _cut_read(tmp_path, "small.json.zst", small[:-5])
    assert len(df) == 0 and outcome(quarantined) == [(1, "truncated_file")] and stats.read == 1


def test_multi_frame_zst_is_read_whole(tmp_path):
    c = zstandard.ZstdCompressor()
    df, quarantined, _stats = _cut_read(tmp_path, "frames.jsonl.zst", c.compress(PLAIN[:100_000]) + c.compress(PLAIN[100_000:]))
    assert quarantined == [] and len(df) == 2000


def test_damaged_compressed_data_keeps_records_before_it(tmp_path):
    gz = bytearray(gzip.compress(PLAIN))
    gz[-6] ^= 0xFF  # the CRC in the trailer
    df, quarantined, _ = _cut_read(tmp_path, "crc.jsonl.gz", bytes(gz))
    assert len(df) == 2000 and outcome(quarantined) == [(2001, "damaged_file")]
    assert "CRC check failed" in quarantined[0].error
    zst = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(PLAIN))
    zst[len(zst) // 2] ^= 0x55
    df, quarantined, stats = _cut_read(tmp_path, "bad.jsonl.zst", bytes(zst))
    assert 0 < len(df) < 2000 and [r for _, r in outcome(quarantined)][-1] == "damaged_file"
    assert "ZstdError" in quarantined[-1].error and stats.read == stats.ingested + stats.quarantined


@pytest.mark.parametrize(("name", "kind"), [("plain.jsonl.gz", "gzip"), ("plain.jsonl.zst", "zstd"),
                                            ("plain.jsonl.bz2", "bz2"), ("plain.jsonl.xz", "xz")])
def test_file_that_is_not_compressed_at_all_is_a_clear_error(tmp_path, name, kind):
    f = tmp_path / name
    f.write_bytes(PLAIN[:5000])
    with pytest.raises(InputError, match=rf"{name}: not valid {kind} data .*the name says {kind}-compressed"):
        read_all(AlpacaReader.from_params(), [f])


def test_cut_plain_json_array_reads_the_records_before_the_cut(tmp_path):
    arr = json.dumps(ROWS[:10], indent=2)
    f = tmp_path / "cut.json"
    f.write_text(arr[: arr.index('"Question 6?"')])
    df, quarantined, stats = read_all(AlpacaReader.from_params(), [f])
    assert len(df) == 6 and outcome(quarantined) == [(7, "truncated")] and stats.read == 7


# --------------------------------------------------------------------------- 8: deep nesting


def test_100k_open_brackets_is_one_too_deep_record(tmp_path):
    f = tmp_path / "deep.json"
    f.write_text("[" * 100_000)
    _df, quarantined, stats = read_all(AlpacaReader.from_params(), [f])
    assert outcome(quarantined) == [(1, "too_deep")] and stats.read == 1


def _deep_rec(i: int, depth: int) -> str:
    """An Alpaca record as JSON text whose extra ``meta`` is ``depth`` objects deep (no encoder recursion)."""
    meta = '{"k": ' * depth + '"leaf"' + "}" * depth
    return json.dumps(rec(i))[:-1] + f', "meta": {meta}}}'


def test_meta_nested_1000_deep_is_too_deep_in_jsonl_and_arrays(tmp_path):
    rows = [json.dumps(rec(1)), _deep_rec(2, 1000), _deep_rec(3, 5000), json.dumps(rec(4))]
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(rows) + "\n")
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [f])
    assert outcome(quarantined) == [(2, "too_deep"), (3, "too_deep")] and len(df) == 2
    assert "nested more than 100 levels" in quarantined[0].error
    write_parquet(df, tmp_path / "o.parquet")
    for sep in (",", ",\n"):
        a = tmp_path / "d.json"
        a.write_text("[" + sep.join(rows) + "]")
        df, quarantined, _ = read_all(AlpacaReader.from_params(), [a])
        assert outcome(quarantined) == [(2, "too_deep"), (3, "too_deep")] and len(df) == 2, sep
    ok = tmp_path / "ok.jsonl"
    ok.write_text(_deep_rec(1, 90) + "\n")  # deep but within the limit: kept, meta intact
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [ok])
    assert quarantined == [] and json.loads(df["meta"][0])["meta"]["k"]["k"]["k"]
    write_parquet(df, tmp_path / "ok.parquet")


def _oa_chain(n_replies: int) -> str:
    """A nested Open-Assistant tree export, one path ``n_replies`` replies deep, as JSON text."""
    def msg(i: int) -> str:
        role = "assistant" if i % 2 else "prompter"
        return f'{{"message_id": "m{i}", "role": "{role}", "text": "turn {i}", "replies": ['
    body = "".join(msg(i) for i in range(n_replies + 1)) + "]}" * (n_replies + 1)
    return f'{{"message_tree_id": "deep", "prompt": {body}}}'


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_open_assistant_tree_600_replies_deep_is_walked(tmp_path, layout):
    tree = _oa_chain(601)  # 602 messages: prompter first, assistant last
    f = tmp_path / ("t.jsonl" if layout == "jsonl" else "t.json")
    f.write_text(tree + "\n" if layout == "jsonl" else f"[\n {tree}\n]")
    reader = OasstReader.from_params()
    df, quarantined, _stats = read_all(reader, [f])
    assert quarantined == [] and len(df) == 1
    turns = convs(df)[0]
    assert len(turns) == 602 and turns[0] == ("user", "turn 0") and turns[-1] == ("assistant", "turn 601")
    assert reader.report_extra["messages"] == reader.report_extra["messages_used"] == 602


# --------------------------------------------------------------------------- 9, 20: arrays, encodings, NaN, size


def test_one_bad_element_of_a_minified_array_costs_only_that_element(tmp_path):
    f = tmp_path / "min.json"
    f.write_text('[{"instruction": "a", "output": "1"},{"instruction": "b", "output": tru},'
                 '{"instruction": "c", "output": "3"},{"instruction": "d", "output": "4"}]')
    df, quarantined, stats = read_all(AlpacaReader.from_params(), [f])
    assert outcome(quarantined) == [(2, "json_decode")]
    assert (stats.read, stats.ingested) == (4, 3) and [t[0][1] for t in convs(df)] == ["a", "c", "d"]


@pytest.mark.parametrize(
    ("encoding", "bom", "name"),
    [("utf-16-le", b"", "UTF-16LE (no byte-order mark"), ("utf-16-le", b"\xff\xfe", "UTF-16LE (with a byte-order mark"),
     ("utf-16-be", b"", "UTF-16BE (no byte-order mark"), ("utf-32-le", b"", "UTF-32LE")],
)
def test_utf16_and_utf32_files_are_refused_naming_the_encoding(tmp_path, encoding, bom, name):
    f = tmp_path / "wide.jsonl"
    f.write_bytes(bom + PLAIN[:2000].decode().encode(encoding))
    with pytest.raises(InputError, match=r"wide\.jsonl: the file is " + re.escape(name) + ".*iconv -f"):
        read_all(AlpacaReader.from_params(), [f])


def test_nan_and_infinity_are_quarantined_alike_on_any_line_and_in_arrays(tmp_path):
    nan = '{"instruction": "a", "output": "b", "score": NaN}'
    inf = '{"instruction": "a", "output": "b", "score": -Infinity}'
    f = tmp_path / "nan.jsonl"
    f.write_text(f"{nan}\n{nan}\n{json.dumps(rec(3))}\n{inf}\n")
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [f])
    assert outcome(quarantined) == [(1, "json_decode"), (2, "json_decode"), (4, "json_decode")]
    assert all("is not valid JSON (JSON has no NaN or Infinity)" in q.error for q in quarantined)
    arr = tmp_path / "nan.json"
    arr.write_text(f"[{nan},\n{json.dumps(rec(2))},\n{inf}]")
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [arr])
    assert outcome(quarantined) == [(1, "json_decode"), (3, "json_decode")] and len(df) == 1
    assert "NaN is not valid JSON" in quarantined[0].error


@pytest.mark.parametrize("chunk_chars", [1 << 20, 1024])  # seen whole in the buffer, or only while reading
def test_record_over_the_size_cap_is_quarantined_in_every_layout(tmp_path, monkeypatch, chunk_chars):
    monkeypatch.setattr(jsonio, "MAX_RECORD_CHARS", 4096)
    monkeypatch.setattr(jsonio, "CHUNK_CHARS", chunk_chars)
    big = rec(2, pad="y" * 20_000, nested={"list": ["z" * 3000, {"a": "q" * 3000}]})
    rows = [rec(1), big, rec(3), rec(4)]
    layouts = {"big.jsonl": jsonl(*rows), "min.json": json.dumps(rows).encode(),
               "pretty.json": json.dumps(rows, indent=2).encode()}
    for name, data in layouts.items():
        f = tmp_path / name
        f.write_bytes(data)
        df, quarantined, stats = read_all(AlpacaReader.from_params(), [f])
        assert outcome(quarantined) == [(2, "record_too_large")], name
        assert (stats.read, stats.ingested) == (4, 3) and [t[0][1] for t in convs(df)] == [
            "Question 1?", "Question 3?", "Question 4?"], name


def test_sharegpt_minified_single_line_file_with_a_bad_record(tmp_path):
    good = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    f = tmp_path / "one_line.json"
    f.write_text("[" + ",".join([json.dumps(good), '{"conversations": [{"from": "human", "value": "x"}, }',
                                 json.dumps(good), json.dumps(good)]) + "]")
    _df, quarantined, stats = read_all(ShareGPTReader.from_params(), [f])
    assert outcome(quarantined) == [(2, "json_decode")] and (stats.read, stats.ingested) == (4, 3)


def test_read_batches_balances_on_every_damaged_layout(tmp_path):
    # the counts helper in read_all asserts read == ingested + quarantined; here through a limit too
    f = tmp_path / "a.jsonl"
    f.write_bytes(jsonl(rec(1), "{bad", rec(3)))
    stats = base.ReadStats()
    batches = list(read_batches(AlpacaReader.from_params(), [str(f)], "s", stats=stats, limit=2))
    assert stats.read == 2 and stats.ingested + stats.quarantined == 2 and sum(len(b) for b in batches) == 1
