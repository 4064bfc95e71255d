"""The demo corpus against its ground truth: what removed each planted record, per kind.

Generates the corpus (``curate demo-data``) unless ``--raw`` names one, runs the three recipes of
``make demo`` on it through the real runner (``--light`` leaves out the embedding steps and the
export, so no model is needed), and prints, per planted kind, how many records each
``step: reason`` removed and how many were kept. Also prints each run's funnel and, for the
recipes' dedup and ROUGE-L steps, how many unplanted records they removed. Figures only.

    .venv/bin/python bench/demo_check.py --light                 # 20K records, no model
    .venv/bin/python bench/demo_check.py --raw demo/raw --runs runs/demo/gpt4all/latest runs/demo/vicuna/latest
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from curate import demo
from curate.pipeline.runner import run_pipeline
from curate.rundir import RunDir

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
MODEL_STEPS = ("embed.sentence_transformer", "dedup.semantic", "score.map", "write.hub_dataset")


def unplanted_removed(raw: Path, run_dir: Path) -> dict[str, int]:
    """Ledger rows per step:reason whose record is not planted; the original of a planted duplicate is
    counted apart (a dedup step that keeps the longer copy removes it, which finds the pair)."""
    gt = list(demo.iter_ground_truth(raw))
    planted = {(g["file"], g["record"]) for g in gt}
    originals = {(g["of"]["file"], g["of"]["record"]) for g in gt if g["of"]}
    out: dict[str, int] = {}
    for f in RunDir(run_dir).ledger_files():
        led = pl.read_parquet(f, columns=["provenance", "step", "reason"])
        for prov, step, reason in led.iter_rows():
            rel = next((r for r in demo.FILES.values() if prov["file"].endswith(r)), prov["file"])
            if (rel, prov["record"]) not in planted:
                key = f"{step}: {reason}" + (" (original of a planted copy)" if (rel, prov["record"]) in originals else "")
                out[key] = out.get(key, 0) + 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", type=Path, help="an existing demo corpus (default: generate one)")
    ap.add_argument("--records", type=int, default=demo.DEFAULT_RECORDS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=Path, nargs="*", help="score these run dirs instead of running the recipes")
    ap.add_argument("--light", action="store_true", help="leave out " + ", ".join(MODEL_STEPS))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="demo_check_"))
    raw = args.raw
    if raw is None:
        raw = tmp / "raw"
        t0 = time.perf_counter()
        demo.generate(raw, args.records, args.seed)
        print(f"generated {args.records:,} records in {time.perf_counter() - t0:.1f}s: {raw}")
    runs = args.runs
    if not runs:
        runs = []
        for name in demo.RECIPE_SOURCES:
            plan = demo.recipe_plan(PIPELINES / f"{name}.yaml", raw, tmp / f"export-{name}",
                                    skip=MODEL_STEPS if args.light else ())
            res = run_pipeline(plan, tmp / "runs" / name, progress=False, log=lambda m: None)
            runs.append(res.run_dir)
            print(f"\n{name}: {res.seconds:.1f}s")
            for rep in res.reports:
                top = ", ".join(f"{k} {v}" for k, v in rep.rejected.most_common(4))
                print(f"  {rep.step_id:<26} {rep.n_in:>7,} -> {rep.n_out:>7,}  {top}")
    print("\nplanted kind: what removed it")
    out = demo.planted_outcomes(raw, runs)
    for kind, counts in demo.outcome_table(out).items():
        print(f"  {kind:<17} " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    dups = out.filter(pl.col("of_file").is_not_null() & pl.col("step").is_not_null())
    print(f"  duplicate_of names the planted original (or an identical record): "
          f"{int(dups['dup_matches_of'].sum())} of {len(dups.filter(pl.col('reason').str.contains('dup')))}")
    print("\nunplanted records removed, per step: reason")
    for r in runs:
        print(f"  {r}:")
        for k, v in sorted(unplanted_removed(raw, Path(r)).items(), key=lambda kv: -kv[1]):
            print(f"    {k:<44} {v:>6,}")


if __name__ == "__main__":
    main()
