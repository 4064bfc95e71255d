"""Sources named on the Hugging Face Hub: ``path: hub:bigscience/P3``.

The records stream through ``datasets.load_dataset(name, config, split=..., streaming=True)`` and
each one goes to the reader's ``parse``, exactly as a JSON line would. The config and split come
from the reader's params ``hub_config`` / ``hub_split`` when the reader declares them
(:class:`HubParams` is the mixin to inherit), else the dataset's default config and ``train``.

curate is offline-first: with ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set, or with no network,
this raises an InputError that says how to fetch the files elsewhere and read them locally.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from curate.ingest.base import InputError, RawRecord
from curate.steps.base import StepParams

HUB_PREFIX = "hub:"
_TRUE = ("1", "true", "yes", "on")


class HubParams(StepParams):
    """Mixin for reader params: which config and split of a ``hub:`` dataset to stream."""

    hub_config: str | None = Field(None, description="Config (subset) of a hub: dataset; null = default.")
    hub_split: str = Field("train", description="Split of a hub: dataset.")


def is_hub_path(path: str) -> bool:
    return str(path).startswith(HUB_PREFIX)


def hub_name(path: str) -> str:
    name = str(path)[len(HUB_PREFIX) :].strip()
    if not name or name.count("/") > 1 or " " in name:
        raise InputError(f"{path}: a hub source is written hub:ORG/NAME (e.g. hub:bigscience/P3)")
    return name


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def offline_error(name: str, config: str | None, split: str, cause: str = "") -> InputError:
    args = ", ".join(repr(a) for a in (name, config) if a is not None)
    fetch = (
        f"python -c \"from datasets import load_dataset; load_dataset({args}, split={split!r})"
        f".to_json('{name.replace('/', '__')}.jsonl')\""
    )
    why = f" ({cause})" if cause else ""
    return InputError(
        f"cannot load hub dataset {name} offline{why}; download it where you are online with `{fetch}` "
        f"(or `huggingface-cli download --repo-type dataset {name} --local-dir DIR`), then point path: at "
        "the local files"
    )


def iter_hub_records(path: str, params: Any) -> Iterator[RawRecord]:
    """Stream the records of ``hub:NAME`` as RawRecords numbered from 1 (no line numbers)."""
    name = hub_name(path)
    config = getattr(params, "hub_config", None)
    split = getattr(params, "hub_split", None) or "train"
    if offline():
        raise offline_error(name, config, split, "HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set")
    try:
        import datasets
    except ImportError as e:
        raise InputError(f"{path}: reading hub: sources needs the `datasets` package: pip install 'curate[export]'") from e
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=True)
        for n, obj in enumerate(ds, start=1):
            yield RawRecord(record=n, line=None, obj=dict(obj))
    except (ConnectionError, TimeoutError) as e:
        raise offline_error(name, config, split, f"{type(e).__name__}: {e}") from e
    except OSError as e:
        # datasets wraps network failures and missing repos in OSError subclasses
        if "offline" in str(e).lower() or "connect" in str(e).lower() or "resolve" in str(e).lower():
            raise offline_error(name, config, split, f"{type(e).__name__}: {e}") from e
        raise InputError(f"{path}: cannot load hub dataset {name}: {type(e).__name__}: {e}") from e
