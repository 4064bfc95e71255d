"""Errors a user can fix (bad recipe, missing file or model): the CLI prints them without a traceback.

This module imports nothing from curate, so every layer can raise these errors.
"""

from __future__ import annotations

from pathlib import Path


class CurateError(Exception):
    """Base of curate's own errors."""


class ConfigError(CurateError, ValueError):
    """A recipe, config or command-line value is wrong; the message says how to fix it."""


class MissingResourceError(CurateError, FileNotFoundError):
    """A model, index or file a step needs is missing; the message says how to provide it."""


class AccountingError(CurateError, RuntimeError):
    """Counts do not balance, or too much was quarantined: the run stops."""


def check_output_file(path: str | Path, option: str = "-o") -> Path:
    """An output file path given on the command line: not a folder, not inside a file. Raises ConfigError.

    Commands call this before any work, so a wrong ``-o`` fails at once and not after a long read.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {p}: is a folder; give a file path, e.g. {p / 'out.parquet'}")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{option} {p}: {parent} is a file, so it cannot hold {p.name}")
    return p
