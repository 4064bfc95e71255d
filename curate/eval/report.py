"""``eval.json`` (every figure) and ``eval.md`` (a section a dataset or model card can include as is)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.eval.pairwise import PairResult, Tally
from curate.eval.perplexity import BASE, PerplexityResult


def markdown(ppl: PerplexityResult | None, pair: Tally | None, judge: dict[str, Any] | None,
             examples: list[tuple[str, str, str, PairResult]] | None = None) -> str:
    out = ["## Evaluation", ""]
    if ppl is not None:
        first = ppl.scores[0]
        out += [
            (f"Held-out perplexity on {ppl.eval_set}: {ppl.conversations:,} conversations, {first.tokens:,} "
            "assistant tokens. The loss is the token-weighted mean cross-entropy over assistant tokens only, "
            f"masked as in training; chat template: {ppl.template}. Lower is better; the interval is a 95% "
            "bootstrap over conversations."),
            "",
            "| model | what | loss | perplexity | 95% interval | vs base | eval conversations it trained on |",
            "|---|---|---:|---:|---|---:|---:|",
        ]
        base = next((s for s in ppl.scores if s.kind == BASE), None)
        for s in ppl.scores:
            rel = f"{s.perplexity / base.perplexity - 1:+.1%}" if base and s is not base else ""
            seen = "unknown" if s.seen_in_training is None else str(s.seen_in_training)
            out.append(f"| {s.name} | {s.kind} `{s.path}` | {s.loss:.4f} | {s.perplexity:.3f} | "
                       f"{s.ppl_ci95[0]:.3f} - {s.ppl_ci95[1]:.3f} | {rel} | {seen if s.kind == 'adapter' else ''} |")
        if ppl.lower_loss_share:
            out += ["", "Share of conversations where the first model's loss is lower: " + "; ".join(
                f"{k}: {v:.0%}" for k, v in ppl.lower_loss_share.items()) + "."]
        for note in ppl.notes:
            out.append(f"\nNote: {note}.")
        out.append("")
    if pair is not None and judge is not None:
        rate = f"{pair.win_rate_a:.1%}" if pair.win_rate_a is not None else "n/a"
        out += [
            (f"Pairwise comparison on {pair.pairs} prompts from {judge['prompts']}, judged by `{judge['model']}` "
            f"at {judge['base_url']} with MT-bench's pair prompt. Each pair was judged twice with the answers in "
            "both orders; a model wins only when both orders pick it, otherwise the pair is a tie. Answers: "
            f"{judge['answers']}."),
            "",
            (f"| {pair.model_a} wins | {pair.model_b} wins | ties | of which the orders disagreed | errors | "
            f"win rate of {pair.model_a} |"),
            "|---:|---:|---:|---:|---:|---:|",
            f"| {pair.wins_a} | {pair.wins_b} | {pair.ties} | {pair.inconsistent} | {pair.errors} | {rate} |",
            "",
        ]
        if pair.first_position_share is not None:
            out.append(f"The judge named the answer shown first in {pair.first_position_share:.0%} of its "
                       "single verdicts (50% means no position bias).")
            out.append("")
        if examples:
            out += ["<details><summary>Examples</summary>", ""]
            for question, a, b, r in examples:
                out += [f"**{r.id}** ({r.outcome}; orders: {r.first} / {r.second})", "",
                        f"> {_quote(question)}", "", f"- {pair.model_a}: {_quote(a)}", f"- {pair.model_b}: {_quote(b)}", ""]
            out += ["</details>", ""]
    return "\n".join(out)


def _quote(text: str, n: int = 300) -> str:
    s = " ".join(text.split())
    return s if len(s) <= n else s[: n - 3] + "..."


def write_report(out_dir: Path, data: dict[str, Any], md: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j = out_dir / "eval.json"
    m = out_dir / "eval.md"
    j.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    m.write_text(md, encoding="utf-8")
    return j, m
