"""Dedup accuracy on the demo corpus: precision and recall of each dedup level against its ground truth.

Generates the demo corpus (``curate demo-data``), runs the five readers and ``dedup.exact`` ->
``dedup.minhash`` (-> ``embed.sentence_transformer`` -> ``dedup.semantic`` with ``--semantic``; embedding
takes minutes on CPU) through the real runner, and scores each step's ledger with
``curate.analysis.dedup_eval``. Prints figures; never a timed test.

    .venv/bin/python bench/dedup_accuracy.py                      # 20K records, exact + MinHash
    .venv/bin/python bench/dedup_accuracy.py --semantic --json    # + semantic dedup on prompt embeddings

Definitions. A removal is correct when the removed record and the record it names in ``duplicate_of``
belong to the same planted duplicate cluster (exact_dup, near_dup, cross_source_dup: a copy and its
original); precision = correct removals / all removals by the step. A planted pair is found when the
step's decisions join the copy and its original (whichever of the two survives). Recall per level
counts the kinds that level is meant to catch: exact -> exact_dup + cross_source_dup (exact copies,
within and across sources), MinHash and semantic -> near_dup. ``recall_eligible`` restricts near_dup
recall to the planted pairs whose word-n-gram Jaccard, on the text MinHash compares, reaches the
step's threshold (the pairs MinHash is asked to find).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curate import demo
from curate.analysis.dedup_eval import attach_ids, evaluate, load_ground_truth
from curate.index import minhash as mh
from curate.layout import RunLayout
from curate.pipeline.runner import run_pipeline
from curate.pipeline.spec import build_plan
from curate.steps.embed.texts import text_expr

FORMATS = {"oig": "oig", "stackoverflow": "stackexchange", "p3": "p3", "sharegpt": "sharegpt", "alpaca": "alpaca"}
# What each level is scored on (recall); precision always counts every removal of the step.
TARGET_KINDS = {"exact": {"exact_dup", "cross_source_dup"}, "minhash": {"near_dup"}, "semantic": {"near_dup"}}
STEP_IDS = {"exact": "dedup_exact", "minhash": "dedup_minhash", "semantic": "dedup_semantic"}  # default ids


def recipe(corpus: Path, *, semantic: bool, threshold_jaccard: float, ngram: int, threshold_cosine: float,
           seed: int) -> dict[str, Any]:
    """The dedup part of pipelines/gpt4all.yaml over all five demo sources (same step parameters)."""
    steps: list[dict[str, Any]] = [
        {"use": "dedup.exact"},
        {"use": "dedup.minhash", "params": {"threshold_jaccard": threshold_jaccard, "ngram": ngram, "num_perm": 128}},
    ]
    if semantic:
        steps += [
            {"use": "embed.sentence_transformer",
             "params": {"model": "all-MiniLM-L6-v2", "text": "first_user", "max_seq_length": 128}},
            {"use": "dedup.semantic", "params": {"threshold_cosine": threshold_cosine}},
        ]
    return {
        "name": "dedup_accuracy",
        "seed": seed,
        "sources": [{"id": src, "format": fmt, "path": str(corpus / demo.FILES[src])} for src, fmt in FORMATS.items()],
        "steps": steps,
    }


def _ledger(run_dir: Path, index: int, step_id: str) -> pl.DataFrame:
    path = RunLayout(run_dir).step(index, step_id).ledger
    if not path.exists():  # a step that removed nothing writes no ledger
        return pl.DataFrame(schema={"id": pl.Utf8, "duplicate_of": pl.Utf8, "source": pl.Utf8})
    return pl.read_parquet(path, columns=["id", "duplicate_of", "source"])


def near_dup_jaccard(rows: pl.DataFrame, truth: pl.DataFrame, ngram: int) -> pl.DataFrame:
    """``truth`` near_dup rows with ``ngram_jaccard``: the exact shingle Jaccard MinHash verifies, copy vs original."""
    nd = truth.filter((pl.col("kind") == "near_dup") & pl.col("id").is_not_null() & pl.col("of_id").is_not_null())
    texts = rows.select("id", text_expr("conversation"))
    pos = {v: k for k, v in enumerate(texts["id"].to_list())}
    sh = mh.shingle(texts["_text"], ngram=ngram)
    a = np.array([pos[v] for v in nd["id"].to_list()], dtype=np.int64)
    b = np.array([pos[v] for v in nd["of_id"].to_list()], dtype=np.int64)
    return nd.with_columns(pl.Series("ngram_jaccard", mh.jaccard(sh, a, b) if len(a) else np.zeros(0)))


def measure(records: int = demo.DEFAULT_RECORDS, seed: int = 0, *, semantic: bool = False,
            threshold_jaccard: float = 0.8, ngram: int = 5, threshold_cosine: float = 0.95,
            workdir: Path | None = None) -> dict[str, Any]:
    """Generate, run and score; returns the figures as a JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="dedup_accuracy_") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        corpus, run_dir = root / "raw", root / "run"
        t0 = time.perf_counter()
        summary = demo.generate(corpus, records, seed)
        t_gen = time.perf_counter() - t0
        plan = build_plan(recipe(corpus, semantic=semantic, threshold_jaccard=threshold_jaccard, ngram=ngram,
                                 threshold_cosine=threshold_cosine, seed=seed))
        t0 = time.perf_counter()
        result = run_pipeline(plan, run_dir, progress=False, log=lambda msg: None)
        t_run = time.perf_counter() - t0
        rows = pl.read_parquet(RunLayout(run_dir).ingest.kept, columns=["id", "source", "provenance", "turns"])
        truth = attach_ids(load_ground_truth(corpus / "ground_truth.jsonl"), rows)
        nd = near_dup_jaccard(rows, truth, ngram)
        out: dict[str, Any] = {
            "records": records, "seed": seed, "ingested": len(rows),
            "planted": {k: int(v) for k, v in truth.group_by("kind").len().iter_rows()},
            "near_dup_ngram_jaccard_ge_threshold": int((nd["ngram_jaccard"] >= threshold_jaccard).sum()),
            "seconds": {"generate": round(t_gen, 1), "run": round(t_run, 1)},
            "run_dir": str(run_dir) if workdir is not None else None,
            "levels": {},
        }
        step_index = {st.id: i for i, st in enumerate(plan.steps, start=1)}
        for level, step_id in STEP_IDS.items():
            if step_id not in step_index:
                continue
            dec = _ledger(run_dir, step_index[step_id], step_id)
            score = evaluate(dec, truth, TARGET_KINDS[level]).to_json()
            if level in ("minhash", "semantic"):
                eligible = nd.filter(pl.col("ngram_jaccard") >= threshold_jaccard)
                score["recall_eligible"] = (
                    evaluate(dec, eligible, {"near_dup"}).recall if len(eligible) else 1.0
                )
            score["removed_by_source"] = dict(sorted(dec.group_by("source").len().iter_rows()))
            out["levels"][level] = score
        out["funnel"] = [{"step": r.step_id, "in": r.n_in, "out": r.n_out} for r in result.reports]
        out["summary_planted_total"] = summary["planted_total"]
        return out


