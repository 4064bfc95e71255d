"""The Ray executor gives the local executor's results, byte for byte, on a recipe of real steps.

One local Ray cluster for the session (2 CPUs, no dashboard, its own temp dir, no usage stats).
The recipe: clean.normalize, filter.length, filter.refusal, clean.html_to_markdown (quarantines HTML
over max_chars), dedup.exact (global: driver), filter.source (parallel=False: driver), over 3,000
generated Alpaca records in batches of 250, so every batch step runs as a dozen Ray tasks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from curate.errors import ConfigError, MissingResourceError
from curate.layout import RunLayout
from curate.pipeline.runner import Runner, run_pipeline
from curate.pipeline.spec import build_plan
from curate.rundir import RunDir

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed: pip install 'curate[ray]'")

N_RECORDS = 3_000
BATCH = 250
BATCH_STEPS = ["clean_normalize", "filter_length", "filter_refusal", "clean_html_to_markdown"]


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    if not HAVE_RAY:
        pytest.skip("ray is not installed: pip install 'curate[ray]'")
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(tmp_path_factory.mktemp("ray")),
             log_to_driver=False)
    yield ray
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _write_records(path: Path, n: int, source_tag: str = "") -> None:
    """Alpaca records with planted cases: short, refusal, messy whitespace, HTML (some too large), dups."""
    lines = []
    for i in range(n):
        q = f"{source_tag}Question {i} about topic {i % 37}: how does part {i % 11} work?"
        a = f"Part {i % 11} works by step {i}. " + "It is simple and it works well. " * (i % 5)
        k = i % 20
        if k == 1:
            q, a = "hi", "yo"  # too_short
        elif k == 2:
            a = "As an AI language model, I cannot answer questions about this topic."  # refusal
        elif k == 3:
            a = f"<p>Part <b>{i % 11}</b> works by <code>step {i}</code>.</p><ul><li>one</li><li>two</li></ul>"
        elif k == 4 and i % 3 == 0:
            a = "<div>" + f"<p>paragraph {i} of a page scrape</p>" * 40 + "</div>"  # html_too_large: quarantined
        elif k == 5:
            a = f"Part  {i % 11}\r\n\r\n\r\n\r\nworks\u200b by   step {i}.  "  # normalize rewrites it
        elif k == 6 and i % 7 == 0:
            q, a = "What is a duplicate?", "A record that repeats another one exactly."  # dedup.exact
        lines.append(json.dumps({"instruction": q, "input": "", "output": a}))
    lines.append("{broken json")
    path.write_text("\n".join(lines) + "\n")


def _recipe(tmp_path: Path, kind: str, batch_size: int = BATCH, workers: int = 2) -> dict:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    if not a.exists():
        _write_records(a, N_RECORDS)
        _write_records(b, 200, source_tag="B ")
    return {
        "name": "ray_eq", "seed": 7,
        "sources": [{"id": "a", "format": "alpaca", "path": str(a)},
                    {"id": "b", "format": "alpaca", "path": str(b)}],
        "steps": [
            {"use": "clean.normalize"},
            {"use": "filter.length", "params": {"min_chars": 20}},
            {"use": "filter.refusal"},
            {"use": "clean.html_to_markdown", "params": {"max_chars": 600}},
            {"use": "dedup.exact"},
            {"use": "filter.source", "params": {"drop_sources": ["b"]}},
        ],
        "limits": {"max_quarantine_frac": 0.05},
        "executor": {"kind": kind, "batch_size": batch_size, "workers": workers},
    }


def _files(run: Path) -> dict[str, bytes]:
    """Every output a step writes: kept Parquet per step, ledger, quarantine."""
    lay = RunLayout(run)
    files = [f.kept for f in lay.step_folders()] + lay.ledger_files() + lay.quarantine_files()
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(files) if p.is_file()}


def _comparable(report: dict) -> dict:
    steps = [{k: v for k, v in s.items() if k != "seconds"} for s in report["steps"]]
    return {"steps": steps, "sources": report["sources"], "totals": report["totals"]}


@pytest.fixture
def via_ray(monkeypatch):
    """Record which steps went through the Ray executor, and how many batches each sent."""
    from curate.pipeline.ray_executor import RayExecutor

    seen: dict[str, int] = {}
    orig = RayExecutor.outcomes

    def spy(self, step, batches, **kw):
        seen.setdefault(step.id, 0)
        for oc in orig(self, step, batches, **kw):
            seen[step.id] += 1
            yield oc

    monkeypatch.setattr(RayExecutor, "outcomes", spy)
    return seen


@needs_ray
def test_ray_run_equals_local_run(tmp_path, ray_cluster, via_ray):
    local = run_pipeline(build_plan(_recipe(tmp_path, "local")), tmp_path / "local", progress=False)
    run_pipeline(build_plan(_recipe(tmp_path, "ray")), tmp_path / "ray", progress=False)

    # batch steps ran as Ray tasks, several batches each; the global and driver-only steps did not
    n_batches = -(-local.reports[0].n_out // BATCH)
    assert set(via_ray) == set(BATCH_STEPS)
    assert via_ray["clean_normalize"] == n_batches >= 10
    assert ray_cluster.is_initialized()  # the runner reused the session's cluster and left it up

    ra = json.loads(RunLayout(tmp_path / "local").report.read_text())
    rb = json.loads(RunLayout(tmp_path / "ray").report.read_text())
    assert _comparable(rb) == _comparable(ra)
    steps = {s["step_id"]: s for s in rb["steps"]}
    # the planted cases are all there, so the comparison is not vacuous
    assert steps["filter_length"]["rejected"]["too_short"] >= 150
    assert steps["filter_refusal"]["rejected"]
    assert steps["clean_html_to_markdown"]["quarantined"] == {"HTMLConversionError": 50 + 3}  # a + b
    assert steps["clean_html_to_markdown"]["extra"]["html_records"] > 0
    assert steps["dedup_exact"]["rejected"]
    assert steps["filter_source"]["rejected"] == {"dropped_source": steps["filter_source"]["n_in"]
                                                  - steps["filter_source"]["n_out"]}

    fa, fb = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert sorted(fb) == sorted(fa) and len(fa) >= 12
    assert [k for k in fa if fa[k] != fb[k]] == []  # kept, ledger and quarantine files: same bytes

    ids_a = RunDir(tmp_path / "local").final().select("id").collect()["id"].to_list()
    ids_b = RunDir(tmp_path / "ray").final().select("id").collect()["id"].to_list()
    assert ids_b == ids_a and len(ids_a) > 2_000


@needs_ray
def test_ray_dry_run_equals_local_dry_run(tmp_path, ray_cluster, via_ray):
    rec_l = _recipe(tmp_path, "local", batch_size=500, workers=1)
    rec_r = _recipe(tmp_path, "ray", batch_size=500)
    run_pipeline(build_plan(rec_l), tmp_path / "local", progress=False, dry_run=True)
    run_pipeline(build_plan(rec_r), tmp_path / "ray", progress=False, dry_run=True)
    assert via_ray["filter_length"] >= 6
    fa, fb = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert [k for k in fa if fa[k] != fb[k]] == [] and sorted(fa) == sorted(fb)


@needs_ray
def test_cli_set_executor_kind_ray_runs_on_ray(tmp_path, ray_cluster, via_ray, capsys):
    """`--set executor.kind=ray` reaches the runner; the executor is in no step's fingerprint, so
    switching it reuses finished steps, and --force recomputes them on Ray."""
    import yaml

    from curate.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(tmp_path, "local", workers=1)))
    run = ["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--quiet"]
    assert main(run) == 0
    assert via_ray == {}
    assert main([*run, "--set", "executor.kind=ray"]) == 0
    assert via_ray == {}  # every step was cached
    assert main([*run, "--set", "executor.kind=ray", "--force"]) == 0
    assert set(via_ray) == set(BATCH_STEPS)
    assert "on Ray (local cluster)" in capsys.readouterr().err


@needs_ray
def test_step_error_inside_a_ray_task_is_raised_as_locally(tmp_path, ray_cluster):
    """A config error that every record hits (a missing tokenizer) stops the run with the step's own
    exception type and message, not a Ray wrapper, as the local executor raises it."""
    steps = [{"use": "clean.split_long", "params": {"tokenizer": str(tmp_path / "no-such-tokenizer")}}]
    rec = dict(_recipe(tmp_path, "ray"), steps=steps)
    with pytest.raises(MissingResourceError, match="no-such-tokenizer") as exc:
        run_pipeline(build_plan(rec), tmp_path / "run", progress=False)
    assert type(exc.value) is MissingResourceError
    assert str(exc.value).startswith("clean.split_long: ")


def test_missing_ray_fails_at_once_with_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    plan = build_plan(_recipe(tmp_path, "ray"))
    with pytest.raises(MissingResourceError, match=r"pip install 'curate\[ray\]'"):
        Runner(plan, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing was read or written

    import yaml

    from curate.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(tmp_path, "local")))
    assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--ray-address", "auto"]) == 2
    assert "pip install 'curate[ray]'" in capsys.readouterr().err


def test_ray_address_with_local_executor_is_a_config_error(tmp_path):
    plan = build_plan(_recipe(tmp_path, "local"))
    with pytest.raises(ConfigError, match="executor.kind=ray"):
        Runner(plan, tmp_path / "run", ray_address="auto")
