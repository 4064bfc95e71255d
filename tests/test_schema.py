"""The schema module is the one source of truth: the JSON schema file must not drift from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from curate.schema import (
    CONVERSATION,
    SchemaError,
    content_hash,
    json_schema,
    make_batch,
    record_id,
    validate_record,
    validate_turns,
)

ROOT = Path(__file__).resolve().parents[1]


def test_json_schema_file_matches_module():
    on_disk = json.loads((ROOT / "schemas" / "conversation.schema.json").read_text())
    assert on_disk == json_schema(), "run `make schema` to regenerate schemas/conversation.schema.json"


def test_json_schema_covers_every_column():
    js = json_schema()
    assert set(js["properties"]) == set(CONVERSATION)
    assert js["properties"]["turns"]["items"]["properties"]["role"]["enum"] == ["system", "user", "assistant", "tool"]


def test_ids_are_stable_and_distinct():
    assert record_id("oig", "a.jsonl", 3) == record_id("oig", "a.jsonl", 3)
    ids = {record_id("oig", "a.jsonl", i) for i in range(10_000)}
    assert len(ids) == 10_000
    assert record_id("oig", "a.jsonl", 3) != record_id("p3", "a.jsonl", 3)
    assert record_id("oig", "a.jsonl", 3, part=1) != record_id("oig", "a.jsonl", 3, part=2)


def test_content_hash_ignores_case_and_spacing_but_not_roles():
    a = [{"role": "user", "content": "Hello  World"}, {"role": "assistant", "content": "Hi"}]
    b = [{"role": "user", "content": "hello world "}, {"role": "assistant", "content": "hi"}]
    c = [{"role": "assistant", "content": "hello world"}, {"role": "user", "content": "hi"}]
    assert content_hash(a) == content_hash(b) != content_hash(c)


@pytest.mark.parametrize(
    "turns, reason",
    [
        ([], "empty_conversation"),
        ([{"role": "narrator", "content": "x"}], "unknown_role"),
        ([{"role": "user", "content": 5}], "wrong_type"),
    ],
)
def test_validate_turns_rejects_with_stable_reason(turns, reason):
    with pytest.raises(SchemaError, match=f"^{reason}"):
        validate_turns(turns)


def test_make_batch_types_and_validate_record():
    batch = make_batch([{"id": "x", "source": "s", "turns": [{"role": "user", "content": "q"}],
                         "provenance": {"file": "f", "record": 1}, "meta": {"k": "v"}}])
    assert batch.schema == pl.Schema(CONVERSATION)
    row = batch.row(0, named=True)
    assert json.loads(row["meta"]) == {"k": "v"}
    validate_record(row)
    with pytest.raises(SchemaError):
        validate_record({**row, "turns": [{"role": "bot", "content": "x"}]})


def test_importing_curate_and_help_load_no_heavy_libraries():
    code = (
        "import sys, curate, curate.cli, curate.steps.registry as r; r.load_all();"
        "from curate.cli import main;"
        "import contextlib, io;"
        "f = io.StringIO();\n"
        "with contextlib.redirect_stdout(f): main([])\n"
        "heavy = [m for m in ('torch', 'faiss', 'streamlit', 'transformers', 'sentence_transformers', 'datasets')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"
