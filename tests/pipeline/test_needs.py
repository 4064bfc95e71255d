"""Steps declare the run artifacts they need and provide; a recipe in the wrong order fails at validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from curate import layout as L
from curate.cli import main
from curate.pipeline.spec import SpecError, build_plan
from curate.steps.registry import all_steps

ROOT = Path(__file__).resolve().parents[2]
SOURCE = {"id": "a", "format": "alpaca", "path": str(ROOT / "tests/fixtures/alpaca/tiny.jsonl")}


def _recipe(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"name": "needs", "sources": [SOURCE], "steps": list(steps)}


def test_semantic_dedup_before_embed_names_the_step_and_the_fix() -> None:
    with pytest.raises(SpecError) as exc:
        build_plan(_recipe({"use": "dedup.semantic"}, {"use": "embed.sentence_transformer"}))
    assert exc.value.problems == [
        ("steps[0].use: dedup.semantic (dedup_semantic) needs embeddings.npy, embedding_ids.parquet, which no "
         "earlier step writes; move embed.sentence_transformer (steps[1]) before it"),
    ]


def test_a_need_nobody_provides_says_which_step_to_add() -> None:
    with pytest.raises(SpecError, match=r"steps\[1\]\.use: score\.map \(score_map\) needs embeddings\.npy.*"
                                        r"add `embed\.sentence_transformer`"):
        build_plan(_recipe({"use": "filter.length"}, {"use": "score.map"}))


def test_needs_that_depend_on_params() -> None:
    build_plan(_recipe({"use": "filter.source"}))  # no drop_if: needs nothing
    with pytest.raises(SpecError, match=r"filter\.source \(filter_source\) needs diversity\.json.*`score\.diversity`"):
        build_plan(_recipe({"use": "filter.source", "params": {"drop_if": {"vendi_below": 2.0}}}))
    build_plan(_recipe({"use": "score.diversity"},
                       {"use": "filter.source", "params": {"drop_if": {"vendi_below": 2.0}}}))
    build_plan(_recipe({"use": "embed.sentence_transformer"}, {"use": "dedup.semantic", "params": {"mode": "knn"}}))


def test_the_shipped_recipes_are_in_order() -> None:
    for recipe in sorted((ROOT / "pipelines").glob("*.yaml")):
        build_plan(yaml.safe_load(recipe.read_text()), origin=str(recipe))


def test_curate_validate_fails_before_reading_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe({"use": "score.map"}, {"use": "embed.sentence_transformer"})))
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "steps[0].use: score.map (score_map) needs embeddings.npy" in err
    assert "move embed.sentence_transformer (steps[1]) before it" in err


def test_every_need_has_a_provider_and_is_declared() -> None:
    provided = {a.name for cls in all_steps().values() for a in cls.provides}
    for key, cls in all_steps().items():
        for a in (*cls.needs, *cls.provides):
            assert a in L.ARTIFACTS, f"{key}: {a.name} is not declared in curate.layout"
        for a in cls.needs:
            assert a.name in provided, f"{key} needs {a.name}, which no registered step provides"
    assert all_steps()["dedup.semantic"].needs == (L.EMBEDDINGS, L.EMBEDDING_IDS)
    assert L.EMBEDDINGS in all_steps()["embed.sentence_transformer"].provides
    assert all_steps()["label.apply"].needs == ()
