"""Layering as a test: an ast walk over curate/ (function-level imports too) for the imports we forbid.

* steps never import the CLI, the pipeline (runner, registry shim, spec...) or the browser;
* index and analysis never import steps;
* schema and errors import nothing from curate; the layout imports only the schema;
* nothing imports the curate.pipeline.registry shim (the registry lives in curate.steps);
* module-level imports form no cycle, and the runner's parts import alone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "curate"


def _name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PKG.rglob("*.py")}


def _imports(path: Path, *, top_level_only: bool, name: str | None = None) -> set[str]:
    """curate modules ``path`` imports; ``from pkg import submodule`` counts as the submodule only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = name or _name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
            out |= subs
            if len(subs) < len(node.names):
                out.add(base)
    return {m for m in out if m == "curate" or m.startswith("curate.")}


def _under(module: str, pkg: str) -> bool:
    return module == pkg or module.startswith(pkg + ".")


def _is_cli(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module == "curate.cli" or last == "cli" or last.startswith("cli_")


RULES: list[tuple[str, str, object]] = [
    ("curate.steps", "the CLI", _is_cli),
    ("curate.steps", "the pipeline (runner, spec, registry shim)", lambda m: _under(m, "curate.pipeline")),
    ("curate.steps", "the browser", lambda m: _under(m, "curate.browse")),
    ("curate.index", "steps", lambda m: _under(m, "curate.steps")),
    ("curate.analysis", "steps", lambda m: _under(m, "curate.steps")),
    ("curate.schema", "anything of curate", lambda m: True),
    ("curate.errors", "anything of curate", lambda m: True),
    ("curate.layout", "anything of curate but the schema", lambda m: m != "curate.schema"),
    ("curate", "the curate.pipeline.registry shim", lambda m: m == "curate.pipeline.registry"),
]


def test_no_forbidden_import() -> None:
    bad = []
    for module, path in sorted(MODULES.items()):
        for imported in sorted(_imports(path, top_level_only=False)):
            for pkg, what, forbidden in RULES:
                if _under(module, pkg) and module != "curate.pipeline.registry" and forbidden(imported):  # type: ignore[operator]
                    bad.append(f"{module} imports {imported}: {pkg} must not import {what}")
    assert not bad, "\n".join(bad)


def test_rules_see_function_level_imports(tmp_path: Path) -> None:
    f = tmp_path / "late.py"
    f.write_text("def late():\n    from curate.pipeline.runner import run_pipeline\n    from ..browse import data\n")
    seen = _imports(f, top_level_only=False, name="curate.steps.late")
    assert {"curate.pipeline.runner", "curate.browse.data"} <= seen
    assert _imports(f, top_level_only=True, name="curate.steps.late") == set()


def test_no_import_cycle() -> None:
    graph = {m: {i for i in _imports(p, top_level_only=True) if i in MODULES and i != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = path[path.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("module", ["curate.pipeline.ray_executor", "curate.pipeline.executors",
                                    "curate.pipeline.runner", "curate.layout", "curate.steps.registry"])
def test_module_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
