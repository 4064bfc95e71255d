"""The resume cache: fingerprints, ``done.json``, and reuse of finished steps.

A step is finished when its ``done.json`` holds a fingerprint of (input, step, params, labels, curate
version) and its report. A rerun with the same fingerprint skips the step; a new run of a recipe adopts
unchanged steps of ``runs/<name>/latest`` by hard links; a torn or foreign ``done.json`` means the step
is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from curate.layout import RunLayout, StepFolder, is_step_folder_name
from curate.rundir import read_json, write_text_atomic
from curate.steps.base import StepReport


def digest(obj: Any) -> str:
    """A short, stable hash of a JSON-able value (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def file_stat(path: str) -> list[Any]:
    """What identifies an input file for the ingest fingerprint without reading it: path, size, mtime."""
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


class StepCache:
    """Finished steps of this run (``done.json``) and of the run it reuses from."""

    def __init__(self, layout: RunLayout, *, force: bool = False, reuse_from: Path | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.layout = layout
        self.force = force
        self.reuse_from = None if force or reuse_from is None else RunLayout(reuse_from)
        self.log = log

    def lookup(self, folder: StepFolder, fp: str) -> StepReport | None:
        """The report of a finished step with the same fingerprint, here or in the run we reuse from."""
        if self.force:
            return None
        done = self.read_done(folder.done)
        if done is not None and done["fingerprint"] == fp:
            return StepReport.from_json(done["report"])
        if self.reuse_from is not None:
            prev = self.reuse_from.folder(folder.name)
            pdone = self.read_done(prev.done)
            if pdone is not None and pdone["fingerprint"] == fp:
                self._adopt(prev, folder)
                return StepReport.from_json(pdone["report"])
        return None

    def read_done(self, path: Path) -> dict[str, Any] | None:
        """A step's done.json, or None when it is missing or unreadable (then the step is not finished)."""
        if not path.exists():
            return None
        d = read_json(path)
        ok = isinstance(d, dict) and isinstance(d.get("fingerprint"), str) and isinstance(d.get("report"), dict)
        if ok:
            try:
                StepReport.from_json(d["report"])
            except (KeyError, TypeError, ValueError):
                ok = False
        if not ok:
            self.log(f"{path}: unreadable (torn write?); the step counts as not finished and is recomputed")
            return None
        return cast("dict[str, Any]", d)

    def _adopt(self, prev: StepFolder, folder: StepFolder) -> None:
        """Reuse a finished step of an earlier run: hard links, so nothing is copied."""
        if folder.path.exists():
            shutil.rmtree(folder.path)
        shutil.copytree(prev.path, folder.path, copy_function=link_or_copy)
        for src in prev.ledger_paths():  # one file, or one per shard (executor.kind: ray)
            link_or_copy(str(src), str(folder.run.ledger_dir / src.name))
        for src in prev.quarantine_paths():
            link_or_copy(str(src), str(folder.run.quarantine_dir / src.name))

    def clear(self, folder: StepFolder) -> None:
        """Remove a step's folder and its ledger and quarantine files (before recomputing it)."""
        if folder.path.exists():
            shutil.rmtree(folder.path)
        for path in folder.ledger_paths() + folder.quarantine_paths():
            path.unlink(missing_ok=True)

    def prune(self, valid: set[str]) -> None:
        """Remove folders of steps that are no longer in the recipe (a shorter or changed recipe)."""
        for d in self.layout.root.iterdir():
            if d.is_dir() and is_step_folder_name(d.name) and d.name not in valid:
                self.clear(self.layout.folder(d.name))

    def finish(self, folder: StepFolder, fp: str, rep: StepReport) -> None:
        """Mark the step finished: its done.json, written atomically, last."""
        write_text_atomic(folder.done, json.dumps({"fingerprint": fp, "report": rep.to_json()}, indent=1))
