"""Quality signals against records labelled by a person (``shared/gold``): the classifier and the LLM judge.

For each signal, a table per threshold: how many records of each gold class it would remove, above all
how many ``other_bad`` records (what no cleaning filter is meant to catch) at the cost of how many
``keep`` records.

* ``score.classifier`` (logistic regression, balanced classes, trained on keep vs every other label):
  cross-validated on the gold set, so every record is scored by a model that never saw it. Features:
  TF-IDF word 1-2-grams of the conversation, and (``--embed``) MiniLM embeddings of the conversation.
* ``score.llm_judge`` (1-10 rubric, strict JSON): against an OpenAI-compatible endpoint you run
  (``--judge-base-url`` and ``--judge-model``), or ``--judge-tiny``: the tiny random Llama of
  ``curate.train.tiny`` served by ``transformers serve``, which checks the plumbing and says nothing
  about judging (its answers are noise, so every record ends unparsed).

    .venv/bin/python bench/quality_signals.py
    .venv/bin/python bench/quality_signals.py --embed
    .venv/bin/python bench/quality_signals.py --judge-tiny --judge-limit 60
    .venv/bin/python bench/quality_signals.py --judge-base-url http://localhost:8080/v1 --judge-model qwen2.5-7b

Exit status 0 always: this prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GOLD = ROOT.parent / "shared" / "gold" / "filters-dev.jsonl"
CLASSES = ("other_bad", "refusal", "failed", "degenerate", "non_english")
PROB_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def removal_table(labels: list[str], rows: list[tuple[str, list[bool]]]) -> str:
    """Markdown: per threshold, removed records per gold class (of how many) and keep records lost."""
    n = Counter(labels)
    present = [c for c in CLASSES if n[c]]
    head = "| threshold | removed | " + " | ".join(f"{c} (of {n[c]})" for c in present) + \
        f" | keep removed (of {n['keep']}) | precision |"
    out = [head, "|---" * (4 + len(present)) + "|"]
    for name, mask in rows:
        got = Counter(lab for lab, m in zip(labels, mask) if m)
        total = sum(got.values())
        bad = total - got["keep"]
        prec = f"{bad / total:.0%}" if total else "-"
        out.append(f"| {name} | {total} | " + " | ".join(str(got[c]) for c in present) +
                   f" | {got['keep']} ({got['keep'] / max(1, n['keep']):.1%}) | {prec} |")
    return "\n".join(out)


def classifier_section(records: list[Any], texts: list[str], folds: int, seed: int, embed: bool) -> dict[str, Any]:
    from curate.steps.score.classifier import auc, cross_validated_proba, make_model

    labels = [r.label for r in records]
    y = np.array([lab != "keep" for lab in labels], dtype=np.int64)
    feats: list[tuple[str, Any, Any]] = [("TF-IDF word 1-2-grams", texts, make_model("tfidf", seed=seed))]
    if embed:
        t0 = time.perf_counter()
        from sentence_transformers import SentenceTransformer

        from curate.steps.embed.sentence_transformer import resolve_model_path

        path, _ = resolve_model_path("all-MiniLM-L6-v2")
        model = SentenceTransformer(path, device="cpu")
        vecs = np.asarray(model.encode(texts, batch_size=32, normalize_embeddings=True), dtype=np.float32)
        print(f"(embedded {len(texts)} conversations with all-MiniLM-L6-v2 in {time.perf_counter() - t0:.0f}s)")
        feats.append(("MiniLM embeddings of the conversation", vecs, make_model("embeddings", seed=seed)))
    result: dict[str, Any] = {}
    for name, x, model in feats:
        t0 = time.perf_counter()
        oof = cross_validated_proba(x, y, model, folds=folds, seed=seed)
        secs = time.perf_counter() - t0
        ob = np.array([lab in ("keep", "other_bad") for lab in labels])
        auc_all = auc(y, oof)
        auc_other = auc((np.array(labels)[ob] == "other_bad").astype(np.int64), oof[ob])
        print(f"\n### score.classifier: {name}, {folds}-fold cross-validated ({secs:.1f}s)\n")
        print(f"ROC AUC keep vs every bad label: {auc_all:.3f}; keep vs other_bad only: {auc_other:.3f}\n")
        rows = [(f"P(bad) >= {t}", [bool(s >= t) for s in oof]) for t in PROB_THRESHOLDS]
        print(removal_table(labels, rows))
        result[name] = {"auc": auc_all, "auc_other_bad": auc_other, "oof": oof.round(4).tolist()}
    return result


def judge_section(records: list[Any], args: argparse.Namespace) -> dict[str, Any] | None:
    from curate.steps.base import StepContext
    from curate.steps.score.llm_judge import LLMJudgeScorer

    idx = list(range(len(records)))
    if args.judge_limit and args.judge_limit < len(idx):
        rng = random.Random(args.seed)  # every non-keep record first, then a seeded sample of keep ones
        bad = [i for i in idx if records[i].label != "keep"]
        keep = [i for i in idx if records[i].label == "keep"]
        rng.shuffle(bad)
        rng.shuffle(keep)
        half = min(len(bad), args.judge_limit // 2)
        idx = sorted(bad[:half] + keep[: args.judge_limit - half])
    picked = [records[i] for i in idx]

    def run(base_url: str, model: str, what: str) -> dict[str, Any]:
        llm = {"base_url": base_url, "model": model, "max_concurrency": args.judge_concurrency,
               "timeout_s": 600, "max_retries": 2}
        step = LLMJudgeScorer(LLMJudgeScorer.Params.model_validate(
            {"llm": llm, "on_unparsed": "keep", "sampling": {"temperature": 0.0, "max_tokens": args.judge_max_tokens}}))
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp) / "runs" / "bench" / "1"
            step.prepare(StepContext(run_dir=run_dir, work_dir=run_dir / "01_score_llm_judge", progress=True))
            t0 = time.perf_counter()
            out = step.judge([r.turns for r in picked])
            secs = time.perf_counter() - t0
        labels = [r.label for r in picked]
        scores = [s for s, _, _ in out]
        stats = step.client.stats
        print(f"\n### score.llm_judge: {what} ({len(picked)} records, {secs:.0f}s, {stats.requests} requests, "
              f"{stats.prompt_tokens:,} prompt + {stats.completion_tokens:,} completion tokens)\n")
        unparsed = int(step.report_extra.get("judge_unparsed", 0))
        print(f"unparsed after one retry: {unparsed}; request errors: {sum(1 for _, _, e in out if e)}\n")
        rows = [(f"score < {t}", [s is not None and s < t for s in scores]) for t in range(2, 11)]
        rows.append(("unparsed (null)", [s is None for s in scores]))
        print(removal_table(labels, rows))
        return {"what": what, "records": len(picked), "unparsed": unparsed, "scores": scores, "labels": labels}

    if args.judge_base_url:
        if not args.judge_model:
            raise SystemExit("--judge-base-url needs --judge-model")
        return run(args.judge_base_url, args.judge_model, f"{args.judge_model} at {args.judge_base_url}")
    if args.judge_tiny:
        from curate.llm.serve import ensure_chat_template, transformers_serve
        from curate.train.tiny import build_tiny

        with tempfile.TemporaryDirectory() as tmp:
            folder = build_tiny(Path(tmp) / "tiny-llama")
            ensure_chat_template(folder)
            with transformers_serve(folder) as server:
                print("\nNOTE: the judge below is the tiny random Llama (0.5M parameters) served by transformers serve:"
                      " a plumbing check of requests, retries, parsing and accounting, NOT a judge. No real judge "
                      "model was available on this machine; its figures say nothing about LLM judging.")
                return run(server.base_url, server.model, "tiny random Llama via transformers serve (plumbing only)")
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="labelled JSONL (default: %(default)s)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embed", action="store_true", help="also MiniLM embeddings (needs curate[embed])")
    ap.add_argument("--judge-base-url", help="OpenAI-compatible endpoint of a judge model you run")
    ap.add_argument("--judge-model", help="the judge model's name at that endpoint")
    ap.add_argument("--judge-tiny", action="store_true", help="plumbing check with the tiny local Llama")
    ap.add_argument("--judge-limit", type=int, help="judge at most N records (every bad one first, then keep)")
    ap.add_argument("--judge-concurrency", type=int, default=2)
    ap.add_argument("--judge-max-tokens", type=int, default=96)
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curate.errors import CurateError
    from curate.gold import gold_batch, load_gold
    from curate.steps.score.classifier import texts_for

    try:
        records = load_gold(args.gold)
    except CurateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 0
    texts = texts_for(gold_batch(records), "conversation")
    print(f"# Quality signals on {args.gold.name}: {len(records)} records ("
          + ", ".join(f"{k} {v}" for k, v in Counter(r.label for r in records).most_common()) + ")")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    out: dict[str, Any] = {"gold": str(args.gold), "classifier": classifier_section(
        records, texts, args.folds, args.seed, args.embed)}
    try:
        out["judge"] = judge_section(records, args)
    except CurateError as e:
        print(f"\njudge skipped: {e}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
