"""generate.instructions (InstructionGenerator): Alpaca's parsing and rules, the ROUGE-L pool, a run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from curate.errors import ConfigError
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan, load_recipe
from curate.steps.generate.instructions import (
    RougePool,
    Task,
    encode_prompt,
    parse_tasks,
    reject_reason,
    split_prompt,
    tokens_of,
)

from ._fake_llm import FakeLLM, Reply

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "data" / "seed_tasks" / "seed_tasks.jsonl"

ANSWER = """4. Instruction: {topic}
4. Input:
<noinput>
4. Output:
An answer about it.
###
5. Instruction: Convert the given temperature from Celsius to Fahrenheit and show the formula.
5. Input:
30 degrees Celsius
5. Output:
86 degrees Fahrenheit.
###
6. Instruction: Draw a picture of a cat sitting on a wall.
6. Input:
<noinput>
6. Output:
(a drawing)
###
7. Instruction: Write a program that sorts a list of numbers.
7. Input:
[3, 1, 2]
7. Output:
sorted([3, 1, 2])
###
8. Instruction: Hello there.
8. Input:
<noinput>
8. Output:
Hi.
###
9. This chunk lost its labels
###
10. Instruction: {second}
10. Input:
The meeting moved to Friday.
10. Output:
Noted."""
TOPICS = ["Describe how bees make honey for a school newsletter.", "Explain why bread rises when it bakes.",
          "Compare trains and planes for a trip of 500 kilometres.", "List three ways to save water at home."]
SECOND = ["Reply to the message below in a friendly tone.", "Turn this note into a formal announcement.",
          "Rewrite the sentence as a question.", "Translate the sentence into plain English for a child."]


def reply(body, n):
    i = (n - 1) % len(TOPICS)
    return Reply(text=ANSWER.format(topic=TOPICS[i], second=SECOND[i]))


@pytest.fixture
def fake():
    with FakeLLM() as f:
        f.reply = reply
        yield f


def test_parse_tasks_reads_alpaca_lists():
    tasks, bad = parse_tasks(ANSWER.format(topic="Name a fruit that is red.", second="Say it twice."), truncated=False)
    assert bad == 1 and len(tasks) == 6
    assert tasks[0] == Task("Name a fruit that is red.", "", "An answer about it.")
    assert tasks[1].input == "30 degrees Celsius"
    cut, _ = parse_tasks(ANSWER.format(topic="t", second="s"), truncated=True)
    assert len(cut) == 5  # the last chunk of an answer cut at max_tokens may itself be cut


def test_alpacas_rules():
    ok = Task("Explain why bread rises when it bakes.", "", "Yeast makes gas.")
    assert reject_reason(ok) is None
    assert reject_reason(Task("Hello there.", "", "Hi")) == "instruction_length"
    assert reject_reason(Task("Draw a picture of a cat sitting on a wall.", "", "x")) == "non_text_task"
    assert reject_reason(Task("Write a program that sorts a list.", "", "x")) == "write_a_program"
    assert reject_reason(Task("- List three colours please now", "", "x")) == "starts_with_punctuation"
    assert reject_reason(Task("Écris trois couleurs en français maintenant", "", "x")) == "non_english"
    assert reject_reason(Task("Explain why bread rises when it bakes.", "", " ")) == "empty_output"


def test_rouge_pool_uses_filter_rouge_ls_measure():
    pool = RougePool(0.7)
    a, b, c = tokens_of(["Convert the given temperature from Celsius to Fahrenheit and show the formula you used.",
                         "Convert the given temperature from Celsius to Fahrenheit and show the formula.",
                         "Describe how bees make honey."])
    pool.add(a)
    assert pool.max_f(b) >= 0.7 > pool.max_f(c)


def test_prompt_and_seed_split():
    assert split_prompt("Fix the grammar.\n\nTheir going.") == ("Fix the grammar.", "Their going.")
    text = encode_prompt([Task("Do A.", "", "a"), Task("Do B.", "in", "b")], total=20)
    assert "1. Instruction: Do A.\n1. Input:\n<noinput>\n1. Output:\na" in text
    assert "tasks 3 to 20" in text


def recipe(tmp_path, fake, seeds=SEEDS, **params):
    return {"name": "si", "seed": 7, "sources": [{"id": "seed", "format": "alpaca", "path": str(seeds)}],
            "steps": [{"use": "generate.instructions",
                       # one request at a time: the fake answers by arrival order, and arrival must be request order
                       "params": {"llm": fake.llm(max_concurrency=1), "num_instructions": 5, "requests_per_round": 2,
                                  "keep_seeds": False, **params}}],
            "limits": {"max_quarantine_frac": 0.5}}


def test_self_instruct_run_from_the_seed_file(tmp_path, fake):
    res = run_pipeline(build_plan(recipe(tmp_path, fake)), tmp_path / "runs" / "si" / "1", progress=False)
    rep = next(s for s in res.report["steps"] if s["step_id"] == "generate_instructions")
    assert rep["n_in"] == 20 and rep["rejected"] == {"seed_task": 20} and rep["n_added"] == 5 and rep["n_out"] == 5
    ex = rep["extra"]
    # 4 requests: each gives 2 new instructions (its topic, its second) until 5 are kept
    assert ex["requests_sent"] == 4 and ex["generated"] == 5 and ex["llm_requests"] == 4
    # request 3 gives the 5th instruction first; the rest of it and request 4 are not looked at
    assert ex["rejected_rouge_l"] == 2 and ex["rejected_non_text_task"] == 2 and ex["rejected_unparsed"] == 3
    assert ex["rejected_write_a_program"] == 2 and ex["rejected_instruction_length"] == 2
    kept = pl.read_parquet(res.run_dir / "01_generate_instructions" / "kept.parquet")
    assert kept["source"].unique().to_list() == ["self_instruct"]
    users = kept["turns"].list.first().struct.field("content").to_list()
    assert users[:3] == [TOPICS[0], f"{SECOND[0]}\n\nThe meeting moved to Friday.", TOPICS[1]]
    assert json.loads(kept["meta"][1]) == {"instruction": SECOND[0], "input": "The meeting moved to Friday."}
    assert kept["generate_instructions.max_rouge_l"].max() < 0.7
    assert kept["id"].n_unique() == 5
    # each request shows 3 seed tasks, drawn with the run's seed, and asks for the rest of 20
    prompt = fake.requests[0]["messages"][0]["content"]
    assert len(re.findall(r"^\d+\. Instruction: ", prompt, re.MULTILINE)) == 3 and "tasks 4 to 20" in prompt
    assert fake.requests[0]["temperature"] == 1.0 and fake.requests[0]["stop"] == ["\n21."]
    t = res.report["totals"]
    assert t["read"] + t["added"] == t["kept"] + t["removed"] + t["quarantined"]
    # the same recipe again: the same prompts, all answered by the cache
    n = len(fake.requests)
    again = run_pipeline(build_plan(recipe(tmp_path, fake)), tmp_path / "runs" / "si" / "2", progress=False)
    assert len(fake.requests) == n
    kept2 = pl.read_parquet(again.run_dir / "01_generate_instructions" / "kept.parquet")
    assert kept2["id"].to_list() == kept["id"].to_list()


def test_malformed_seed_lines_are_quarantined_and_too_few_seeds_refused(tmp_path, fake):
    seeds = tmp_path / "seeds.jsonl"
    lines = SEEDS.read_text().splitlines()[:2]
    seeds.write_text("\n".join([*lines, "{not json", json.dumps({"instruction": "x"})]) + "\n")
    with pytest.raises(ConfigError, match=r"2 seed tasks in the input.*num_prompt_tasks=3"):
        run_pipeline(build_plan(recipe(tmp_path, fake, seeds=seeds)), tmp_path / "runs" / "si" / "1",
                     progress=False)
    res = run_pipeline(build_plan(recipe(tmp_path, fake, seeds=seeds, num_prompt_tasks=2, num_instructions=1)),
                       tmp_path / "runs" / "si" / "2", progress=False)
    assert res.report["totals"]["quarantined"] == 2 and res.report["totals"]["kept"] == 1


def test_failing_endpoint_is_a_clear_error(tmp_path, fake):
    fake.reply = lambda body, n: Reply(status=500)
    with pytest.raises(ConfigError, match=r"all 2 requests to .* failed"):
        run_pipeline(build_plan(recipe(tmp_path, fake, max_requests=2)), tmp_path / "runs" / "si" / "1",
                     progress=False)


def test_the_recipe_validates():
    plan = load_recipe(ROOT / "pipelines" / "alpaca-self-instruct.yaml")
    assert plan.steps[0].key == "generate.instructions" and plan.steps[0].params.max_rouge_l == 0.7
