"""AlpacaReader: fixture records, the real Alpaca files, and the container failures all JSON readers share."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import zstandard

from curate.ingest.alpaca import AlpacaReader
from curate.ingest.base import InputError, Quarantined
from curate.steps.registry import get_step

from ._helpers import convs, expected_ids, read_all

FIXTURE = Path(__file__).parents[1] / "fixtures" / "alpaca" / "tiny.jsonl"


def q_of(quarantined: list[Quarantined]) -> list[tuple[int, int | None, str]]:
    return [(q.record, q.line, q.reason) for q in quarantined]


def test_registered():
    assert get_step("read.alpaca") is AlpacaReader


def test_fixture_turns_meta_and_quarantine():
    df, quarantined, stats = read_all(AlpacaReader.from_params(), [FIXTURE])
    path = str(FIXTURE)
    assert df["provenance"].struct.field("record").to_list() == [1, 2, 3, 6, 9, 9]
    assert df["id"].to_list() == expected_ids(df)  # source + content hash + occurrence
    assert convs(df) == [
        [
            ("user", "Give three tips for staying healthy."),
            ("assistant", "Eat well, sleep enough and move every day."),
        ],
        [("user", "Translate to French.\n\nGood morning"), ("assistant", "Bonjour")],
        [("user", "Name a colour."), ("assistant", "")],  # empty output kept; a later filter decides
        [
            ("system", "You are a storyteller."),
            ("user", "Tell me a story."),
            ("assistant", "Once upon a time..."),
            ("user", "Continue the story."),
            ("assistant", "They lived happily."),
        ],
        [("user", "Classify the sentiment.\n\nI love it"), ("assistant", "positive")],
        [("user", "Classify the sentiment.\n\nI hate it"), ("assistant", "negative")],
    ]
    metas = [json.loads(m) if m else None for m in df["meta"].to_list()]
    assert metas[:4] == [None, None, {"input": "<noinput>"}, {"meta": {"lang": "en"}, "input": "N/A"}]
    assert metas[4] == metas[5] == {"id": "seed_task_1", "name": "sentiment", "is_classification": True}
    assert df["subset"].to_list() == [None] * 6
    assert q_of(quarantined) == [
        (4, 4, "empty_prompt"),
        (5, 5, "json_decode"),
        (7, 7, "missing_field"),
        (8, 8, "wrong_type"),
    ]
    assert all(q.file == path and q.source == "tiny" and q.raw for q in quarantined)
    assert "'input' is int" in quarantined[3].error
    assert (stats.read, stats.ingested, stats.quarantined) == (10, 6, 4)


def test_ids_stable_across_reads():
    a, _, _ = read_all(AlpacaReader.from_params(), [FIXTURE])
    b, _, _ = read_all(AlpacaReader.from_params(), [FIXTURE])
    assert a["id"].to_list() == b["id"].to_list()
    assert a["content_hash"].to_list() == b["content_hash"].to_list()
    assert a["id"].n_unique() == len(a)


@pytest.mark.parametrize(
    "placeholder", ["", "  ", "<noinput>", "noinput", "N/A", "n/a", "none", "None", "<no input>"]
)
def test_placeholder_inputs_mean_no_input(placeholder):
    p = AlpacaReader.from_params().parse({"instruction": "Do it.", "input": placeholder, "output": "ok"})
    assert p.turns[0] == {"role": "user", "content": "Do it."}


def test_history_must_be_pairs():
    r = AlpacaReader.from_params()
    with pytest.raises(Exception, match="wrong_type: history\\[0\\]"):
        r.parse({"instruction": "a", "output": "b", "history": [["only one"]]})


# --------------------------------------------------------------------------- real files


REAL_ALPACA = {
    # file stem -> (read, ingested); checked by eye: every record of these files is well formed
    "hiyouga__LLaMA-Factory__data__alpaca_en_demo@ff6d4d12.json": (999, 999),
    "hiyouga__LLaMA-Factory__data__alpaca_zh_demo@ff6d4d12.json": (1000, 1000),
    "hiyouga__LLaMA-Factory__data__identity@ff6d4d12.json": (91, 91),
    "hiyouga__LLaMA-Factory__data__lima@72be5266.json": (1029, 1029),
    "hiyouga__LLaMA-Factory__data__oaast_sft_zh@72be5266.json": (689, 689),
    "lm-sys__FastChat__data__alpaca_data_cleaned_1000@8770fd57.json": (1000, 1000),
    "modelscope__data-juicer__demos__process_sft_zh_data__data__alpaca-cot@5bd715d0.jsonl": (50, 50),
}


def test_real_alpaca_files_balance(shared_data):
    files = sorted((shared_data / "alpaca").iterdir())
    assert sorted(f.name for f in files) == sorted(REAL_ALPACA)
    for f in files:
        df, _quarantined, stats = read_all(AlpacaReader.from_params(), [f])
        assert (stats.read, stats.ingested) == REAL_ALPACA[f.name], f.name
        assert stats.read == stats.ingested + stats.quarantined
        assert df["provenance"].struct.field("record").to_list() == list(range(1, stats.read + 1))


def test_real_alpaca_quirks(shared_data):
    lima, _, _ = read_all(
        AlpacaReader.from_params(),
        [shared_data / "alpaca" / "hiyouga__LLaMA-Factory__data__lima@72be5266.json"],
    )
    lens = lima["turns"].list.len()
    assert lens.min() == 2 and lens.max() == 20  # history pairs make records multi-turn
    assert (lens > 2).sum() == 29
    cot, _, _ = read_all(
        AlpacaReader.from_params(),
        [
            shared_data
            / "alpaca"
            / "modelscope__data-juicer__demos__process_sft_zh_data__data__alpaca-cot@5bd715d0.jsonl"
        ],
    )
    meta = json.loads(cot["meta"][0])
    assert set(meta) == {"meta", "text"} and meta["meta"]["Dataset"] == "xP3"
    ident, _, _ = read_all(
        AlpacaReader.from_params(),
        [shared_data / "alpaca" / "hiyouga__LLaMA-Factory__data__identity@ff6d4d12.json"],
    )
    assert "{{name}}" in ident["turns"][0][1]["content"]


# --------------------------------------------------------------------------- crafted bad input


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


GOOD = {"instruction": "Say hi.", "input": "", "output": "hi"}


def test_json_array_ordinals_and_truncation(tmp_path):
    body = json.dumps([GOOD, {"instruction": "x", "output": 3}, GOOD], indent=2)
    f = _write(tmp_path / "arr.json", body[: body.rindex("}") - 4])  # cut inside the last record
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [f])
    assert df["provenance"].struct.field("record").to_list() == [1]
    assert [(q.record, q.reason) for q in quarantined] == [(2, "wrong_type"), (3, "truncated")]


def test_invalid_utf8_line_is_quarantined(tmp_path):
    lines = [
        json.dumps(GOOD).encode(),
        b'{"instruction": "caf\xe9", "output": "x"}',
        json.dumps(GOOD).encode(),
    ]
    f = _write(tmp_path / "bad.jsonl", b"\n".join(lines) + b"\n")
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [f])
    assert len(df) == 2
    assert q_of(quarantined) == [(2, 2, "invalid_utf8")]


def test_wrong_types_and_non_object_records(tmp_path):
    rows = [
        GOOD,
        [1, 2],
        "text",
        {"instruction": ["a"], "output": "b"},
        {"instruction": "a", "output": "b", "system": 1},
    ]
    f = _write(tmp_path / "types.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    df, quarantined, _ = read_all(AlpacaReader.from_params(), [f])
    assert len(df) == 1
    assert q_of(quarantined) == [
        (2, 2, "wrong_type"),
        (3, 3, "wrong_type"),
        (4, 4, "wrong_type"),
        (5, 5, "wrong_type"),
    ]


def test_compressed_copies_read_like_the_plain_file(tmp_path):
    raw = FIXTURE.read_bytes()
    gz = _write(tmp_path / "tiny.jsonl.gz", gzip.compress(raw))
    zst = _write(tmp_path / "tiny.jsonl.zst", zstandard.ZstdCompressor().compress(raw))
    plain, q_plain, _ = read_all(AlpacaReader.from_params(), [FIXTURE])
    for f in (gz, zst):
        df, quarantined, _ = read_all(AlpacaReader.from_params(), [f])
        assert convs(df) == convs(plain)
        assert q_of(quarantined) == q_of(q_plain)


def test_glob_over_two_files(tmp_path):
    _write(tmp_path / "a.jsonl", json.dumps(GOOD) + "\n")
    _write(tmp_path / "b.jsonl", json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    from curate.ingest.base import expand_paths

    paths = expand_paths(str(tmp_path / "*.jsonl"))
    df, _, stats = read_all(AlpacaReader.from_params(), paths)
    assert stats.files == 2 and len(df) == 3
    assert df["provenance"].struct.field("file").to_list() == [paths[0], paths[1], paths[1]]
    assert df["id"].n_unique() == 3  # same content, different files: different ids, same content_hash
    assert df["content_hash"].n_unique() == 1


def test_sharegpt_file_given_to_alpaca_names_the_format(tmp_path):
    rows = [
        {"id": str(i), "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
        for i in range(6)
    ]
    f = _write(tmp_path / "sg.json", json.dumps(rows))
    with pytest.raises(InputError, match=r"sg\.json: records do not look like alpaca but like sharegpt"):
        read_all(AlpacaReader.from_params(), [f])


def test_xml_and_lfs_files_are_input_errors(tmp_path):
    xml = _write(tmp_path / "Posts.xml", '<?xml version="1.0"?>\n<posts><row Id="1"/></posts>\n')
    with pytest.raises(
        InputError, match=r"Posts\.xml: expected alpaca JSON/JSONL but the file looks like xml"
    ):
        read_all(AlpacaReader.from_params(), [xml])
    lfs = _write(
        tmp_path / "lfs.json", "version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n"
    )
    with pytest.raises(InputError, match="git-lfs pointer"):
        read_all(AlpacaReader.from_params(), [lfs])


def test_empty_file_reads_nothing(tmp_path):
    df, quarantined, stats = read_all(AlpacaReader.from_params(), [_write(tmp_path / "e.jsonl", "")])
    assert stats.read == 0 and quarantined == [] and len(df) == 0
