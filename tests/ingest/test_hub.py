"""hub: sources: paths pass through, offline gives an actionable InputError, records reach parse()."""

from __future__ import annotations

import sys
import types

import pytest

from curate.ingest.base import InputError, expand_paths, read_batches
from curate.ingest.hub import HubParams, hub_name, iter_hub_records
from curate.ingest.oasst import OasstReader
from curate.ingest.stackexchange import StackExchangeReader


def test_expand_paths_lets_hub_names_through(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text("{}\n")
    assert expand_paths(["hub:bigscience/P3", str(f)]) == ["hub:bigscience/P3", str(f)]


def test_offline_error_says_how_to_get_the_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = HubParams(hub_config="adversarial_qa_dbert_answer_the_following_q", hub_split="validation")
    with pytest.raises(InputError) as err:
        list(iter_hub_records("hub:bigscience/P3", params))
    msg = str(err.value)
    assert msg.startswith("cannot load hub dataset bigscience/P3 offline")
    assert "load_dataset('bigscience/P3', 'adversarial_qa_dbert_answer_the_following_q', split='validation')" in msg
    assert "then point path: at the local files" in msg


def test_offline_error_through_a_reader(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    reader = OasstReader.from_params()
    with pytest.raises(InputError, match="cannot load hub dataset OpenAssistant/oasst1 offline"):
        list(read_batches(reader, expand_paths("hub:OpenAssistant/oasst1"), "oa"))


def test_network_failure_maps_to_the_same_error(monkeypatch):
    """No offline flag, but the network is down: datasets raises ConnectionError."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    fake = types.ModuleType("datasets")

    def load_dataset(*a, **k):
        raise ConnectionError("Couldn't reach 'x/y' on the Hub")

    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(InputError, match=r"cannot load hub dataset x/y offline \(ConnectionError"):
        list(iter_hub_records("hub:x/y", None))


def test_streamed_records_go_through_parse(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    calls = {}
    fake = types.ModuleType("datasets")

    def load_dataset(name, config, split, streaming):
        calls.update(name=name, config=config, split=split, streaming=streaming)
        return iter([
            {"message_tree_id": "t", "prompt": {"message_id": "a", "text": "hi", "role": "prompter",
                                                 "replies": [{"message_id": "b", "text": "hello", "role": "assistant"}]}},
            {"message_tree_id": "u", "prompt": {"message_id": "c", "text": "x", "role": "robot", "replies": []}},
        ])

    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    rows = [r for b in read_batches(OasstReader.from_params(), ["hub:OpenAssistant/oasst1"], "oa")
            for r in b.iter_rows(named=True)]
    assert calls == {"name": "OpenAssistant/oasst1", "config": None, "split": "train", "streaming": True}
    assert [t["content"] for t in rows[0]["turns"]] == ["hi", "hello"]
    assert rows[0]["provenance"] == {"file": "hub:OpenAssistant/oasst1", "record": 1}


def test_bad_hub_names_and_unsupported_readers():
    with pytest.raises(InputError, match="hub:ORG/NAME"):
        hub_name("hub:")
    with pytest.raises(InputError, match="not supported"):
        list(read_batches(StackExchangeReader.from_params(), ["hub:x/y"], "se"))
