"""BigScience P3: one prompted example per record (``inputs_pretokenized`` -> ``targets_pretokenized``).

Read as JSONL, Parquet (the Hub copy, ``<dataset>_<template>/...parquet``) or a saved ``datasets``
folder. The token-id columns ``inputs``/``targets`` are never read from Parquet (they double the
size and the text columns carry the same content).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from curate.ingest.base import Parsed, Quarantined, RawRecord, RecordError, RecordReader, require
from curate.ingest.oig import file_subset
from curate.ingest.tabular import tabular_or_json_records
from curate.steps.base import StepParams
from curate.steps.registry import register

TOKEN_COLUMNS = ("inputs", "targets")
_KNOWN = frozenset({"inputs_pretokenized", "targets_pretokenized", "subset", *TOKEN_COLUMNS})
# File or folder names that say which split/shard, not which template: look one level up.
_SPLIT_LIKE = re.compile(
    r"^(?:(?:train|training|validation|valid|val|dev|test|eval)(?:[-_.].*)?|\d+|(?:part|shard|data)[-_.]?\d+.*)$",
    re.IGNORECASE,
)


def p3_subset(path: str) -> str | None:
    """The ``<dataset>_<template>`` name from a path: the file stem, or the nearest folder that is
    not a split/shard name (``ag_news_classify/train/0000.parquet`` -> ``ag_news_classify``)."""
    parts = [file_subset(path)] + os.path.normpath(os.path.abspath(path)).split(os.sep)[-2:-4:-1]
    for name in parts:
        if name and not _SPLIT_LIKE.match(name):
            return name
    return None


@register("read.p3")
class P3Reader(RecordReader):
    """Read P3 prompted examples into one user/assistant exchange each.

    Texts are stripped of the surrounding whitespace that T5-style templating leaves. Subset is
    the record's ``subset`` field, else the template name from the path (see ``p3_subset``).
    ``answer_choices`` and other fields go to meta; ``inputs``/``targets`` token ids are dropped.

    Reasons: empty_prompt, missing_field, wrong_type, plus the container reasons
    json_decode, invalid_utf8, lone_surrogate, conflict_marker, too_deep, record_too_large, truncated,
    truncated_file, damaged_file.
    """

    format = "p3"

    class Params(StepParams):
        pass

    def raw_records(self, path: str) -> Iterator[RawRecord]:
        if path.startswith("hub:"):  # the base reader streams Hub datasets
            return super().raw_records(path)
        return tabular_or_json_records(path, self.format, exclude=TOKEN_COLUMNS)

    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        subset = None if path.startswith("hub:") else p3_subset(path)
        for item in super().records(path, source):
            if isinstance(item, dict) and item["subset"] is None:
                item["subset"] = subset
            yield item

    def parse(self, obj: Any) -> Parsed:
        prompt = require(obj, "inputs_pretokenized").strip()
        if not prompt:
            raise RecordError("empty_prompt", "'inputs_pretokenized' is empty")
        target = require(obj, "targets_pretokenized").strip()
        subset = obj.get("subset")
        if subset is not None and not isinstance(subset, str):
            raise RecordError("wrong_type", f"'subset' is {type(subset).__name__}, expected str")
        # null cells are dropped: in a Parquet table every row has every column
        meta = {k: v for k, v in obj.items() if k not in _KNOWN and v is not None}
        return Parsed(
            turns=[{"role": "user", "content": prompt}, {"role": "assistant", "content": target}],
            subset=subset or None,
            meta=meta or None,
        )
