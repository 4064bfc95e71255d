"""Compatibility name for :mod:`curate.steps.registry` (plugins written against older curate import it here).

Nothing inside curate imports this module; new code imports ``curate.steps.registry``.
"""

from __future__ import annotations

from curate.steps.registry import (
    RegistryError,
    all_steps,
    get_reader,
    get_step,
    load_all,
    register,
    scoped_registry,
)

__all__ = ["RegistryError", "all_steps", "get_reader", "get_step", "load_all", "register", "scoped_registry"]
