"""Bad recipes, --set values and run options: one clear line naming the file or argument, never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from curate.cli import main
from curate.pipeline.spec import SpecError, apply_overrides, load_recipe

BOMB = """\
name: bomb
sources: [{id: a, format: alpaca, path: x.json}]
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
description: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _source(tmp_path: Path) -> str:
    src = tmp_path / "a.jsonl"
    src.write_text('{"instruction": "Say hello to the reader", "input": "", "output": "Hello, reader."}\n')
    return str(src)


@pytest.mark.timeout(20)
def test_yaml_alias_bomb_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bomb.yaml"
    p.write_text(BOMB)
    assert len(BOMB) < 600
    t0 = time.perf_counter()
    assert main(["validate", str(p)]) == 2
    assert time.perf_counter() - t0 < 10  # a hang guard, generous for a loaded CI machine (0.8 s alone)
    assert _err(capsys) == (
        f"error: {p}: the YAML expands to more than 100,000 values (aliases repeat nested anchors: an alias "
        "bomb?); write the values out or use fewer nested aliases\n"
    )


@pytest.mark.timeout(20)
def test_alias_bomb_in_a_set_value_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"name": "r", "sources": [{"id": "a", "format": "alpaca", "path": _source(tmp_path)}]}))
    value = "[" + ",".join(["&a [1,1,1,1,1,1,1,1,1,1]"] + ["*a"] * 20) + "]"
    nested = "description=" + "[" + ",".join(["&b " + value] + ["*b"] * 1000) + "]"
    t0 = time.perf_counter()
    assert main(["validate", str(p), "--set", nested]) == 2
    assert time.perf_counter() - t0 < 10  # a hang guard, generous for a loaded CI machine (0.8 s alone)
    assert "the YAML expands to more than 100,000 values" in _err(capsys)


def test_duplicate_key_is_refused_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(
        "name: r\n"
        f"sources: [{{id: a, format: alpaca, path: {_source(tmp_path)}}}]\n"
        "steps:\n"
        "  - use: filter.length\n"
        "limits: {max_quarantine_frac: 0.1}\n"
        "steps:\n"
        "  - use: dedup.exact\n"
    )
    assert main(["validate", str(p)]) == 2
    assert _err(capsys) == (
        f"error: {p}: line 6, column 1: duplicate key 'steps' (first at line 3); YAML would keep only the last\n"
    )


def test_duplicate_key_inside_params(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("name: r\nsources: []\nsteps:\n  - use: filter.length\n    params: {min_chars: 3, min_chars: 4}\n")
    with pytest.raises(SpecError) as e:
        load_recipe(p)
    assert str(e.value) == f"{p}: line 5, column 28: duplicate key 'min_chars' (first at line 5); YAML would keep only the last"


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(
        "name: r\n"
        f"sources: [{{id: a, format: alpaca, path: {_source(tmp_path)}}}]\n"
        "x-base: &base {min_chars: 3, max_chars: 100}\n"
    )
    with pytest.raises(SpecError, match="x-base: unknown key"):  # parsed fine; the key is what is wrong
        load_recipe(p)


def test_python_tag_in_a_recipe_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("name: !!python/object/apply:os.system [echo hi]\n")
    assert main(["validate", str(p)]) == 2
    assert _err(capsys) == (
        f"error: {p}: line 1, column 7: YAML tag !!python/object/apply:os.system is not allowed "
        "(plain values only: no !!python or custom tags)\n"
    )


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("name: r\ndescription: &d [1, *d]\n")
    with pytest.raises(SpecError) as e:
        load_recipe(p)
    assert str(e.value) == f"{p}: line 2: a recursive alias (a node that contains itself)"


def test_a_data_file_given_as_recipe(tmp_path: Path) -> None:
    p = tmp_path / "big.jsonl"
    p.write_bytes(b"{}\n" * 400_000)
    with pytest.raises(SpecError) as e:
        load_recipe(p)
    assert str(e.value) == f"{p}: 1,200,000 bytes, more than a recipe holds (limit 1,048,576); is this a data file?"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=[1", ("--set 'seed=[1': line 1, column 3: YAML syntax error: expected ',' or ']', but got "
                    "'<stream end>' (while parsing a flow sequence)")),
        ("seed=!!python/object/apply:os.system [echo hi]",
         ("--set 'seed=!!python/object/apply:os.system [echo hi]': line 1, column 1: YAML tag "
         "!!python/object/apply:os.system is not allowed (plain values only: no !!python or custom tags)")),
        ("seed.x=1", ("command line: --set seed.x: seed is 13, not a mapping, so nothing can be set inside it; "
                     "set seed itself instead")),
        ("name.first=a", ("command line: --set name.first: name is 'r', not a mapping, so nothing can be set "
                         "inside it; set name itself instead")),
        ("=3", "command line: --set '=3': the key is empty or has an empty part; write e.g. seed=3"),
        ("seed=3\nseed: 4", ("--set 'seed=3\\nseed: 4': line 2, column 5: YAML syntax error: mapping values are "
                            "not allowed here")),
    ],
)
def test_bad_set_values_name_the_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, message: str
) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"name": "r", "seed": 13,
                                 "sources": [{"id": "a", "format": "alpaca", "path": _source(tmp_path)}]}))
    assert main(["validate", str(p), "--set", override]) == 2
    assert _err(capsys) == f"error: {message}\n"


