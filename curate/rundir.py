"""Reading a run directory: the one layout the runner writes and every consumer reads.

```
runs/<name>/<ts>/
  spec.yaml  report.json  report.md  manifest.json
  00_ingest/kept.parquet          # after reading all sources
  NN_<step_id>/kept.parquet       # after each step (+ step artifacts: embeddings.npy, groups.parquet, ...)
  NN_<step_id>/done.json          # fingerprint; present only when the step finished
  ledger/NN_<step_id>.parquet     # removed records: schema columns + step, reason, duplicate_of, similarity
  quarantine/NN_<step_id>.jsonl   # records that could not be processed, with the error
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import polars as pl

LEDGER_EXTRA: dict[str, pl.DataType] = {
    "step": pl.Utf8(),
    "reason": pl.Utf8(),
    "duplicate_of": pl.Utf8(),
    "similarity": pl.Float64(),
}


class RunDirError(FileNotFoundError):
    pass


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
        return [d for d in self.step_dirs() if (d / "done.json").exists()]

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
        return cast("dict[str, Any]", json.loads(p.read_text())) if p.exists() else {}

    def spec(self) -> dict[str, Any]:
        import yaml

        return cast("dict[str, Any]", yaml.safe_load((self.path / "spec.yaml").read_text()))

    def find(self, name: str) -> Path | None:
        """The newest artifact called ``name`` in any step folder (embeddings.npy, map.parquet, ...)."""
        hits = [d / name for d in self.step_dirs() if (d / name).exists()]
        if (self.path / name).exists():
            hits.append(self.path / name)
        return hits[-1] if hits else None
