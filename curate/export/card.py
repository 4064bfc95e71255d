"""The dataset card (README.md): Hub YAML front matter plus a body built from the run's report.

The front matter is produced with ``yaml.safe_dump`` from a dict (never by text templating, so
odd source names cannot break the YAML); the body comes from ``templates/dataset_card.md.j2``.
Every count in the card is taken from the run's report and the exported files, and
:func:`build_card` checks that they agree before anything is written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from curate.errors import ConfigError, CurateError
from curate.export.formats import REASONS
from curate.export.hub import SplitFiles
from curate.export.licenses import LicenseSummary

# Hub size buckets (https://huggingface.co/docs/hub/datasets-cards), upper bounds exclusive.
_SIZE_BUCKETS: tuple[tuple[float, str], ...] = (
    (1e3, "n<1K"),
    (1e4, "1K<n<10K"),
    (1e5, "10K<n<100K"),
    (1e6, "100K<n<1M"),
    (1e7, "1M<n<10M"),
    (1e8, "10M<n<100M"),
    (1e9, "100M<n<1B"),
    (1e10, "1B<n<10B"),
    (1e11, "10B<n<100B"),
    (1e12, "100B<n<1T"),
)
# ISO 639-1/639-3 codes, optionally with a region or script (the Hub's `language:` field).
_LANG_CODE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
FORMAT_LABELS = {
    "hub": "Parquet (Hugging Face `datasets`)",
    "sharegpt": "ShareGPT JSON (FastChat / LLaMA-Factory `sharegpt`)",
    "alpaca": "Alpaca JSON (LLaMA-Factory `alpaca`, with `history`)",
    "openai": "OpenAI `messages` JSONL",
    "text": "JSONL `text` with a chat template",
}
_FORMAT_COLUMNS = {
    "sharegpt": "`id`, `conversations`: list of `{from, value}` with from = system | human | gpt | observation "
    "(tool results). A `dataset_info.json` for LLaMA-Factory sits beside the files.",
    "alpaca": "`id`, `instruction` (the whole user turn), `input` (always empty), `output`, `system` (when the "
    "conversation has one), `history` (earlier `[user, assistant]` pairs). A `dataset_info.json` for "
    "LLaMA-Factory sits beside the files.",
    "openai": "`messages`: list of `{role, content}` with role = system | user | assistant | tool.",
    "text": "`text`: the conversation rendered with the `{template}` chat template.",
}


def size_category(n: int) -> str:
    for bound, label in _SIZE_BUCKETS:
        if n < bound:
            return label
    return "n>1T"


@dataclass
class CardInput:
    """Everything the card shows. ``steps``/``sources``/``totals`` follow report.json."""

    name: str
    spec: Mapping[str, Any]
    steps: Sequence[Mapping[str, Any]]
    licenses: LicenseSummary
    splits: Sequence[SplitFiles]
    exported_by_source: Mapping[str, Mapping[str, int]]  # source -> split -> rows
    n_kept: int
    kept_by_source: Mapping[str, int] = field(default_factory=dict)
    fmt: str = "hub"
    template: str | None = None
    seed: int = 0
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    totals: Mapping[str, Any] | None = None
    diversity: Mapping[str, Any] | None = None
    languages: Mapping[str, int] = field(default_factory=dict)
    lang_col: str | None = None
    score_types: Mapping[str, str] = field(default_factory=dict)
    features: list[dict[str, Any]] | None = None
    skipped: Mapping[str, int] = field(default_factory=dict)
    data_files: Mapping[str, str] = field(default_factory=dict)  # split -> glob relative to the folder
    no_assistant: int = 0  # exported conversations without an assistant turn
    trial: str | None = None  # the run only tried the recipe (--dry-run, --limit N)

    @property
    def n_exported(self) -> int:
        return sum(s.rows for s in self.splits)


def _top_reasons(rep: Mapping[str, Any], k: int = 3) -> str:
    counts: dict[str, int] = {}
    for key in ("rejected", "quarantined"):
        for reason, n in (rep.get(key) or {}).items():
            label = reason if key == "rejected" else f"quarantined: {reason}"
            counts[label] = counts.get(label, 0) + int(n)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return ", ".join(f"{r} {n:,}" for r, n in top) or "-"


def check_counts(card: CardInput) -> None:
    """The card must say what the files hold and what the run kept. Raises CurateError."""
    by_source = sum(sum(v.values()) for v in card.exported_by_source.values())
    if by_source != card.n_exported:
        raise CurateError(f"internal: per-source rows {by_source} != split rows {card.n_exported}")
    if card.n_exported + sum(card.skipped.values()) != card.n_kept:
        raise CurateError(
            f"exported {card.n_exported} + skipped {sum(card.skipped.values())} != {card.n_kept} kept records"
        )
    if card.totals and int(card.totals.get("kept", card.n_kept)) != card.n_kept:
        raise CurateError(
            f"the run's report says {card.totals['kept']} records were kept but its final step holds {card.n_kept}; "
            "the run directory is inconsistent (an unfinished or resumed run?). Re-run or resume it, then export."
        )
    for sid, st in card.sources.items():
        if "kept" in st and int(st["kept"]) != int(card.kept_by_source.get(sid, 0)):
            raise CurateError(
                f"the run's report says source {sid} kept {st['kept']} records but the data holds "
                f"{card.kept_by_source.get(sid, 0)}; the run directory is inconsistent."
            )
    if card.steps:
        last = card.steps[-1]
        if int(last.get("n_out", card.n_kept)) != card.n_kept:
            raise CurateError(
                f"the last step report ({last.get('step_id')}) kept {last.get('n_out')} records but the data holds "
                f"{card.n_kept}; the run directory is inconsistent."
            )


def front_matter(card: CardInput) -> dict[str, Any]:
    lic = card.licenses
    meta: dict[str, Any] = {"license": lic.card_value}
    if "other" in lic.licenses:
        meta["license_name"] = "upstream-terms"  # the body's licence section says which sources and why
    langs = sorted(c for c in card.languages if _LANG_CODE.match(c))
    if langs:
        meta["language"] = langs
    meta["size_categories"] = [size_category(card.n_exported)]
    meta["task_categories"] = ["text-generation"]
    meta["tags"] = ["curate", "instruction-tuning", "conversational"]
    meta["pretty_name"] = card.name
    if card.data_files:
        meta["configs"] = [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": p} for s, p in card.data_files.items()],
            }
        ]
    if card.features is not None:
        meta["dataset_info"] = {
            "features": card.features,
            "splits": [{"name": s.name, "num_bytes": s.num_bytes, "num_examples": s.rows} for s in card.splits],
            "dataset_size": sum(s.num_bytes for s in card.splits),
        }
    return meta


def _fmt_number(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def generated_by(card: CardInput) -> list[str]:
    """One line per `generate.*` step of the recipe: what it wrote, with which model and settings."""
    out = []
    extra = {str(r.get("step_id")): r.get("extra") or {} for r in card.steps}
    for st in card.spec.get("steps", []) or []:
        use = str(st.get("use") or "")
        if not use.startswith("generate."):
            continue
        sid = str(st.get("id") or use)
        params = st.get("params") or {}
        llm, sampling = params.get("llm") or {}, params.get("sampling") or {}
        settings = ", ".join(f"{k} {sampling[k]}" for k in ("temperature", "top_p", "max_tokens") if k in sampling)
        what = "assistant answers" if use == "generate.responses" else "conversations (instruction, input, answer)"
        n = extra.get(sid, {}).get("generated")
        count = f"{int(n):,} " if isinstance(n, (int, float)) else ""
        out.append(f"{count}{what} were written by the model `{llm.get('model')}` (step `{sid}`, {use}; "
                   f"{settings or 'default sampling'}, seed {card.spec.get('seed', 0)}): model output, not human writing.")
    return out


def _limits(card: CardInput) -> list[str]:
    out = generated_by(card) + list(card.licenses.warnings)
    generated = [p.source for p in card.licenses.per_source if p.info.note and "generat" in p.info.note]
    if generated:
        out.append(f"Responses of {', '.join(f'`{s}`' for s in generated)} are model generations, not human answers.")
    for reason, n in sorted(card.skipped.items(), key=lambda kv: -kv[1]):
        out.append(f"{n:,} kept conversations are not in this export: {REASONS.get(reason, reason)} (`{reason}`); "
                   "their ids are listed in `skipped.jsonl`.")
    if card.no_assistant:
        out.append(f"{card.no_assistant:,} exported conversations have no assistant turn (`no_assistant_turn` in "
                   "`export.json`): they hold no response to train on.")
    if card.trial:
        out.append(f"This export comes from a trial run (`{card.trial}`), not from the whole curated set.")
    if card.lang_col is None:
        out.append("No language identification step ran: `language` is empty and the card lists no languages.")
    else:
        unknown = card.n_exported - sum(card.languages.values())
        if unknown:
            out.append(f"{unknown:,} conversations have no language code from `{card.lang_col}`.")
    kinds = {str(s.get("kind")) for s in card.steps}
    if "dedup" not in kinds:
        out.append("No dedup step ran: duplicates may remain.")
    out.append("Splits are drawn per record (seeded hash of the id, stratified by source): near-duplicates that "
               "survived dedup can sit in different splits.")
    for s in card.splits:
        if s.rows == 0:
            out.append(f"Split `{s.name}` is empty: the set is too small for the requested sizes.")
    return out


def render_body(card: CardInput) -> str:
    try:
        import jinja2
    except ImportError:
        raise ConfigError("writing the dataset card needs jinja2: pip install 'curate[export]'") from None
    text = resources.files("curate.export").joinpath("templates/dataset_card.md.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    funnel = [
        {
            "step": r.get("step_id"),
            "kind": r.get("kind") or "",
            "n_in": int(r.get("n_in", 0)) + int(r.get("n_added", 0) or 0),
            "n_out": int(r.get("n_out", 0)),
            "removed": sum((r.get("rejected") or {}).values()) + sum((r.get("quarantined") or {}).values()),
            "reasons": _top_reasons(r),
        }
        for r in card.steps
    ]
    kinds = {str(r.get("kind")) for r in card.steps} | {str(r.get("step_id")) for r in card.steps}
    if card.sources and not kinds & {"read", "ingest"}:  # the reports start after ingest: add its row
        read = sum(int(s.get("read", 0)) for s in card.sources.values())
        ingested = sum(int(s.get("ingested", 0)) for s in card.sources.values())
        quarantined = sum(int(s.get("quarantined", 0)) for s in card.sources.values())
        funnel.insert(0, {"step": "ingest", "kind": "read", "n_in": read, "n_out": ingested,
                          "removed": read - ingested,
                          "reasons": f"quarantined {quarantined:,}" if quarantined else "-"})
    spec_sources = {str(s["id"]): s for s in card.spec.get("sources", [])}
    lic_by_source = {p.source: p for p in card.licenses.per_source}
    source_ids = list(dict.fromkeys([*spec_sources, *card.sources, *card.exported_by_source]))
    source_rows = []
    for sid in source_ids:
        st = card.sources.get(sid, {})
        exp = card.exported_by_source.get(sid, {})
        source_rows.append(
            {
                "source": sid,
                "format": st.get("format") or spec_sources.get(sid, {}).get("format", "?"),
                "license": f"`{lic_by_source[sid].info.license}`" if sid in lic_by_source else "?",
                "read": _fmt_number(st["read"]) if "read" in st else "-",
                "quarantined": _fmt_number(st["quarantined"]) if "quarantined" in st else "-",
                "kept": _fmt_number(st["kept"] if "kept" in st else card.kept_by_source.get(sid, 0)),
                "exported": f"{sum(exp.values()):,}",
                "splits": {k: f"{v:,}" for k, v in exp.items()},
            }
        )
    citations = list(dict.fromkeys(p.info.citation for p in card.licenses.per_source if p.info.citation))
    license_rows = [
        {"source": p.source, "license": p.info.license, "dataset": p.info.dataset if not p.overridden else "",
         "url": p.info.url, "note": p.info.note}
        for p in card.licenses.per_source
    ]
    fmt_label = FORMAT_LABELS[card.fmt] + (f" (`{card.template}`)" if card.template else "")
    lic = card.licenses
    license_text = ", ".join(f"`{x}`" for x in lic.licenses)
    if len(lic.licenses) > 1:
        license_text += f" (most restrictive: `{lic.most_restrictive}`)"
    description = card.spec.get("description")
    summary = (
        f"{description.strip()}\n\n" if description else ""
    ) + (
        f"Instruction and chat conversations curated with curate from "
        f"{len(source_rows)} source(s) by the recipe `{card.name}`: each record was ingested into one "
        "conversation schema, cleaned, filtered and deduplicated as the funnel below shows."
    )
    diversity = [(k, _fmt_number(v)) for k, v in (card.diversity or {}).items() if not isinstance(v, (dict, list))]
    return env.from_string(text).render(
        title=card.name,
        summary=summary,
        n_exported=card.n_exported,
        n_kept=card.n_kept,
        fmt=card.fmt,
        fmt_label=fmt_label,
        fmt_columns=_FORMAT_COLUMNS.get(card.fmt, "").replace("{template}", card.template or ""),
        splits=card.splits,
        seed=card.seed,
        license_text=license_text,
        languages=sorted(card.languages.items(), key=lambda kv: (-kv[1], kv[0])),
        lang_col=card.lang_col,
        score_cols=list(card.score_types),
        score_types=card.score_types,
        funnel=funnel,
        totals=card.totals,
        source_rows=source_rows,
        diversity=diversity,
        license_rows=license_rows,
        license_count=len(lic.licenses),
        most_restrictive=lic.most_restrictive,
        citations=citations,
        recipe_yaml=yaml.safe_dump(dict(card.spec), sort_keys=False, allow_unicode=True),
        limits=_limits(card),
    )


def build_card(card: CardInput) -> str:
    """The README.md text. Raises CurateError when the counts disagree."""
    check_counts(card)
    head = yaml.safe_dump(front_matter(card), sort_keys=False, allow_unicode=True)
    return f"---\n{head}---\n\n{render_body(card)}"
