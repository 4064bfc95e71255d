"""Every registered step follows the conventions of STYLE.md section 4/9 (covers all engineers' steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.steps.registry import all_steps

TESTS = Path(__file__).resolve().parents[1]
STEPS = all_steps()


def _test_sources() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py") if p.name != Path(__file__).name
    )


@pytest.mark.parametrize("key", sorted(STEPS))
def test_step_conventions(key):
    cls = STEPS[key]
    assert (cls.__doc__ or "").strip(), f"{key}: no class docstring"
    assert "Reasons:" in cls.__doc__ or cls.kind == "read", f"{key}: docstring has no `Reasons:` line"
    assert cls.Params.model_config.get("extra") == "forbid", f"{key}: Params must forbid extras"
    assert key.split(".", 1)[0] == cls.kind, f"{key}: key prefix is not kind {cls.kind!r}"
    required = [n for n, f in cls.Params.model_fields.items() if f.is_required()]
    if not required:
        step = cls.from_params()
        assert step.id == key
    for name, field in cls.Params.model_fields.items():
        assert field.description, f"{key}: param {name!r} has no Field(description=...)"


@pytest.mark.parametrize("key", sorted(STEPS))
def test_step_has_a_test_module(key):
    text = _test_sources()
    cls = STEPS[key]
    assert key in text or cls.__name__ in text, f"{key} ({cls.__name__}) is not mentioned in any test module"
