"""LAION OIG: ``{"text": "<human>: ...\\n<bot>: ...", "metadata": {...}}`` JSONL.

Turns are split at speaker labels that open a line. The labels are parameters because OIG
derivatives rename the bot (the joke-explanation subset writes ``Rosey:``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field, field_validator, model_validator

from curate.ingest.base import (
    InputError,
    Parsed,
    Quarantined,
    RawRecord,
    RecordError,
    RecordReader,
    base_name,
    check_head,
    display_path,
    head_bytes,
    iter_json_records,
    require,
    sniff,
)
from curate.steps.base import StepParams
from curate.steps.registry import register

_LINE_LABEL = re.compile(r"(?m)^\s*([^\s:<>][^\n:]{0,30}:|<[^\n>]{1,30}>:)")


def file_subset(path: str) -> str:
    """A file's name without compression and data suffixes: the subset when records name none."""
    name = base_name(path.rstrip("/"))
    for suf in (".jsonl", ".json", ".ndjson", ".parquet"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


@register("read.oig")
class OIGReader(RecordReader):
    """Read OIG ``text`` dialogues, splitting turns at user/assistant labels at line starts.

    A label counts only at the start of the text or of a line, so ``<bot>:`` quoted inside a
    sentence stays text. ``metadata`` is kept in meta; subset is ``metadata.source``, else the
    file name. Wrapped files (``{"jokes_list": [...]}``) need ``records_key``.

    Reasons: no_turns (no label, or text before the first label), no_assistant_turn (no
    assistant label at a line start: check ``assistant_labels``), missing_field, wrong_type, plus
    the container reasons
    json_decode, invalid_utf8, lone_surrogate, conflict_marker, too_deep, record_too_large, truncated,
    truncated_file, damaged_file.
    """

    format = "oig"

    class Params(StepParams):
        user_labels: list[str] = Field(
            default_factory=lambda: ["<human>:"],
            min_length=1,
            description="Labels that open a user turn at the start of a line.",
        )
        assistant_labels: list[str] = Field(
            default_factory=lambda: ["<bot>:", "Rosey:"],
            min_length=1,
            description=(
                "Labels that open an assistant turn at the start of a line; OIG's known bot labels by "
                "default (`<bot>:`, and `Rosey:` of the joke-explanation subset)."
            ),
        )
        records_key: str | None = Field(
            None, description="Key of the record list in wrapped files such as `{jokes_list: [...]}`."
        )

        @field_validator("user_labels", "assistant_labels")
        @classmethod
        def _non_blank(cls, v: list[str]) -> list[str]:
            if any(not lab.strip() for lab in v):
                raise ValueError("labels must be non-blank strings")
            return v

        @model_validator(mode="after")
        def _disjoint(self) -> OIGReader.Params:
            clash = set(self.user_labels) & set(self.assistant_labels)
            if clash:
                raise ValueError(f"labels {sorted(clash)} are both user and assistant labels")
            return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._role_of = {lab: "user" for lab in self.params.user_labels} | {
            lab: "assistant" for lab in self.params.assistant_labels
        }
        alts = "|".join(re.escape(lab) for lab in sorted(self._role_of, key=len, reverse=True))
        self._label_re = re.compile(f"(?m)^(?:{alts})")

    def raw_records(self, path: str) -> Iterator[RawRecord]:
        if path.startswith("hub:"):  # the base reader streams Hub datasets
            yield from super().raw_records(path)
            return
        head = head_bytes(path)
        check_head(path, head)
        kind = sniff(head)
        if kind not in ("json", "empty"):
            raise InputError(
                f"{display_path(path)}: expected OIG JSON/JSONL but the file looks like {kind}; "
                "set the source's `format:` to the right reader (see `curate steps read`)"
            )
        key = self.params.records_key
        for rr in iter_json_records(path, key, self.max_depth):
            if key is None and rr.record == 1 and isinstance(rr.obj, dict) and "text" not in rr.obj:
                wrapped = [
                    k for k, v in rr.obj.items() if isinstance(v, list) and v and isinstance(v[0], dict)
                ]
                if len(wrapped) == 1:
                    raise InputError(
                        f"{display_path(path)}: the records are wrapped in one object under key {wrapped[0]!r} "
                        f"({len(rr.obj[wrapped[0]])} records); set the source's `records_key: {wrapped[0]}`"
                    )
            yield rr

    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        stem = file_subset(path)
        for item in super().records(path, source):
            if isinstance(item, dict) and item["subset"] is None:
                item["subset"] = stem
            yield item

    def parse(self, obj: Any) -> Parsed:
        text = require(obj, "text")
        matches = list(self._label_re.finditer(text))
        if not matches:
            raise RecordError("no_turns", f"no speaker label ({', '.join(self._role_of)}) at a line start")
        lead = text[: matches[0].start()]
        if lead.strip():
            raise RecordError("no_turns", f"text before the first speaker label: {lead.strip()[:80]!r}")
        turns = []
        for i, m in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            turns.append({"role": self._role_of[m.group()], "content": text[m.end() : end].strip()})
        if not any(t["role"] == "assistant" for t in turns):
            found = sorted({m.group(1).strip() for m in _LINE_LABEL.finditer(text)} - set(self._role_of))
            hint = f"; labels seen at line starts: {found}" if found else ""
            raise RecordError(
                "no_assistant_turn",
                f"no assistant label ({', '.join(self.params.assistant_labels)}) at a line start{hint}; "
                "set assistant_labels",
            )
        metadata = obj.get("metadata")
        subset = metadata.get("source") if isinstance(metadata, dict) else None
        meta = {k: v for k, v in obj.items() if k != "text"}
        return Parsed(
            turns=turns, subset=subset if isinstance(subset, str) and subset else None, meta=meta or None
        )
