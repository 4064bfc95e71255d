"""Cleaning benchmark: the cleaning part of pipelines/gpt4all.yaml on generated OIG records.

    .venv/bin/python bench/pipeline.py --records 100000
    .venv/bin/python bench/pipeline.py                       # 1,000,000 records
    .venv/bin/python bench/pipeline.py --records 100000 --profile   # one process, cProfile per step

Runs ingest -> clean.normalize -> filter.failed_response -> filter.refusal -> filter.language {keep: [en]}
-> filter.length -> filter.repetition -> clean.pii {mode: redact} through the real runner
(``build_plan`` + ``run_pipeline``) and prints wall time, per-step seconds and records/s, and peak
RSS. Aims: at most 5 minutes wall on a 2-core machine and at most 4 GB peak RSS at 1M records.

The runner hands batch steps to a spawn process pool of ``executor.workers`` processes when the
input has more than 2 batches, so peak RSS is reported three ways: the parent's maxrss
(``RUSAGE_SELF``), the largest worker's maxrss (``RUSAGE_CHILDREN``: the maximum over waited-for
children, not a sum), and the peak of the summed RSS of the whole process tree sampled every 0.2 s
from /proc (the figure the 4 GB aim is about).

The corpus (``bench/out/pipeline_oig_<n>.jsonl``, git-ignored, generated once and reused) is
OIG-style ``{"text": "<human>: ...\\n<bot>: ...", "metadata": {...}}``: prompts of 5-60 words,
responses of 10-400 words built from the demo corpus' topic sentences (paragraphs, lists, some
code fences, URLs, Markdown), with ~3% non-English records (real es/fr/de/ko/zh/ja sentences),
and planted failures: error messages, cut-off responses, refusals, degenerate repetition, PII,
mojibake, CRLF line ends and stray spaces. Question templates repeat, so many prompts repeat.
``--langdetect N`` also times the langdetect backend of filter.language on N records.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import resource
import shutil
import string
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

STEPS: list[dict[str, Any]] = [
    {"use": "clean.normalize"},
    {"use": "filter.failed_response"},
    {"use": "filter.refusal"},
    {"use": "filter.language", "params": {"keep": ["en"]}},
    {"use": "filter.length", "params": {"min_chars": 20, "max_chars": 100000}},
    {"use": "filter.repetition"},
    {"use": "clean.pii", "params": {"mode": "redact"}},
]

# Share of records per planted kind; the rest are clean English.
PLANTS: dict[str, float] = {
    "non_english": 0.027,
    "mixed": 0.003,
    "refusal": 0.015,
    "error": 0.008,
    "truncated": 0.010,
    "repetitive": 0.010,
    "pii": 0.012,
    "mojibake": 0.005,
}
MOJIBAKE = (
    "Itâ€™s worth trying the cafÃ© method once.",
    "Donâ€™t skip this step, itâ€™s important.",
    "The rÃ©sumÃ© should fit on one page.",
    "Use a naÃ¯ve approach first and measure it.",
)
URLS = (
    "See https://docs.python.org/3/library/functions.html for details.",
    "More background is at https://en.wikipedia.org/wiki/Main_Page if you are curious.",
    "The guide at www.example.org/guide/start walks through it.",
)


# ------------------------------------------------------------------------------------------ corpus


class _Gen:
    def __init__(self, seed: int) -> None:
        from curate.demo import text as dt

        self.dt = dt
        self.rng = random.Random(seed)
        self.topics = dt.TOPICS
        self.all_facts = [f for t in dt.TOPICS for f in t.facts]
        self.langs = list(dt.NON_ENGLISH)

    @staticmethod
    def fill(s: str, e: str, t: str) -> str:
        return s.replace("{e}", e).replace("{E}", e[:1].upper() + e[1:]).replace("{t}", t).replace("{e2}", e)

    def code(self, topic: Any) -> str:
        r = self.rng
        tpl = r.choice(topic.code)
        names = {"{a}": r.choice(("items", "values", "result", "data")), "{b}": r.choice(("x", "n", "item")),
                 "{C}": r.choice(("Point", "User", "Config")), "{n}": str(r.randint(2, 40)),
                 "{f}": r.choice(("notes", "logs", "data"))}
        for k, v in names.items():
            tpl = tpl.replace(k, v)
        lang = topic.tags[0] if topic.tags else ""
        return f"```{lang}\n{tpl}\n```"

    def prompt(self, topic: Any, e: str) -> str:
        r = self.rng
        q = self.fill(r.choice(topic.questions), e, topic.name)
        pre = self.fill(r.choice(self.dt.PREFIXES), e, topic.name)
        target = int(min(60, max(5, r.lognormvariate(2.7, 0.6))))
        text = pre + q
        n = len(text.split())
        if n < target:  # add context the user gives, from the same topic
            ctx = []
            for f in r.sample(topic.facts, min(len(topic.facts), 4)):
                if n >= target:
                    break
                ctx.append(f)
                n += len(f.split())
            ctx_text = " ".join(ctx)
            text = "I read that " + ctx_text[:1].lower() + ctx_text[1:] + " " + text
        return text

    def response(self, topic: Any, e: str) -> str:
        r = self.rng
        target = int(min(400, max(10, r.lognormvariate(4.3, 0.75))))
        opener = self.fill(r.choice(self.dt.OPENERS), e, topic.name)
        own = list(topic.facts)
        r.shuffle(own)
        pool = own + r.sample(self.all_facts, min(len(self.all_facts), 40))
        sents, n = [], len(opener.split())
        for f in pool:
            if n >= target:
                break
            if f not in sents:
                sents.append(f)
                n += len(f.split())
        paras: list[str] = [opener]
        i = 0
        while i < len(sents):
            k = r.randint(2, 4)
            chunk = sents[i : i + k]
            i += k
            style = r.random()
            if style < 0.15 and len(chunk) > 1:
                paras.append("\n".join(f"{j + 1}. {s}" for j, s in enumerate(chunk)))
            elif style < 0.25 and len(chunk) > 1:
                paras.append("\n".join(f"- **{s.split()[0]}** {' '.join(s.split()[1:])}" for s in chunk))
            else:
                paras.append(" ".join(chunk))
        if topic.code and r.random() < 0.5:
            paras.insert(r.randint(1, len(paras)), self.code(topic))
        if r.random() < 0.03:
            paras.append(r.choice(URLS))
        closer = r.choice(self.dt.CLOSERS)
        if closer:
            paras.append(closer)
        return "\n\n".join(paras)

    def record(self) -> str:
        r, dt = self.rng, self.dt
        topic = r.choice(self.topics)
        e = r.choice(topic.entities)
        x = r.random()
        kind = "clean"
        for k, share in PLANTS.items():
            if x < share:
                kind = k
                break
            x -= share
        if kind in ("non_english", "mixed"):
            lang = r.choice(self.langs)
            qs, ans = r.choice(dt.NON_ENGLISH[lang])
            answer = " ".join(r.sample(ans, r.randint(2, len(ans))))
            if kind == "mixed":
                return self.oig(self.prompt(topic, e), answer)
            return self.oig(r.choice(qs), answer)
        p = self.prompt(topic, e)
        if kind == "refusal":
            a = self.fill(r.choice(dt.REFUSALS), e, topic.name)
        elif kind == "error":
            a = r.choice(dt.ERRORS)
        elif kind == "truncated":
            words = self.response(topic, e).split(" ")
            cut = max(25, len(words) * 2 // 3)
            a = " ".join(words[:cut]).rstrip(".!?") + " " + r.choice(dt.TRUNCATION_TAILS)
        elif kind == "repetitive":
            line = r.choice(dt.REPEAT_LINES)
            a = self.response(topic, e) + "\n" + "\n".join([line] * r.randint(10, 30))
        else:
            a = self.response(topic, e)
            if kind == "pii":
                tpl = r.choice(dt.PII)
                key = "".join(r.choices(string.ascii_letters + string.digits, k=40))
                pii = (tpl.replace("{name}", r.choice(dt.PII_NAMES)).replace("{surname}", r.choice(dt.PII_SURNAMES))
                       .replace("{domain}", r.choice(dt.PII_DOMAINS)).replace("{key}", key)
                       .replace("{n4}", f"{r.randint(0, 9999):04d}").replace("{n3}", f"{r.randint(100, 999)}"))
                a = a + "\n\n" + pii
            elif kind == "mojibake":
                a = r.choice(MOJIBAKE) + " " + a
        y = r.random()
        if y < 0.04:
            a = a.replace("\n", "\r\n")
        elif y < 0.08:
            a = a.replace(". ", ".  ", 2)
        elif y < 0.09:
            a = a.replace(" ", "\u00a0", 1) + "\u200b"
        return self.oig(p, a)

    @staticmethod
    def oig(prompt: str, answer: str) -> str:
        text = f"<human>: {prompt}\n<bot>: {answer}"
        return json.dumps({"text": text, "metadata": {"source": "unified_chip2"}}, ensure_ascii=False)


def make_corpus(path: Path, n: int, seed: int = 13) -> None:
    gen = _Gen(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        buf: list[str] = []
        for _ in range(n):
            buf.append(gen.record())
            if len(buf) >= 10_000:
                fh.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            fh.write("\n".join(buf) + "\n")
    tmp.rename(path)


def corpus(n: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"pipeline_oig_{n}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        make_corpus(path, n)
        mb = path.stat().st_size / 1e6
        print(f"generated {path.relative_to(ROOT)}: {n:,} records, {mb:,.0f} MB in {time.perf_counter() - t0:.1f}s")
    return path


# ------------------------------------------------------------------------------------------ measuring


def _tree_rss(root: int) -> int:
    """Summed RSS (bytes) of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(d), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * page
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


