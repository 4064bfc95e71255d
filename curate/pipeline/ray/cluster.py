"""The Ray cluster of a run, and one function run per shard on it with Ray Data.

:func:`for_each` is the one way work reaches the cluster: a Ray Data dataset of task numbers
(``from_items``), ``map_batches`` with one task number per call, each call writing its own files on the
run directory and returning a small JSON result. Ray Data brings the scheduling over every node, the
retries of a task whose worker died (``max_retries``), backpressure, actor pools for models and the
progress bars; the data itself never travels through the driver or the object store.

A step's own exception (a :class:`curate.errors.CurateError`, a bug) is caught in the task, pickled
and raised again in the driver with its own type and message, as the local executor raises it (Ray
would wrap it in ``RayTaskError(UserCodeException)`` and drop the original).
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from curate.errors import MissingResourceError

INSTALL_HINT = "pip install 'curate[ray]'"


def require_ray() -> Any:
    """Import ray, or fail at once with the install command."""
    try:
        import ray
    except ImportError as e:
        raise MissingResourceError(
            f"executor.kind is 'ray' but Ray is not installed ({e}); install it with: {INSTALL_HINT} "
            "(or run with --set executor.kind=local)"
        ) from e
    return ray


class Cluster:
    """The run's Ray connection: ``address`` joins a cluster (``auto``, ``HOST:PORT``, ``ray://...``);
    None reuses this process's Ray session (a notebook, a test) or starts a local one, stopped by
    :meth:`close`."""

    def __init__(self, address: str | None) -> None:
        self.ray = require_ray()
        self.address = address
        self._started = False

    def ensure(self, progress: bool) -> Any:
        ray = self.ray
        if not ray.is_initialized():
            if self.address is None and not os.environ.get("RAY_ADDRESS"):
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # local-first: no usage reports
            ray.init(address=self.address, include_dashboard=False, log_to_driver=progress,
                     logging_level=logging.INFO if progress else logging.WARNING)
            self._started = True
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        ctx.enable_operator_progress_bars = progress
        ctx.print_on_execution_start = False
        # Ray Data's per-job INFO lines would bury the run's one line per step
        logging.getLogger("ray.data").setLevel(logging.INFO if progress else logging.ERROR)
        return ray

    def describe(self) -> str:
        """``N nodes, M CPUs[, G GPUs]``."""
        ray = self.ray
        res = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        gpus = int(res.get("GPU", 0))
        return f"{nodes} node{'s' if nodes != 1 else ''}, {int(res.get('CPU', 0))} CPUs" + (
            f", {gpus} GPUs" if gpus else "")

    def cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def gpus(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def node_cpus(self) -> int:
        """CPUs of the largest live node: what a task that works on the whole set alone may ask for."""
        sizes = [int(n.get("Resources", {}).get("CPU", 0)) for n in self.ray.nodes() if n.get("Alive")]
        return max([1, *sizes])

    def close(self) -> None:
        """Disconnect from (or stop) the cluster this run started Ray for; a session it found stays up."""
        if self._started:
            self.ray.shutdown()
            self._started = False


def node_id() -> str:
    """The Ray node this code runs on (short), or "" outside Ray: shard counts record where each shard ran."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id() or "")[:12] if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001 - observability only
        return ""


class TaskFailed(RuntimeError):
    """A task's exception that could not be sent back as itself (it did not pickle)."""


def _run_one(fn: Callable[[int], dict[str, Any]], item: int) -> tuple[str, bytes]:
    try:
        return json.dumps(fn(item)), b""
    except Exception as e:  # noqa: BLE001 - sent back to the driver and raised there as itself
        import cloudpickle  # type: ignore[import-untyped]

        try:
            blob = cloudpickle.dumps(e)
            cloudpickle.loads(blob)
        except Exception:  # noqa: BLE001 - an exception that does not survive pickling
            blob = cloudpickle.dumps(TaskFailed("".join(traceback.format_exception(e))))
        return "", blob


FAULTS_ENV = "CURATE_RAY_FAULTS"


