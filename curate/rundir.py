"""Reading a run directory: the one layout the runner writes and every consumer reads.

```
runs/<name>/<ts>/
  spec.yaml  report.json  report.md  manifest.json
  00_ingest/kept.parquet          # after reading all sources
  NN_<step_id>/kept.parquet       # after each step (+ step artifacts: embeddings.npy, groups.parquet, ...)
  NN_<step_id>/done.json          # fingerprint; present only when the step finished
  ledger/NN_<step_id>.parquet     # removed records: schema columns + step, reason, duplicate_of, similarity
  quarantine/NN_<step_id>.jsonl   # records that could not be processed, with the error
  run.lock                        # held (flock) by the run writing this folder; holds its pid
```
State files (done.json, report.json, manifest.json, spec.yaml, ...) are written with
:func:`write_text_atomic`, so a kill leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, cast

import polars as pl

LEDGER_EXTRA: dict[str, pl.DataType] = {
    "step": pl.Utf8(),
    "reason": pl.Utf8(),
    "duplicate_of": pl.Utf8(),
    "similarity": pl.Float64(),
}


LOCK_FILE = "run.lock"


class RunDirError(FileNotFoundError):
    pass


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
        self.path = run_dir / LOCK_FILE
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


@dataclass
class RunDir:
    path: Path

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.is_dir() and not (p / "report.json").exists() and (p / "latest").exists():
            p = (p / "latest").resolve()
        if not (p / "spec.yaml").exists():
            raise RunDirError(f"{p}: not a curate run directory (no spec.yaml); pass runs/<name>/<ts>")
        self.path = p

    def step_dirs(self) -> list[Path]:
        return sorted(d for d in self.path.iterdir() if d.is_dir() and d.name[:2].isdigit() and d.name[2] == "_")

    def finished_step_dirs(self) -> list[Path]:
        """Step folders whose done.json is there and readable (a torn one means the step did not finish)."""
        return [d for d in self.step_dirs() if isinstance(read_json(d / "done.json"), dict)]

    def final_path(self) -> Path:
        done = self.finished_step_dirs()
        if not done:
            raise RunDirError(f"{self.path}: no finished step yet")
        return done[-1] / "kept.parquet"

    def final(self) -> pl.LazyFrame:
        """The kept records after the last finished step."""
        return pl.scan_parquet(self.final_path())

    def ledger(self) -> pl.LazyFrame | None:
        files = sorted((self.path / "ledger").glob("*.parquet"))
        if not files:
            return None
        return pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed")

    def quarantine(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for f in sorted((self.path / "quarantine").glob("*.jsonl")):
            with f.open(encoding="utf-8") as fh:
                out.extend(json.loads(line) for line in fh if line.strip())
        return out

    def report(self) -> dict[str, Any]:
        p = self.path / "report.json"
        if not p.exists():
            return {}
        data = read_json(p)
        if not isinstance(data, dict):
            raise RunDirError(f"{p}: unreadable (torn or not JSON); resume the run to write it again")
        return cast("dict[str, Any]", data)

    def spec(self) -> dict[str, Any]:
        import yaml

        return cast("dict[str, Any]", yaml.safe_load((self.path / "spec.yaml").read_text()))

    def find(self, name: str) -> Path | None:
        """The newest artifact called ``name`` in any step folder (embeddings.npy, map.parquet, ...)."""
        hits = [d / name for d in self.step_dirs() if (d / name).exists()]
        if (self.path / name).exists():
            hits.append(self.path / name)
        return hits[-1] if hits else None
