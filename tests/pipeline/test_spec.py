"""Recipe validation: every mistake is found before data is read, and named by its YAML location."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from curate.cli import main
from curate.pipeline.spec import SpecError, apply_overrides, build_plan, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def _recipe(**kw):
    base = {"name": "r", "sources": [{"id": "a", "format": "alpaca", "path": "x.json"}],
            "steps": [{"use": "filter.length", "params": {"min_chars": 5}}]}
    base.update(kw)
    return base


def _problems(raw) -> str:
    with pytest.raises(SpecError) as e:
        build_plan(raw)
    return str(e.value)


def test_unknown_param_names_location_and_suggests():
    msg = _problems(_recipe(steps=[{"use": "filter.length"}, {"use": "filter.length", "id": "strict",
                                                                 "params": {"min_charz": 3}}]))
    assert "steps[1].params.min_charz: unknown parameter" in msg
    assert "did you mean 'min_chars'" in msg


def test_unknown_step_and_unknown_key():
    msg = _problems(_recipe(steps=[{"use": "filter.lenght"}], extra_key=1))
    assert "extra_key: unknown key" in msg
    msg = _problems(_recipe(steps=[{"use": "filter.lenght"}]))
    assert "steps[0].use: unknown step 'filter.lenght'; did you mean filter.length" in msg


def test_wrong_type_and_duplicate_id():
    msg = _problems(_recipe(steps=[{"use": "filter.length", "params": {"min_chars": "many"}}]))
    assert "steps[0].params.min_chars:" in msg and "'many'" in msg
    msg = _problems(_recipe(steps=[{"use": "filter.length"}, {"use": "filter.length"}]))
    assert "steps[1].id: duplicate step id 'filter.length'" in msg


def test_unknown_reader_and_reader_params():
    msg = _problems(_recipe(sources=[{"id": "a", "format": "alpacca", "path": "x"}]))
    assert "sources[0].format: unknown step 'read.alpacca'" in msg
    msg = _problems(_recipe(sources=[{"id": "a", "format": "alpaca", "path": "x", "params": {"bogus": 1}}]))
    assert "sources[0].params.bogus: unknown parameter" in msg


def test_several_problems_reported_together():
    msg = _problems(_recipe(steps=[{"use": "nope.x"}, {"use": "filter.length", "params": {"x": 1}}]))
    assert "steps[0].use" in msg and "steps[1].params.x" in msg


def test_defaults_are_filled_in_resolved_recipe():
    plan = build_plan(_recipe())
    res = plan.resolved()
    assert res["steps"][0]["id"] == "filter_length"
    assert res["steps"][0]["params"]["min_chars"] == 5 and "max_chars" in res["steps"][0]["params"]
    assert len(plan.recipe_hash()) == 16


def test_overrides_address_sources_and_steps_by_id():
    raw = _recipe()
    out = apply_overrides(raw, ["sources.a.path=demo/*.json", "steps.filter.length.params.min_chars=9",
                                "seed=3", "limits.max_quarantine_frac=0.5"])
    assert out["sources"][0]["path"] == "demo/*.json"
    assert out["seed"] == 3 and out["limits"]["max_quarantine_frac"] == 0.5
    with pytest.raises(SpecError, match="no entry with id 'zz'"):
        apply_overrides(raw, ["sources.zz.path=x"])
    assert raw["sources"][0]["path"] == "x.json"  # the input is not mutated


def test_override_by_step_id(tmp_path):
    raw = _recipe(steps=[{"use": "filter.length", "id": "strict"}])
    out = apply_overrides(raw, ["steps.strict.params.min_chars=42"])
    assert build_plan(out).steps[0].params.min_chars == 42


def test_validate_command_exit_codes(tmp_path, capsys):
    (tmp_path / "x.json").write_text("[]")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_recipe(sources=[{"id": "a", "format": "alpaca", "path": str(tmp_path / "x.json")}])))
    assert main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_recipe(steps=[{"use": "filter.length", "params": {"treshold": 1}}])))
    assert main(["validate", str(bad)]) == 2
    assert "steps[0].params.treshold: unknown parameter" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2


def test_yaml_syntax_error_is_reported(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="YAML syntax error"):
        load_recipe(p)


@pytest.mark.parametrize("recipe", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(recipe):
    load_recipe(recipe)


def test_run_with_typo_fails_before_reading_data(tmp_path, capsys):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(_recipe(steps=[{"use": "filter.length", "params": {"min_charz": 1}}])))
    # the source path does not exist: a validation error must come first
    assert main(["run", str(p), "--run-dir", str(tmp_path / "run")]) == 2
    assert "min_charz" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
