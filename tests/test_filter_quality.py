"""The recipes' filters against records labelled by a person (../shared/gold), and the gold reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.errors import ConfigError
from curate.gold import evaluate, load_gold, summarize
from curate.pipeline.spec import load_recipe

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT.parent / "shared" / "gold" / "filters-dev.jsonl"
# The targets: at most 2% of good records removed, at least 80% of failed/refusal/degenerate/non-English caught.
MAX_GOOD_REMOVED = 0.02
MIN_BAD_CAUGHT = 0.8


@pytest.mark.parametrize("recipe", ["gpt4all.yaml", "vicuna.yaml"])
def test_recipe_filters_on_labelled_real_records(recipe):
    if not GOLD.is_file():
        pytest.skip(f"no gold labels at {GOLD} (the shared folder is not beside this checkout)")
    gold = load_gold(GOLD)
    s = summarize(evaluate(load_recipe(ROOT / "pipelines" / recipe).steps, gold, recipe=recipe))
    assert s["errors"] == {}
    assert s["good_removed_share"] <= MAX_GOOD_REMOVED, (s["good_removed"], s["wrong_reasons"])
    assert s["bad_caught_share"] >= MIN_BAD_CAUGHT, {k: v["missed"] for k, v in s["recall"].items()}
    # every removal reason is right more often than wrong
    assert all(d["precision"] >= 0.5 for d in s["per_reason"].values()), s["per_reason"]


def _write(tmp_path, rows):
    p = tmp_path / "gold.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return p


def test_evaluate_counts_removals_flags_and_recall(tmp_path):
    from curate.steps.filter.refusal import RefusalFilter

    turns = lambda a: [{"role": "user", "content": "Describe your house."}, {"role": "assistant", "content": a}]
    p = _write(tmp_path, [
        {"uid": "a", "label": "refusal", "turns": turns("As an AI, I don't have a house. Can I help with anything else?")},
        {"uid": "b", "label": "keep", "turns": turns("A small brick house with a red door, a garden of roses "
                                                     "and a kitchen that smells of bread every morning.")},
        {"uid": "c", "label": "keep", "turns": turns("I'm sorry, but I cannot do that.")},
        {"uid": "d", "label": "failed", "turns": turns("Fine.")},
    ])
    gold = load_gold(p)
    s = summarize(evaluate([RefusalFilter.from_params()], gold))
    assert s["per_reason"]["filter.refusal: refusal_ai_disclaimer"]["removed"] == 1
    assert s["per_reason"]["filter.refusal: refusal_cannot_comply"]["precision"] == 0.0
    assert s["good_removed"] == 1 and s["good_total"] == 2
    assert s["recall"]["refusal"]["recall"] == 1.0 and s["recall"]["failed"]["missed"] == ["d"]
    assert s["bad_caught"] == 1 and s["bad_total"] == 2
    assert s["wrong_reasons"] == [("filter.refusal: refusal_cannot_comply", 1)]


@pytest.mark.parametrize("line, msg", [
    ("{not json", "gold.jsonl:2: not a JSON line"),
    ('{"uid": "x", "label": "meh", "turns": [{"role": "user", "content": "q"}]}', "label 'meh'"),
    ('{"uid": "x", "label": "keep", "turns": [{"role": "bot", "content": "q"}]}', "gold.jsonl:2: bad turns"),
    ('{"uid": "ok", "label": "keep", "turns": [{"role": "user", "content": "q"}]}', "uid 'ok' appears twice"),
])
def test_load_gold_names_the_line(tmp_path, line, msg):
    first = {"uid": "ok", "label": "keep", "turns": [{"role": "user", "content": "q"}]}
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(")):
        load_gold(_write(tmp_path, [first, line]))
