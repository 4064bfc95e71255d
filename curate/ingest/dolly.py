"""Databricks Dolly: ``{instruction, context, response, category}`` JSONL records."""

from __future__ import annotations

from typing import Any

from curate.ingest.alpaca import join_prompt, optional_str, prompt_text
from curate.ingest.base import Parsed, RecordReader, require
from curate.steps.base import StepParams
from curate.steps.registry import register

_KNOWN = frozenset({"instruction", "context", "response", "category"})


@register("read.dolly")
class DollyReader(RecordReader):
    """Read Dolly records: the context joins the instruction like Alpaca's input; subset = category.

    Reasons: empty_prompt, missing_field, wrong_type, plus the container reasons
    json_decode, invalid_utf8, lone_surrogate, conflict_marker, too_deep, record_too_large, truncated,
    truncated_file, damaged_file.
    """

    format = "dolly"

    class Params(StepParams):
        pass

    def parse(self, obj: Any) -> Parsed:
        instruction = prompt_text(obj)
        context = optional_str(obj, "context")
        response = require(obj, "response")
        category = optional_str(obj, "category")
        meta = {k: v for k, v in obj.items() if k not in _KNOWN}
        return Parsed(
            turns=[
                {"role": "user", "content": join_prompt(instruction, context)},
                {"role": "assistant", "content": response},
            ],
            subset=category or None,
            meta=meta or None,
        )
