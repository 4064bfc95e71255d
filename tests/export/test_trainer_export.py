from __future__ import annotations

import json
from pathlib import Path

from curate.export.run import ExportOptions, export_run
from curate.export.splits import parse_splits


def test_alpaca_skip_mode_reports_and_lists_what_it_left_out(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpaca"
    res = export_run(run_dir, out, ExportOptions(fmt="alpaca", alpaca_multiturn="skip"))
    assert res.skipped == {"tool_turn": 1, "ends_with_user": 1, "multi_turn": 1}
    assert res.n_exported == 13 and "skipped 3 that alpaca cannot hold" in res.summary()
    listed = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert sorted(r["reason"] for r in listed) == ["ends_with_user", "multi_turn", "tool_turn"]
    assert {r["source"] for r in listed} == {"vicuna"}
    records = json.loads((out / "train.json").read_text())
    assert len(records) == 13 and all("history" not in r for r in records)
    card = (out / "README.md").read_text()
    assert "1 kept conversations are not in this export: has a tool turn" in card
    assert "13 (16 kept by the run; 3 could not be written as Alpaca JSON" in card
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["mini_export_train"]["columns"]["history"] == "history"
    assert json.loads((out / "export.json").read_text())["skipped"] == res.skipped


def test_text_chatml_jsonl_per_split(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "text"
    res = export_run(run_dir, out, ExportOptions(fmt="text", template="chatml",
                                                 splits=parse_splits("train=rest,validation=4")))
    assert {s.name: s.rows for s in res.splits} == {"train": 12, "validation": 4} and res.skipped == {}
    lines = (out / "validation.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    assert len(texts) == 4 and all(t.startswith("<|im_start|>") and t.endswith("<|im_end|>\n") for t in texts)
    tool = [json.loads(x)["text"] for x in (out / "train.jsonl").read_text().splitlines() + lines]
    assert sum("<|im_start|>tool\n" in t for t in tool) == 1
    assert not (out / "dataset_info.json").exists()


def test_sharegpt_file_is_a_json_array_with_llamafactory_tags(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sg"
    export_run(run_dir, out, ExportOptions(fmt="sharegpt"))
    records = json.loads((out / "train.json").read_text())
    assert len(records) == 16
    froms = {m["from"] for r in records for m in r["conversations"]}
    assert froms == {"system", "human", "gpt", "observation"}
    assert json.loads((out / "dataset_info.json").read_text())["mini_export_train"]["tags"]["observation_tag"] == "observation"