ROOT = Path(__file__).resolve().parents[1]
REAL_ALPACA = ROOT.parent / "shared" / "data" / "alpaca"


def plant_edits(words: list[str], every: int, rng: random.Random, vocab: list[str]) -> list[str]:
    """One edit every ``every`` words: a substitution, insertion or deletion, chosen at random."""
    out = list(words)
    pos = rng.randrange(every)
    offset = 0
    while pos < len(words):
        k = pos + offset
        op = rng.choice(("sub", "ins", "del"))
        if op == "sub":
            out[k] = rng.choice(vocab)
        elif op == "ins":
            out.insert(k, rng.choice(vocab))
            offset += 1
        elif len(out) > 1:
            del out[k]
            offset -= 1
        pos += every
    return out


OVERLAP_BANDS = (0.95, 0.90, 0.85, 0.80)


def word_overlap(a: str, b: str) -> float:
    """Jaccard of the two texts' sets of lowercased whitespace words."""
    wa, wb = set(a.lower().split()), set(b.lower().split())
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


BAND_NAMES = tuple(f"{lo:.2f}-{min(1.0, lo + 0.05):.2f}" for lo in OVERLAP_BANDS) + (f"<{OVERLAP_BANDS[-1]:.2f}",)


def overlap_band(x: float) -> str:
    """The name of the band of ``BAND_NAMES`` that holds overlap ``x``."""
    for lo, name in zip(OVERLAP_BANDS, BAND_NAMES):
        if x >= lo:
            return name
    return BAND_NAMES[-1]