def test_set_values_still_work() -> None:
    raw = {"name": "r", "seed": 1, "steps": [{"use": "filter.length"}]}
    out = apply_overrides(raw, ["seed=3", "steps.filter_length.params.min_chars=9", "description="])
    assert out["seed"] == 3 and out["steps"][0]["params"] == {"min_chars": 9} and out["description"] == ""


def test_validate_names_a_source_that_matches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "r.yaml"
    missing = tmp_path / "raw" / "*.jsonl"
    p.write_text(yaml.safe_dump({"name": "r", "sources": [
        {"id": "a", "format": "alpaca", "path": _source(tmp_path)},
        {"id": "b", "format": "alpaca", "path": [_source(tmp_path), str(tmp_path / "gone.json")]},
        {"id": "c", "format": "alpaca", "path": str(missing)},
    ]}))
    assert main(["validate", str(p)]) == 2
    assert _err(capsys) == (
        f"error: {p}: \n"
        f"  sources[1].path[1] (source b): {_input_error(tmp_path / 'gone.json')}\n"
        f"  sources[2].path (source c): {_input_error(missing)}\n"
    )
    assert str(missing) in _input_error(missing) and "no files match" in _input_error(missing)


def _input_error(path: Path) -> str:
    """The reader's own message for a path that matches nothing (the ingest module owns its wording)."""
    from curate.ingest.base import InputError, expand_paths

    with pytest.raises(InputError) as e:
        expand_paths([str(path)])
    return str(e.value)


def _export_recipe(tmp_path: Path, target: Path) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"name": "r", "sources": [{"id": "a", "format": "alpaca", "path": _source(tmp_path)}],
                                 "steps": [{"use": "filter.length", "params": {"min_chars": 1}},
                                           {"use": "write.hub_dataset", "params": {"path": str(target)}}]}))
    return p


def test_validate_and_run_check_the_write_target_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "thesis"
    target.mkdir()
    (target / "thesis.tex").write_text("\\documentclass{article}")
    p = _export_recipe(tmp_path, target)
    expected = (
        f"error: {p}: steps[1].params.path (write_hub_dataset): {target} exists and is not a curate export "
        "(no export.json); refusing to replace it even with --overwrite. Choose an empty or new folder.\n"
    )
    assert main(["validate", str(p)]) == 2
    assert _err(capsys) == expected
    run_dir = tmp_path / "run"
    assert main(["run", str(p), "--run-dir", str(run_dir), "--quiet"]) == 2
    assert _err(capsys).endswith(expected)
    assert not run_dir.exists()  # refused before any step ran
    assert (target / "thesis.tex").exists()


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_limit_must_be_at_least_one(tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str) -> None:
    p = _export_recipe(tmp_path, tmp_path / "out")
    assert main(["run", str(p), "--run-dir", str(tmp_path / "run"), "--limit", limit]) == 2
    assert _err(capsys) == f"error: --limit must be a whole number >= 1 (records per source), got {limit}\n"
    assert not (tmp_path / "run").exists()


def test_recipe_path_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert _err(capsys) == f"error: {tmp_path}: is a folder, not a recipe file; check the path (recipes live in pipelines/)\n"
