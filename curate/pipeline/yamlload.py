"""The YAML loader for recipes and ``--set`` values: safe tags only, bounded size, no duplicate keys.

``yaml.safe_load`` builds an alias as a shared reference, so a few hundred bytes of nested aliases
("billion laughs") load at once but expand to 10^9 nodes in everything that walks the result
(validation, error messages, hashing). This loader counts the nodes of the document with every alias
expanded, before building any Python object, and refuses a document over :data:`MAX_NODES`. It also
refuses a mapping that repeats a key (plain YAML keeps the last one, so a second ``steps:`` block
would silently replace the first), recursive aliases, and nesting too deep to build.

Every problem is one line that names the origin (file or ``--set`` argument) and the YAML line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from curate.errors import ConfigError

# A recipe is a few hundred nodes; the largest shipped one is under 400. Ample room for long path lists.
MAX_NODES = 100_000
# Recipes are hand-written YAML of a few KiB; a bigger file is almost surely a data file given by mistake.
MAX_BYTES = 1 << 20
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLLoadError(ConfigError):
    """A recipe or ``--set`` value is not acceptable YAML: ``origin`` says which, ``problem`` what and where."""

    def __init__(self, origin: str, problem: str) -> None:
        self.origin = origin
        self.problem = problem
        super().__init__(f"{origin}: {problem}")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose mappings refuse a repeated key (merge keys ``<<`` may still be overridden)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable: the base class reports it
            if first is not None:
                raise ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first + 1}); YAML would keep only the last",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def expanded_size(root: Node, limit: int = MAX_NODES) -> int:
    """Nodes in the document with every alias expanded; stops counting above ``limit``.

    Raises ValueError for a recursive alias (a node that contains itself). Iterative, so deep nesting
    cannot exhaust the stack here.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ValueError(f"line {node.start_mark.line + 1}: a recursive alias (a node that contains itself)")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ValueError(
                    f"line {child.start_mark.line + 1}: a recursive alias (a node that contains itself)"
                )
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _one_line(e: yaml.YAMLError) -> str:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(e.problem or e.context or "invalid YAML").split())
        if isinstance(e, ConstructorError):
            if "could not determine a constructor" in problem:
                tag = problem.rsplit(" ", 1)[-1].strip("'\"").replace("tag:yaml.org,2002:", "!!")
                return f"{where}YAML tag {tag} is not allowed (plain values only: no !!python or custom tags)"
            return f"{where}{problem}"
        context = f" ({' '.join(str(e.context).split())})" if e.context and e.problem else ""
        return f"{where}YAML syntax error: {problem}{context}"
    return f"YAML syntax error: {' '.join(str(e).split())}"


def load_yaml(text: str, origin: str, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document from ``text``. Raises YAMLLoadError naming ``origin`` and the line."""
    if len(text) > MAX_BYTES:
        raise YAMLLoadError(
            origin, f"{len(text):,} characters, more than a recipe holds (limit {MAX_BYTES:,}); is this a data file?"
        )
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        n = expanded_size(node, max_nodes)
        if n > max_nodes:
            raise YAMLLoadError(
                origin, f"the YAML expands to more than {max_nodes:,} values (aliases repeat nested "
                "anchors: an alias bomb?); write the values out or use fewer nested aliases"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise YAMLLoadError(origin, _one_line(e)) from None
    except ValueError as e:
        if isinstance(e, YAMLLoadError):
            raise
        raise YAMLLoadError(origin, str(e)) from None
    except RecursionError:
        raise YAMLLoadError(origin, "the YAML is nested too deeply to read") from None
    finally:
        loader.dispose()