def measure_real(params: dict[str, Any], everies: tuple[int, ...] = (10, 15, 20, 25, 30), seed: int = 0) -> dict[str, Any]:
    """dedup.minhash on real Alpaca records plus planted near-copies with one edit every N words.

    Originals are the records of ``shared/data/alpaca`` (English files), deduplicated exactly first so
    that only planted pairs are true duplicates; one copy per original and edit rate. A copy is found
    when it and its original end up in one group; a false removal is a removed record whose group
    holds no planted pair of it (two different real records joined). The word overlap of a pair is
    measured, not assumed from the edit rate: the Jaccard of the two texts' sets of lowercased words
    (one substitution in 20 words leaves about 90% of the words shared). Recall is printed per edit
    rate and per measured overlap band.
    """
    import tempfile

    from curate.ingest.alpaca import AlpacaReader
    from curate.ingest.base import read_batches
    from curate.schema import make_batch
    from curate.steps.base import StepContext
    from curate.steps.dedup.minhash import MinHashDedup

    files = [p for p in sorted(REAL_ALPACA.glob("*.json")) if "_zh" not in p.name and "identity" not in p.name]
    base = pl.concat(list(read_batches(AlpacaReader.from_params(), [str(p) for p in files], "alpaca")))
    base = base.unique("content_hash", keep="first", maintain_order=True)
    rng = random.Random(seed)
    texts = [" ".join(t["content"] for t in turns) for turns in base["turns"].to_list()]
    vocab = sorted({w for t in texts for w in t.split()})
    rows = list(base.iter_rows(named=True))
    truth: list[tuple[str, str, int]] = []
    originals = len(rows)
    for every in everies:
        for k, r in enumerate(base.iter_rows(named=True)):
            turns = []
            for t in r["turns"]:
                turns.append({"role": t["role"], "content": " ".join(plant_edits(t["content"].split(), every, rng, vocab))})
            cid = f"copy{every}-{k}"
            rows.append({**r, "id": cid, "turns": turns, "content_hash": None})
            truth.append((cid, r["id"], every))
    ds = make_batch(rows)
    step = MinHashDedup.from_params(**params)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = StepContext(run_dir=Path(tmp), work_dir=Path(tmp) / "01_dedup_minhash", progress=False)
        t0 = time.perf_counter()
        dec = step.decide(ds.lazy(), ctx)
        seconds = time.perf_counter() - t0
    removed = dict(zip(dec["id"].to_list(), dec["duplicate_of"].to_list()))
    # group of each record: follow duplicate_of to the survivor
    def root(x: str) -> str:
        while x in removed:
            x = removed[x]
        return x
    family = {cid: oid for cid, oid, _ in truth}
    by_every: dict[int, list[bool]] = {}
    by_overlap: dict[str, list[bool]] = {}
    hi90: list[bool] = []
    text_of = dict(zip(ds["id"].to_list(), (" ".join(t["content"] for t in ts) for ts in ds["turns"].to_list())))
    for cid, oid, every in truth:
        found = root(cid) == root(oid)
        by_every.setdefault(every, []).append(found)
        overlap = word_overlap(text_of[cid], text_of[oid])
        by_overlap.setdefault(overlap_band(overlap), []).append(found)
        if overlap >= 0.9:
            hi90.append(found)
    # a removal is false when its survivor is not the same real record (two different records joined)
    false_ids = [rid for rid in removed if family.get(rid, rid) != family.get(root(rid), root(rid))]
    false_pairs = [(text_of[family.get(r, r)][:100], text_of[family.get(root(r), root(r))][:100]) for r in false_ids]
    false = len(false_ids)
    return {"originals": originals, "params": params, "seconds": round(seconds, 2),
            "recall_by_edit_rate": {f"1 edit / {e} words": round(sum(v) / len(v), 3)
                                    for e, v in sorted(by_every.items())},
            "recall_by_word_overlap": {band: {"pairs": len(by_overlap[band]),
                                              "recall": round(sum(by_overlap[band]) / len(by_overlap[band]), 3)}
                                       for band in BAND_NAMES if band in by_overlap},
            "recall_at_overlap_90": round(sum(hi90) / max(1, len(hi90)), 3),
            "removed": len(removed), "false_removals": false, "false_pairs": false_pairs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=demo.DEFAULT_RECORDS, help="demo corpus size (default 20,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--semantic", action="store_true", help="also embed prompts (MiniLM, CPU: minutes) and run dedup.semantic")
    ap.add_argument("--threshold-jaccard", type=float, default=0.8)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--threshold-cosine", type=float, default=0.95)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the corpus and run here (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--real", action="store_true",
                    help="planted edits of real Alpaca records (shared/data) instead of the demo corpus")
    args = ap.parse_args(argv)
    if args.real:
        if not REAL_ALPACA.is_dir():
            print(f"no real data at {REAL_ALPACA}")
            return 0
        from curate.steps.dedup.minhash import MinHashDedup

        defaults = MinHashDedup.Params()
        settings = (
            ("common setting (5-grams, Jaccard 0.8, no response check)",
             {"ngram": 5, "threshold_jaccard": 0.8, "min_response_jaccard": 0}),
            (f"{defaults.ngram}-grams, Jaccard {defaults.threshold_jaccard}, no response check",
             {"min_response_jaccard": 0}),
            (f"defaults ({defaults.ngram}-grams, Jaccard {defaults.threshold_jaccard}, response Jaccard >= "
             + f"{defaults.min_response_jaccard})", {}),
        )
        for label, params in settings:
            r = measure_real(params)
            print(f"{label}: {r['originals']} real records + planted copies; {r['removed']} removed, "
                  f"{r['false_removals']} false removals, {r['seconds']} s")
            print(f"  recall at word overlap >= 0.90: {r['recall_at_overlap_90']:.3f}")
            for band, v in r["recall_by_word_overlap"].items():
                print(f"  recall at word overlap {band}: {v['recall']:.3f} ({v['pairs']} pairs)")
            for k, v in r["recall_by_edit_rate"].items():
                print(f"  recall at {k}: {v:.3f}")
        return 0
    res = measure(args.records, args.seed, semantic=args.semantic, threshold_jaccard=args.threshold_jaccard,
                  ngram=args.ngram, threshold_cosine=args.threshold_cosine, workdir=args.workdir)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"demo corpus: {res['records']:,} records (seed {res['seed']}), {res['ingested']:,} ingested, "
          f"generated in {res['seconds']['generate']}s, run in {res['seconds']['run']}s")
    print("planted: " + ", ".join(f"{k}={v}" for k, v in sorted(res["planted"].items())))
    print(f"near_dup pairs with {args.ngram}-gram Jaccard >= {args.threshold_jaccard}: "
          f"{res['near_dup_ngram_jaccard_ge_threshold']} of {res['planted'].get('near_dup', 0)}")
    for level, s in res["levels"].items():
        extra = f", recall on eligible {s['recall_eligible']:.3f}" if "recall_eligible" in s else ""
        print(f"{level:<9} precision {s['precision']:.3f} ({s['correct']}/{s['removed']} removals)  "
              f"recall {s['recall']:.3f} ({s['found']}/{s['planted']} {'+'.join(sorted(TARGET_KINDS[level]))})"
              f"{extra}  by kind {s['recall_by_kind']}  removed by source {s['removed_by_source']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
