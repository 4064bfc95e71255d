"""``curate finetune --check``: show what the model is trained on, and refuse data it would learn wrongly.

It runs before every training run. It renders a few conversations with the supervised tokens marked
``[[...]]`` and fails (non-zero exit, every problem listed) when a conversation has no supervised tokens,
an assistant turn would be cut by truncation (``data.over_length=fail``), the chat template does not
match (drops a role, rewrites earlier turns, rejects a role), the decoded supervised tokens do not hold
the assistant's words, or more than ``data.max_dropped_frac`` of the conversations were dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.errors import CurateError
from curate.train.data import IGNORE, Conversation, Encoded, Example

# Decoding every sequence is slow on big sets; the template is the same for all, so a sample suffices.
VERIFY_DECODE = 200


class CheckError(CurateError):
    """The data, template or truncation would train the model on the wrong tokens."""


def _norm(text: str) -> str:
    return " ".join(text.split())


def marked(ex: Example, tokenizer: Any) -> str:
    """The sequence as text with supervised runs wrapped in ``[[...]]``."""
    out: list[str] = []
    k = 0
    ids = ex.input_ids
    while k < len(ids):
        sup = ex.labels[k] != IGNORE
        j = k
        while j < len(ids) and (ex.labels[j] != IGNORE) == sup:
            j += 1
        text = tokenizer.decode(ids[k:j], skip_special_tokens=False)
        out.append(f"[[{text}]]" if sup else text)
        k = j
    return "".join(out)


def verify_spans(ex: Example, conv: Conversation, tokenizer: Any) -> list[str]:
    """Problems where the decoded supervised tokens do not contain the assistant turn's content."""
    problems = []
    for (a, b), turn in zip(ex.spans, ex.span_turns):
        decoded = tokenizer.decode(ex.input_ids[a:b], skip_special_tokens=False)
        want = _norm(conv.turns[turn]["content"])
        if want and want not in _norm(decoded):
            problems.append(
                f"conversation {ex.id}: supervised tokens of assistant turn {turn} decode to {decoded[:80]!r}, "
                f"which does not hold the turn's content {want[:80]!r} (tokenizer offsets do not match the text)"
            )
    return problems


def run_check(
    enc: Encoded,
    convs: Sequence[Conversation],
    tokenizer: Any,
    template_label: str,
    max_dropped_frac: float,
    show: int = 3,
    split: str = "train",
) -> str:
    """Return the report text; raise CheckError listing every problem when there is one."""
    by_id = {c.id: c for c in convs}
    problems = list(enc.problems)
    for ex in enc.examples[:VERIFY_DECODE]:
        problems += verify_spans(ex, by_id[ex.id], tokenizer)
    if enc.n_convs == 0:
        problems.append(f"{split}: the split is empty; re-export with rows in it, or choose another split")
    if enc.n_convs and not enc.examples and not problems:
        problems.append(f"{split}: no conversation is left to train on")
    if enc.n_convs and enc.n_dropped / enc.n_convs > max_dropped_frac:
        reasons = ", ".join(f"{k}={v}" for k, v in enc.dropped.items())
        problems.append(
            f"{split}: {enc.n_dropped} of {enc.n_convs} conversations dropped as too long ({reasons}), more than "
            f"data.max_dropped_frac={max_dropped_frac}; raise data.max_seq_len or filter long conversations"
        )
    head_line = (
        f"check [{split}]: template {template_label}; {enc.n_convs} conversations -> {len(enc.examples)} "
        f"sequences, {enc.n_tokens} tokens, {enc.n_supervised} supervised "
        f"({100 * enc.n_supervised / max(enc.n_tokens, 1):.1f}%), "
        f"{sum(e.truncated for e in enc.examples)} truncated at a turn boundary, dropped {enc.n_dropped}"
    )
    lines = [head_line]
    for ex in enc.examples[:show]:
        lines.append(f"--- {ex.id} ({len(ex.input_ids)} tokens; supervised in [[...]])")
        lines.append(marked(ex, tokenizer))
    report = "\n".join(lines)
    if problems:
        head = "\n  - ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        hint = ""
        if any("template does not match" in p for p in problems):
            hint = (
                f"\nhint: the template used is {template_label!r}; --set model.chat_template=chatml (or alpaca, "
                "vicuna) uses one of curate's, which render every role"
            )
        raise CheckError(f"{report}\n--check failed: {len(problems)} problem(s):\n  - {head}{more}{hint}")
    return report
