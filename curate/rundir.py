"""Reading and locking a run directory; the paths themselves are named in :mod:`curate.layout`.

:class:`RunDir` opens a finished (or running) run for readers: the export, the report, the browser,
the benchmarks. State files (done.json, report.json, manifest.json, spec.yaml, ...) are written with
:func:`write_text_atomic`, so a kill leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Self, cast

import polars as pl

from curate import layout as L
from curate.errors import CurateError
from curate.layout import LEDGER_EXTRA, Artifact, RunLayout, StepFolder

__all__ = ["LEDGER_EXTRA", "RunDir", "RunDirBusyError", "RunDirError", "RunLayout", "RunLock", "read_json",
           "write_text_atomic"]


class RunDirError(CurateError, FileNotFoundError):
    """A folder is not a (readable) curate run directory."""


class RunDirBusyError(RunDirError):
    """Another process is writing the run directory."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` all at once: a temp file beside it, flushed to disk, renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not every filesystem lets a folder be opened
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    """A state file's JSON, or None when it is missing or unreadable (a torn write of an older curate)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


class RunLock:
    """An exclusive lock on a run directory while a run writes it (``flock`` on ``run.lock``).

    A second run into the same folder fails at once, naming the pid that holds it. The lock goes with
    the process, so a killed run never leaves the folder locked. The file stays; only the lock matters.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = RunLayout(run_dir).lock
        self.fd: int | None = None

    def acquire(self) -> Self:
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no lock, as before
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise RunDirBusyError(
                f"{self.path.parent}: run directory is in use by pid {holder} (another curate run writes it); "
                "wait for it to finish or choose another --run-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def layout_version(run: RunLayout) -> int:
    """The layout version that wrote ``run`` (from manifest.json; 1 for runs of a curate before versions).

    Raises RunDirError for a run written by a newer curate with a layout this one cannot read.
    """
    manifest = read_json(run.manifest)
    version = manifest.get("layout", 1) if isinstance(manifest, dict) else 1
    if not isinstance(version, int) or not L.OLDEST_READABLE <= version <= L.LAYOUT_VERSION:
        wrote = manifest.get("curate", "?") if isinstance(manifest, dict) else "?"
        raise RunDirError(
            f"{run.root}: written by curate {wrote} with run layout {version!r}; this curate reads layouts "
            f"{L.OLDEST_READABLE} to {L.LAYOUT_VERSION}. Open it with that curate, or run the recipe again."
        )
    return version


def is_finished(folder: StepFolder) -> bool:
    """The step's done.json is there and readable (a torn one means the step did not finish)."""
    return isinstance(read_json(folder.done), dict)


class RunDir:
    """One run directory for readers. ``RunDir("runs/mini")`` opens ``runs/mini/latest``."""

    path: Path
    layout: RunLayout
    version: int

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.is_dir() and not RunLayout(p).report.exists() and L.RecipeLayout(p).latest.exists():
            p = L.RecipeLayout(p).latest.resolve()
        lay = RunLayout(p)
        if not lay.spec.exists():
            raise RunDirError(f"{p}: not a curate run directory (no {L.SPEC}); pass runs/<name>/<ts>")
        self.path = p
        self.layout = lay
        self.version = layout_version(lay)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def step_dirs(self) -> list[Path]:
        return [f.path for f in self.layout.step_folders()]

    def finished_steps(self) -> list[StepFolder]:
        """Step folders whose done.json is there and readable, in order (the ingest first)."""
        return [f for f in self.layout.step_folders() if is_finished(f)]

    def finished_step_dirs(self) -> list[Path]:
        return [f.path for f in self.finished_steps()]

    def final_step(self) -> StepFolder:
        """The last finished step: its kept.parquet holds the records the run kept."""
        done = self.finished_steps()
        if not done:
            raise RunDirError(f"{self.path}: no finished step yet")
        return done[-1]

    def final_path(self) -> Path:
        return self.final_step().kept

    def final(self) -> pl.LazyFrame:
        """The kept records after the last finished step."""
        return pl.scan_parquet(self.final_path())

    def ingested(self) -> pl.LazyFrame:
        """Every record the ingest read (before any step)."""
        return pl.scan_parquet(self.layout.ingest.kept)

    def ledger_files(self) -> list[Path]:
        return self.layout.ledger_files()

    def ledger(self) -> pl.LazyFrame | None:
        """Every removed record (LEDGER_SCHEMA), over all steps; None when nothing was removed."""
        files = self.layout.ledger_files()
        if not files:
            return None
        return pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed")

    def quarantine(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for f in self.layout.quarantine_files():
            with f.open(encoding="utf-8") as fh:
                out.extend(json.loads(line) for line in fh if line.strip())
        return out

    def report(self) -> dict[str, Any]:
        """report.json (layout.REPORT_SHAPE), or {} when the run has not ended yet."""
        p = self.layout.report
        if not p.exists():
            return {}
        data = read_json(p)
        if not isinstance(data, dict):
            raise RunDirError(f"{p}: unreadable (torn or not JSON); resume the run to write it again")
        return cast("dict[str, Any]", data)

    def manifest(self) -> dict[str, Any]:
        """manifest.json (layout.MANIFEST_SHAPE), or {} when missing or unreadable."""
        data = read_json(self.layout.manifest)
        return cast("dict[str, Any]", data) if isinstance(data, dict) else {}

    def spec(self) -> dict[str, Any]:
        import yaml

        return cast("dict[str, Any]", yaml.safe_load(self.layout.spec.read_text()))

    def find(self, artifact: Artifact | str) -> Path | None:
        """The newest ``artifact`` in any step folder (an :class:`~curate.layout.Artifact`; a file name still
        works for readers not yet moved to the declared artifacts)."""
        if isinstance(artifact, Artifact):
            return self.layout.find(artifact)
        hits = [d / artifact for d in self.step_dirs() if (d / artifact).exists()]
        if (self.path / artifact).exists():  # run-level files (report.json) by name, as before
            hits.append(self.path / artifact)
        return hits[-1] if hits else None

    def find_all(self, artifact: Artifact) -> list[Path]:
        """``artifact`` of every step that wrote one, in step order."""
        return list(self.layout.find_all(artifact))

    def read_json_artifact(self, artifact: Artifact) -> Any:
        """The newest JSON ``artifact``, parsed, or None when no step wrote it."""
        p = self.find(artifact)
        return None if p is None else json.loads(p.read_text(encoding="utf-8"))
