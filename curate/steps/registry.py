"""Registry of steps: ``@register("<kind>.<name>")``, lookup and listing.

Importing :mod:`curate.steps` imports every step module (cheap: heavy libraries are imported
inside the methods that need them), so the registry is complete after ``load_all()``.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import TypeVar

from pydantic import BaseModel

from curate.errors import ConfigError
from curate.steps.base import Step

S = TypeVar("S", bound=type[Step])

_REGISTRY: dict[str, type[Step]] = {}
_LOADED = False


class RegistryError(ConfigError):
    """An unknown step key, or a step class that breaks the registry's conventions."""


def register(key: str) -> Callable[[S], S]:
    """Register a step class under ``<kind>.<name>``, checking the conventions every step follows."""

    def deco(cls: S) -> S:
        prefix, _, name = key.partition(".")
        if not name or key != key.lower():
            raise RegistryError(f"step key {key!r} must be '<kind>.<name>' in lowercase")
        if prefix != cls.kind:
            raise RegistryError(f"{cls.__name__}: key {key!r} must start with its kind {cls.kind!r}")
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise RegistryError(f"step key {key!r} is already taken by {_REGISTRY[key].__name__}")
        if not (cls.__doc__ or "").strip():
            raise RegistryError(f"{cls.__name__}: a registered step needs a class docstring")
        params = cls.Params
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise RegistryError(f"{cls.__name__}.Params must be a StepParams (pydantic) class")
        if params.model_config.get("extra") != "forbid":
            raise RegistryError(f"{cls.__name__}.Params must forbid extra keys")
        cls.key = key
        _REGISTRY[key] = cls
        return cls

    return deco


def load_all() -> None:
    """Import every module under curate.steps and curate.ingest so all steps are registered."""
    global _LOADED
    if _LOADED:
        return
    for pkg_name in ("curate.ingest", "curate.steps"):
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            importlib.import_module(mod.name)
    _LOADED = True


def get_step(key: str) -> type[Step]:
    load_all()
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `curate steps` to list them"
    raise RegistryError(f"unknown step {key!r}{hint}")


def get_reader(fmt: str) -> type[Step]:
    return get_step(f"read.{fmt}")


def all_steps() -> dict[str, type[Step]]:
    load_all()
    return dict(sorted(_REGISTRY.items()))


@contextlib.contextmanager
def scoped_registry() -> Iterator[dict[str, type[Step]]]:
    """Tests register throwaway steps inside this block; the registry is restored afterwards."""
    load_all()
    saved = dict(_REGISTRY)
    try:
        yield _REGISTRY
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)