class TreeSampler(threading.Thread):
    def __init__(self, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            self.peak = max(self.peak, _tree_rss(me))
            self.stop.wait(self.every_s)


def recipe(path: Path, workers: int, batch_size: int) -> dict[str, Any]:
    return {
        "name": "bench_clean",
        "seed": 13,
        "sources": [{"id": "oig", "format": "oig", "path": str(path)}],
        "steps": STEPS,
        "executor": {"workers": workers, "batch_size": batch_size},
        "limits": {"max_quarantine_frac": 0.01},
    }


def run_bench(path: Path, n: int, workers: int, batch_size: int) -> None:
    from curate.pipeline.runner import run_pipeline
    from curate.pipeline.spec import build_plan

    plan = build_plan(recipe(path, workers, batch_size), origin="bench/pipeline.py")
    run_dir = OUT / f"pipeline_run_{n}"
    shutil.rmtree(run_dir, ignore_errors=True)
    sampler = TreeSampler()
    sampler.start()
    t0 = time.perf_counter()
    res = run_pipeline(plan, run_dir=run_dir, force=True, progress=False, log=lambda m: None)
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"records {n:,}  workers {workers}  batch_size {batch_size:,}  load {os.getloadavg()[0]:.2f} (1-min)")
    print(f"{'step':<24}{'in':>11}{'out':>11}{'seconds':>9}{'rec/s':>10}  top reasons")
    for rep in res.reports:
        rate = rep.n_in / rep.seconds if rep.seconds else 0.0
        top = ", ".join(f"{k} {v:,}" for k, v in rep.rejected.most_common(3))
        q = sum(rep.quarantined.values())
        if q:
            top += f"{', ' if top else ''}quarantined {q:,}"
        print(f"{rep.step_id:<24}{rep.n_in:>11,}{rep.n_out:>11,}{rep.seconds:>9.1f}{rate:>10,.0f}  {top}")
    steps_s = sum(r.seconds for r in res.reports)
    print(f"wall {wall:.1f}s (steps {steps_s:.1f}s, report/manifest {wall - steps_s:.1f}s)  "
          f"{n / wall:,.0f} records/s end to end")
    print(f"peak RSS: parent {self_mb:,.0f} MB, largest worker {child_mb:,.0f} MB, "
          f"process tree (sampled sum) {sampler.peak / 2**20:,.0f} MB")
    aims = wall <= 300 and sampler.peak <= 4 * 2**30
    print(f"aims (<= 300 s wall, <= 4 GB tree RSS at 1M records): {'met' if aims else 'NOT met'}")


