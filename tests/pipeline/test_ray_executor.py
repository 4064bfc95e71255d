"""``executor.kind: ray`` on a real two-node local Ray cluster gives the local executor's results.

One cluster for the session, started and stopped here: ``ray start --head`` and a second node
(``ray start --address``) on this machine, one CPU each, no dashboard, their own temp dir, no usage
stats, started with ``--block`` so that stopping the two processes we started stops their children.
The driver joins it once; every run reuses the connection. Workers see ``$CURATE_RAY_FAULTS``, the
fault-injection file (curate.pipeline.ray.cluster.crash_if_planned).

The demo recipe (pipelines/gpt4all.yaml on ``curate demo-data`` records) runs with
``embed.hashing`` in place of the MiniLM model and without ``score.map`` (a model and UMAP's JIT
would take minutes here; both run the same way on Ray: the embedder in an actor pool, the map in the
driver).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from ray_recipes import BATCH, LOCAL, assert_same_run, demo_recipe, ledger, nodes_used, small_recipe

from curate.errors import ConfigError, MissingResourceError
from curate.layout import EMBEDDINGS, RunLayout
from curate.pipeline.ray.cluster import FAULTS_ENV
from curate.pipeline.runner import Runner, run_pipeline
from curate.pipeline.spec import build_plan
from curate.rundir import RunDir

HAVE_RAY = importlib.util.find_spec("ray") is not None
DEMO_RECORDS = 600


@dataclass
class LocalCluster:
    address: str
    faults: Path
    ray: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ok: Any, timeout: float = 180.0) -> None:
    t0 = time.monotonic()
    while not ok():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what} after {timeout:.0f}s")
        time.sleep(0.3)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def ray_cluster():
    if not HAVE_RAY:
        pytest.skip("ray is not installed: pip install 'curate[ray]'")
    tmp = Path(tempfile.mkdtemp(prefix="cray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    faults = tmp / "faults.txt"
    env_vars = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env = {**os.environ, **env_vars, FAULTS_ENV: str(faults)}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    common = ["--num-cpus=1", "--object-store-memory=200000000", f"--temp-dir={tmp}", "--block",
              "--disable-usage-stats"]
    log = (tmp / "ray-start.log").open("w")
    procs = [subprocess.Popen([ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
                              env=env, stdout=log, stderr=subprocess.STDOUT)]
    saved = {k: os.environ.get(k) for k in env_vars}
    try:
        _wait("the head node's port", lambda: _port_open(port))
        procs.append(subprocess.Popen([ray_bin, "start", f"--address=127.0.0.1:{port}", *common],
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
        os.environ.update(env_vars)
        import ray

        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False, logging_level="WARNING")
        _wait("two live nodes", lambda: sum(1 for n in ray.nodes() if n["Alive"]) >= 2)
        yield LocalCluster(f"127.0.0.1:{port}", faults, ray)
        ray.shutdown()
    finally:
        for p in reversed(procs):  # SIGINT: `ray start --block` stops the Ray processes it started
            p.send_signal(signal.SIGINT)
        for p in reversed(procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory):
    from curate.demo.truth import generate

    raw = tmp_path_factory.mktemp("demo")
    generate(raw, DEMO_RECORDS, seed=3)
    return raw


def _ray(cluster: LocalCluster, **kw: Any) -> dict[str, Any]:
    return {"kind": "ray", "address": cluster.address, "batch_size": BATCH, "shard_rows": 100, **kw}


@pytest.fixture
def rounds(monkeypatch):
    """Every round of tasks a RayExecutor sent: (name, items)."""
    from curate.pipeline.ray_executor import RayExecutor

    seen: list[tuple[str, int]] = []
    orig = RayExecutor.run

    def spy(self, name, fn, items, **kw):
        items = list(items)
        seen.append((name, len(items)))
        return orig(self, name, fn, items, **kw)

    monkeypatch.setattr(RayExecutor, "run", spy)
    return seen


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.ray
def test_demo_recipe_on_two_nodes_equals_local_run(tmp_path, demo_raw, ray_cluster, rounds):
    plan_l = build_plan(demo_recipe(demo_raw, tmp_path / "export_local", LOCAL))
    plan_r = build_plan(demo_recipe(demo_raw, tmp_path / "export_ray", _ray(ray_cluster, shard_rows=60)))
    run_pipeline(plan_l, tmp_path / "local", progress=False)
    res = run_pipeline(plan_r, tmp_path / "ray", progress=False)
    assert ray_cluster.ray.is_initialized()  # the runner joined the session's cluster and left it up

    assert_same_run(tmp_path / "local", tmp_path / "ray")
    ray_run = RunLayout(tmp_path / "ray")
    assert ray_run.ingest.kept.is_dir() and len(ray_run.ingest.kept_files()) >= 6  # sharded from the ingest on
    assert len(nodes_used(tmp_path / "ray")) == 2  # shards ran on both nodes
    names = dict(rounds)
    assert names["ingest_fix_ids"] >= 1  # exact copies in different shards: ids fixed up, still the local ones
    for distributed in ("dedup_exact_groups", "dedup_minhash_verify", "embed_hashing_embed"):
        assert distributed in names  # ran as tasks and actors, not in the driver
    # the planted cases are all there, so the comparison is not vacuous
    steps = {r.step_id: r for r in res.reports}
    assert steps["ingest"].quarantined and steps["dedup_exact"].rejected and steps["dedup_minhash"].rejected
    assert steps["filter_language"].rejected and steps["filter_source"].rejected
    for name in ("embeddings.npy", "embedding_ids.parquet"):
        a = RunLayout(tmp_path / "local").step_named("embed_hashing").path / name
        b = ray_run.step_named("embed_hashing").path / name
        assert a.read_bytes() == b.read_bytes() if name.endswith(".npy") else pl.read_parquet(a).equals(
            pl.read_parquet(b))
    assert np.load(ray_run.find(EMBEDDINGS)).shape[0] == steps["embed_hashing"].n_out
    # readers of a run see the shards as one table
    assert RunDir(tmp_path / "ray").final().select(pl.len()).collect().item() == res.report["totals"]["kept"]


@pytest.mark.ray
def test_killed_workers_are_retried_without_duplicate_rows(tmp_path, ray_cluster, rounds):
    run_pipeline(build_plan(small_recipe(tmp_path, LOCAL)), tmp_path / "local", progress=False)
    # a worker dies before reading its shard, one after writing its kept, ledger and counts files
    ray_cluster.faults.write_text("ingest:1\nfilter_length:2:after\ndedup_minhash_verify:0:after\n")
    try:
        run_pipeline(build_plan(small_recipe(tmp_path, _ray(ray_cluster))), tmp_path / "ray", progress=False)
        assert ray_cluster.faults.read_text() == ""  # every planned crash happened, and was retried
    finally:
        ray_cluster.faults.unlink(missing_ok=True)
    assert_same_run(tmp_path / "local", tmp_path / "ray")
    removed = ledger(tmp_path / "ray")
    assert removed["id"].n_unique() == removed.height  # no record booked twice


@pytest.mark.ray
def test_killed_driver_resumes_from_finished_steps(tmp_path, ray_cluster):
    run_pipeline(build_plan(small_recipe(tmp_path, LOCAL)), tmp_path / "local", progress=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(small_recipe(tmp_path, _ray(ray_cluster))))
    run_dir = tmp_path / "ray"
    curate = str(Path(sys.executable).with_name("curate"))
    driver = subprocess.Popen([curate, "run", str(recipe), "--run-dir", str(run_dir), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    third = RunLayout(run_dir).step(3, "filter_refusal").done
    try:
        _wait("the third step's done.json", lambda: third.exists() or driver.poll() is not None, timeout=150)
    finally:
        driver.kill()  # SIGKILL: no cleanup, as when a driver machine dies
        driver.wait()
    assert third.exists(), driver.stderr.read().decode() if driver.stderr else ""
    res = run_pipeline(build_plan(small_recipe(tmp_path, _ray(ray_cluster))), run_dir, progress=False)
    assert res.cached_steps[:4] == ["ingest", "clean_normalize", "filter_length", "filter_refusal"]
    assert_same_run(tmp_path / "local", run_dir)


@pytest.mark.ray
def test_cli_switches_executor_and_reuses_steps(tmp_path, ray_cluster, rounds, capsys):
    """``--ray-address`` reaches the runner; the executor is in no step's fingerprint, so switching to Ray
    reuses the local run's finished steps (Ray steps then read a single kept.parquet in row-group shards),
    and --force recomputes every step on Ray."""
    from curate.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(small_recipe(tmp_path, LOCAL)))
    run = ["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--quiet"]
    assert main(run) == 0
    assert main([*run, "--ray-address", ray_cluster.address]) == 0
    assert rounds == []  # every step was cached
    assert main([*run, "--ray-address", ray_cluster.address, "--force"]) == 0
    assert "ingest" in dict(rounds) and "filter_length" in dict(rounds)
    assert f"on Ray ({ray_cluster.address})" in capsys.readouterr().err


@pytest.mark.ray
def test_step_error_inside_a_ray_task_is_raised_as_locally(tmp_path, ray_cluster):
    """A config error that every record hits (a missing tokenizer) stops the run with the step's own
    exception type and message, not a Ray wrapper, as the local executor raises it."""
    steps = [{"use": "clean.split_long", "params": {"tokenizer": str(tmp_path / "no-such-tokenizer")}}]
    rec = dict(small_recipe(tmp_path, _ray(ray_cluster)), steps=steps)
    with pytest.raises(MissingResourceError, match="no-such-tokenizer") as exc:
        run_pipeline(build_plan(rec), tmp_path / "run", progress=False, limit=60)
    assert type(exc.value) is MissingResourceError
    assert str(exc.value).startswith("clean.split_long: ")


def test_missing_ray_fails_at_once_with_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    plan = build_plan(small_recipe(tmp_path, {"kind": "ray"}))
    with pytest.raises(MissingResourceError, match=r"pip install 'curate\[ray\]'"):
        Runner(plan, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing was read or written

    from curate.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(small_recipe(tmp_path, LOCAL)))
    assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--ray-address", "auto"]) == 2
    assert "pip install 'curate[ray]'" in capsys.readouterr().err


def test_ray_address_with_local_executor_is_a_config_error(tmp_path):
    plan = build_plan(small_recipe(tmp_path, LOCAL))
    with pytest.raises(ConfigError, match="executor.kind=ray"):
        Runner(plan, tmp_path / "run", ray_address="auto")
    plan = build_plan(small_recipe(tmp_path, {"kind": "local", "address": "auto"}))
    with pytest.raises(ConfigError, match="executor.kind=ray"):
        Runner(plan, tmp_path / "run")
