"""GPT4All prompt-generation data: ``{prompt, response, source}`` as JSONL or Parquet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from curate.ingest.alpaca import optional_str, prompt_text
from curate.ingest.base import Parsed, RawRecord, RecordReader, require
from curate.ingest.tabular import tabular_or_json_records
from curate.steps.base import StepParams
from curate.steps.registry import register

_KNOWN = frozenset({"prompt", "response", "source"})


@register("read.gpt4all")
class GPT4AllReader(RecordReader):
    """Read GPT4All ``{prompt, response, source}`` rows into one user/assistant exchange each.

    ``subset`` is the row's ``source`` (the upstream collection, e.g. a P3 or StackOverflow dump);
    other columns go to meta. Parquet files stream by row group.

    Reasons: empty_prompt, missing_field, wrong_type, plus the container reasons
    json_decode, invalid_utf8, lone_surrogate, conflict_marker, too_deep, record_too_large, truncated,
    truncated_file, damaged_file.
    """

    format = "gpt4all"

    class Params(StepParams):
        pass

    def raw_records(self, path: str) -> Iterator[RawRecord]:
        if path.startswith("hub:"):  # the base reader streams Hub datasets
            return super().raw_records(path)
        return tabular_or_json_records(path, self.format)

    def parse(self, obj: Any) -> Parsed:
        prompt = prompt_text(obj, "prompt")
        response = require(obj, "response")
        subset = optional_str(obj, "source")
        # null cells are dropped: in a Parquet table every row has every column
        meta = {k: v for k, v in obj.items() if k not in _KNOWN and v is not None}
        return Parsed(
            turns=[{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            subset=subset or None,
            meta=meta or None,
        )