def profile_steps(path: Path, n: int, batch_size: int, top: int) -> None:
    """Each step in this process on the ingested data, one cProfile per step (no pool)."""
    import polars as pl

    from curate.layout import RunLayout
    from curate.pipeline.batches import process_batch
    from curate.pipeline.spec import build_plan

    plan = build_plan(recipe(path, 1, batch_size), origin="bench/pipeline.py")
    run_dir = OUT / f"pipeline_run_{n}"
    ingested = RunLayout(run_dir).ingest.kept
    if not ingested.exists():
        run_bench(path, n, 1, batch_size)
    batches = pl.read_parquet(ingested).iter_slices(batch_size)
    data = list(batches)
    for step in plan.steps:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        kept = []
        prof.enable()
        for b in data:
            kept.append(process_batch(step, b).kept)
        prof.disable()
        dt = time.perf_counter() - t0
        rows = sum(len(b) for b in data)
        print(f"\n=== {step.id}: {rows:,} rows in {dt:.2f}s ({rows / dt:,.0f}/s)")
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(top)
        print("\n".join(s.getvalue().splitlines()[6 : 8 + top]))
        data = kept


def time_langdetect(n_corpus: int, n: int, workers: int) -> None:
    """filter.language with backend langdetect vs fasttext on the first n ingested records."""
    import polars as pl

    from curate.layout import RunLayout
    from curate.steps.filter.language import LanguageFilter

    src = RunLayout(OUT / f"pipeline_run_{n_corpus}").ingest.kept
    batch = pl.scan_parquet(src).head(n).collect()
    for backend in ("fasttext", "langdetect"):
        f = LanguageFilter.from_params(keep=["en"], backend=backend)
        f.measure(batch.head(50))  # load the model
        t0 = time.perf_counter()
        out = f.measure(batch)
        dt = time.perf_counter() - t0
        langs = out[f"{f.id}.lang"].value_counts(sort=True).head(4).rows()
        per_m = 1_000_000 / (n / dt)
        print(f"filter.language backend={backend:<10} {n:,} records in {dt:.2f}s = {n / dt:,.0f}/s; "
              f"1M: {per_m / 60:.1f} min on one core, ~{per_m / 60 / workers:.1f} min with {workers} workers; "
              f"top langs {langs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2, help="executor.workers (spawn process pool)")
    ap.add_argument("--batch-size", type=int, default=20_000, help="executor.batch_size")
    ap.add_argument("--profile", action="store_true", help="cProfile each step in one process instead")
    ap.add_argument("--top", type=int, default=12, help="functions shown per step with --profile")
    ap.add_argument("--langdetect", type=int, default=0, metavar="N",
                    help="also time filter.language's langdetect backend on N records")
    args = ap.parse_args()
    print(f"uptime: {os.popen('uptime').read().strip()}")
    path = corpus(args.records)
    if args.profile:
        profile_steps(path, args.records, args.batch_size, args.top)
    else:
        run_bench(path, args.records, args.workers, args.batch_size)
    if args.langdetect:
        time_langdetect(args.records, args.langdetect, args.workers)


if __name__ == "__main__":
    main()