def crash_if_planned(name: str, item: int, after: bool = False) -> None:
    """Fault injection for tests: when the file named by ``$CURATE_RAY_FAULTS`` (on the workers' machines)
    lists ``<name>:<item>`` (or ``<name>:<item>:after``: once the item's files are written), the line is
    removed and this worker process dies at once, as a killed or out-of-memory worker would, so the
    task's retry can be checked."""
    path = os.environ.get(FAULTS_ENV)
    if not path or not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    mark = f"{name}:{item}" + (":after" if after else "")
    if mark in lines:
        lines.remove(mark)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + ("\n" if lines else ""))
        os.replace(tmp, path)
        os._exit(17)


class _Threads:
    """Let a task that asked for ``n`` CPUs use ``n`` threads in faiss and BLAS (a Ray worker starts with
    ``OMP_NUM_THREADS`` set for one CPU), and give the worker back as it was."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._faiss: Any = None
        self._before = 1
        self._limits: Any = None

    def __enter__(self) -> None:
        if self.n <= 1:
            return
        try:
            import faiss

            self._faiss, self._before = faiss, faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(self.n)
        except ImportError:
            pass
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        self._limits = threadpool_limits(limits=self.n)

    def __exit__(self, *exc: object) -> None:
        if self._faiss is not None:
            self._faiss.omp_set_num_threads(self._before)
        if self._limits is not None:
            self._limits.restore_original_limits()


class _Apply:
    """``map_batches`` UDF: ``fn`` on each task number of the batch."""

    def __init__(self, fn: Callable[[int], dict[str, Any]], name: str = "", threads: int = 1) -> None:
        self.fn = fn
        self.name = name
        self.threads = threads

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results, errors = [], []
        for item in batch["item"].tolist():
            crash_if_planned(self.name, int(item))
            with _Threads(self.threads):
                res, err = _run_one(self.fn, int(item))
            crash_if_planned(self.name, int(item), after=True)
            results.append(res)
            errors.append(err)
        return {"item": batch["item"], "result": np.array(results, dtype=object),
                "error": np.array(errors, dtype=object)}


def for_each(name: str, fn: Callable[[int], dict[str, Any]], items: list[int], *, num_cpus: float = 1.0,
             num_gpus: float = 0.0, actor_factory: Callable[[], Callable[[int], dict[str, Any]]] | None = None,
             actors: int = 1, memory: float | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``fn(item)`` for every item on the cluster, one item per call; yields ``(item, result)`` as they finish.

    ``actor_factory`` runs the items on a pool of ``actors`` long-lived actors instead of tasks, each
    building its function once (a model loaded once per actor). The first failed item stops the
    iteration with its own exception. A task or actor whose worker process or node died is run again
    (Ray Data's defaults: ``max_retries=-1`` for tasks, ``max_restarts=-1`` for actors); an item's
    files are then rewritten whole, under the same names.
    """
    import ray.data

    if not items:
        return
    ds = ray.data.from_items([{"item": i} for i in items], override_num_blocks=len(items))
    if actor_factory is None:
        udf: Any = _Apply(fn, name, threads=max(1, int(num_cpus)))
        udf.__name__ = name  # the operator's name in Ray Data's progress bars and logs
        mapped = ds.map_batches(udf, batch_size=1, batch_format="numpy", num_cpus=num_cpus,
                                num_gpus=num_gpus or None, memory=memory)
    else:
        cls = type(name, (_ActorApply,), {"factory": staticmethod(actor_factory)})
        mapped = ds.map_batches(cls, batch_size=1, batch_format="numpy", concurrency=(1, max(1, actors)),
                                num_cpus=num_cpus, num_gpus=num_gpus or None, memory=memory)
    for row in mapped.iter_rows():
        if row["error"]:
            import cloudpickle

            raise cloudpickle.loads(row["error"])
        yield int(row["item"]), json.loads(row["result"])


class _ActorApply(_Apply):
    """An actor's UDF: ``factory()`` builds the per-item function once, when the actor starts."""

    factory: Callable[[], Callable[[int], dict[str, Any]]]

    def __init__(self) -> None:
        super().__init__(self.factory(), type(self).__name__)
