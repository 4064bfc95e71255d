"""Analysis benchmarks: `score.diversity`, `score.map` and the HTML report on a synthetic run of N records.

Builds ``bench/out/analysis_<N>/`` once (reused while N and the generator version match): a run directory
with ``00_ingest/kept.parquet`` in the conversation schema and a row-aligned, clustered, unit-norm 384-d
float32 embedding matrix in ``01_embed/``. Four sources: three diverse ones whose prompts are drawn from
50 planted topics (each with its own topic words), and ``flat``, one review template with one-word
responses. Then it times each stage (wall time and the stage's own peak RSS) and checks the results:
planted topics recovered by the c-TF-IDF keywords, the flat source scoring near 0 on response
homogeneity, the map covering every record.

    .venv/bin/python bench/analysis.py --records 100000
    .venv/bin/python bench/analysis.py --records 1000000 --stages diversity map report
    .venv/bin/python bench/analysis.py --records 1000000 --stages map --rest transform   # umap's own transform

Prints figures; never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl

from curate import layout as L
from curate.layout import RunLayout
from curate.pipeline.cache import StepCache
from curate.steps.base import StepReport

OUT = Path(__file__).parent / "out"
DIM = 384
TOPICS = 50
GENERATOR = 3  # bump when the synthetic data changes, so cached run folders are rebuilt
SOURCES = {"alpha": 0.4, "beta": 0.25, "gamma": 0.25, "flat": 0.10}
VERBS = ["write", "explain", "describe", "list", "summarize", "give", "compare", "create", "suggest", "outline"]
OBJECTS = ["poem", "essay", "story", "summary", "guide", "overview", "list", "plan", "review", "tips"]
FLAT_ANSWERS = ["positive", "negative", "Positive", "negative."]


def _words(rng: np.random.Generator, n: int, syllables: tuple[int, int]) -> list[str]:
    """Distinct pronounceable made-up words (no English stop words, so c-TF-IDF keeps them)."""
    cons, vows = list("bdfgklmnprstvz"), list("aeiou")
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = int(rng.integers(syllables[0], syllables[1] + 1))
        w = "".join(str(rng.choice(cons)) + str(rng.choice(vows)) for _ in range(k))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def _pool_responses(rng: np.random.Generator, lengths: np.ndarray, vocab: list[str]) -> pl.Series:
    """Responses of ``lengths`` words: slices of one long random text, assembled as one Arrow array."""
    import pyarrow as pa

    pool_words = rng.integers(0, len(vocab), 2_000_000)
    text = " ".join(vocab[i] for i in pool_words.tolist()) + " "
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(data == 32)[:-1] + 1])  # start of each pool word
    first = rng.integers(0, len(starts) - lengths.max() - 1, len(lengths))
    s, e = starts[first], starts[first + lengths] - 1
    offsets = np.concatenate([[0], np.cumsum(e - s)]).astype(np.int64)
    buf = np.concatenate([data[a:b] for a, b in zip(s.tolist(), e.tolist())])
    arr = pa.LargeStringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(buf))
    return pl.Series("response", arr).cast(pl.Utf8)


def build(n: int, seed: int = 0) -> Path:
    run = OUT / f"analysis_{n}"
    stamp = run / "bench.json"
    if stamp.exists() and json.loads(stamp.read_text()) == {"records": n, "generator": GENERATOR, "seed": seed}:
        return run
    if run.exists():
        shutil.rmtree(run)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    topic_words = np.array(_words(rng, TOPICS * 8, (3, 3))).reshape(TOPICS, 8)
    filler = np.array(_words(rng, 2_000, (2, 2)))
    resp_vocab = _words(rng, 20_000, (2, 4))
    src_names = list(SOURCES)
    src = rng.choice(len(src_names), size=n, p=list(SOURCES.values()))
    flat = src == src_names.index("flat")
    topic = rng.integers(0, TOPICS, n)
    tw = topic_words[topic[:, None], rng.integers(0, 8, (n, 3))]
    fl = filler[rng.integers(0, len(filler), (n, 3))]
    verb = np.array(VERBS)[rng.integers(0, len(VERBS), n)]
    obj = np.array(OBJECTS)[rng.integers(0, len(OBJECTS), n)]
    cols = {f"t{j}": tw[:, j] for j in range(3)} | {f"f{j}": fl[:, j] for j in range(3)}
    p = pl.DataFrame({"verb": verb, "obj": obj, **cols, "flat": flat, "i": np.arange(n)})
    prompt = pl.when(pl.col("flat")).then(pl.format("Is this review positive or negative? Review: the {} was {}",
                                                     "t0", "f0")) \
        .otherwise(pl.format("{} a {} about {} {} with {} {} and {} {}", "verb", "obj", "t0", "f0", "t1", "f1",
                             "t2", "f2"))
    lengths = np.clip(rng.lognormal(np.log(60), 0.9, n), 4, 1_500).astype(np.int64)
    responses = _pool_responses(rng, lengths, resp_vocab)
    answers = pl.Series(np.array(FLAT_ANSWERS)[rng.integers(0, len(FLAT_ANSWERS), n)])
    subset = np.where(src == 0, np.char.add("task", (topic % 5).astype(str)), None)
    df = p.select(
        pl.format("{}", pl.col("i") * 2_654_435_761 % (1 << 40)).str.zfill(13).alias("id"),
        pl.Series("source", np.array(src_names)[src]),
        pl.Series("subset", subset, dtype=pl.Utf8),
        pl.concat_list(
            pl.struct(pl.lit("user").alias("role"), prompt.alias("content")),
            pl.struct(pl.lit("assistant").alias("role"),
                      pl.when(pl.col("flat")).then(answers).otherwise(responses).alias("content")),
        ).alias("turns"),
        pl.lit(None, dtype=pl.Utf8).alias("meta"),
        pl.struct(pl.lit("synthetic.jsonl").alias("file"), pl.col("i").cast(pl.Int64).alias("record"))
        .alias("provenance"),
        pl.format("{}", pl.col("i")).alias("content_hash"),
    )
    lay = RunLayout(run)
    lay.ingest.path.mkdir(parents=True)
    df.write_parquet(lay.ingest.kept)
    StepCache(lay).finish(lay.ingest, "bench", StepReport(step_id=L.INGEST_ID, kind="read", n_in=n, n_out=n))
    t_text = time.perf_counter() - t0

    from curate.index.vectors import write_embeddings

    # Like sentence embeddings, the vectors live near a low-dimensional subspace: 50 topic centres that
    # share a 24-d "domain" space (so related topics sit near each other), 4 sub-centres per topic, and
    # per-record variation mostly along a shared 32-d "style" space plus a little isotropic noise.
    # Same-topic cosine is about 0.5, cross-topic about 0.1; the flat source is one tight centre.
    domain = rng.normal(size=(24, DIM)).astype(np.float32) / np.sqrt(DIM)
    style = rng.normal(size=(32, DIM)).astype(np.float32) / np.sqrt(DIM)
    centres = rng.normal(size=(TOPICS + 1, 24)).astype(np.float32) @ domain * 4.0
    centres += rng.normal(size=(TOPICS + 1, DIM)).astype(np.float32) / np.sqrt(DIM)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    subs = rng.normal(size=(TOPICS, 4, 24)).astype(np.float32) @ domain * 0.25
    emb = write_embeddings(lay.step(1, "embed").path, df["id"], n, DIM)
    step = 100_000
    for a in range(0, n, step):
        b = min(a + step, n)
        t, f = topic[a:b], flat[a:b]
        x = centres[t] + subs[t, rng.integers(0, 4, b - a)]
        x += rng.normal(scale=0.14, size=(b - a, 32)).astype(np.float32) @ style
        x += rng.normal(scale=0.25 / np.sqrt(DIM), size=(b - a, DIM)).astype(np.float32)
        x[f] = centres[TOPICS] + rng.normal(scale=0.15 / np.sqrt(DIM), size=(int(f.sum()), DIM)).astype(np.float32)
        emb[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
    emb.flush()
    del emb
    lay.spec.write_text(f"name: bench_analysis_{n}\nseed: {seed}\n")
    pl.DataFrame({"topic": topic, "source": np.array(src_names)[src]}).write_parquet(run / "truth.parquet")
    topics_json = {str(k): topic_words[k].tolist() for k in range(TOPICS)}
    (run / "topics.json").write_text(json.dumps(topics_json))
    stamp.write_text(json.dumps({"records": n, "generator": GENERATOR, "seed": seed}))
    print(f"built {run}: {n:,} records, text {t_text:.1f}s, total {time.perf_counter() - t0:.1f}s")
    return run


class Stage:
    """Wall time and the stage's own peak RSS (Linux: clear_refs 5 resets VmHWM)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> Self:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        self.t0 = time.perf_counter()
        self.cpu0 = sum(os.times()[:4])
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        with open("/proc/self/status") as fh:
            hwm = next(line for line in fh if line.startswith("VmHWM"))
        self.peak_gb = int(hwm.split()[1]) / 1e6
        cpu = sum(os.times()[:4]) - self.cpu0
        print(f"{self.name}: {self.seconds:.1f}s wall, {cpu:.1f}s CPU, peak RSS {self.peak_gb:.2f} GB", flush=True)


def run_diversity(run: Path, seed: int) -> dict[str, Any]:
    from curate.steps.base import StepContext
    from curate.steps.score.diversity import DiversityScorer

    ctx = StepContext(run_dir=run, work_dir=RunLayout(run).step(2, "score_diversity").path, seed=seed, progress=False)
    step = DiversityScorer.from_params(step_id="score_diversity")
    with Stage("score.diversity"):
        res = step.run(pl.scan_parquet(RunLayout(run).ingest.kept), ctx)
    _print_timings(step)
    out: dict[str, Any] = json.loads(ctx.folder.file(L.DIVERSITY).read_text())
    cols = ["count", "vendi", "nn_dist", "cluster_entropy", "distinct_2", "short_response_share",
            "unique_response_share", "response_distinct_1"]
    print("  source  " + " ".join(f"{c[:14]:>14}" for c in cols))
    for s, fig in out["per_source"].items():
        print(f"  {s:7} " + " ".join(f"{_fmt(fig.get(c)):>14}" for c in cols))
    flat, rich = out["per_source"]["flat"], out["per_source"]["alpha"]
    checks = {
        "flat short_response_share ~ 1": flat["short_response_share"] > 0.99,
        "flat unique_response_share ~ 0": flat.get("unique_response_share", 1) < 0.01,
        "flat response_distinct_1 ~ 0": flat.get("response_distinct_1", 1) < 0.01,
        "alpha unique_response_share ~ 1": rich.get("unique_response_share", 0) > 0.99,
        "alpha vendi > 4x flat": rich["vendi"] > 4 * flat["vendi"],
        "cluster per record": res.scores is not None and res.scores.height == out["overall"]["count"],
    }
    _print_checks(checks)
    return out


def run_map(run: Path, seed: int, rest: str | None, fit_sample: int | None) -> None:
    from curate.steps.base import StepContext
    from curate.steps.score.map import MapScorer

    kw: dict[str, Any] = {"step_id": "score_map"}
    if rest:
        kw["rest"] = rest
    if fit_sample:
        kw["fit_sample"] = fit_sample
    ctx = StepContext(run_dir=run, work_dir=RunLayout(run).step(3, "score_map").path, seed=seed, progress=False)
    step = MapScorer.from_params(**kw)
    with Stage("score.map"):
        step.run(pl.scan_parquet(RunLayout(run).ingest.kept), ctx)
    _print_timings(step)
    m = pl.read_parquet(ctx.folder.file(L.MAP))
    truth = pl.read_parquet(run / "truth.parquet")
    topics = {int(k): set(v) for k, v in json.loads((run / "topics.json").read_text()).items()}
    joined = m.with_columns(truth["topic"].alias("topic_right"), truth["source"].alias("true_source"))
    rich = joined.filter(pl.col("true_source") != "flat")
    per_cluster = rich.group_by("cluster").agg(
        pl.col("topic").first().alias("keywords"), pl.col("topic_right").mode().first().alias("planted"),
        (pl.col("topic_right") == pl.col("topic_right").mode().first()).mean().alias("purity"), pl.len())
    ok = [set(str(kw).split(", ")) <= topics[int(pl_)] and str(kw) != ""
          for kw, pl_ in zip(per_cluster["keywords"], per_cluster["planted"])]
    recovered = {int(pl_) for pl_, good in zip(per_cluster["planted"], ok) if good}
    weight = per_cluster["len"].to_numpy()
    xy_ok = np.isfinite(m["x"].to_numpy()).all() and np.isfinite(m["y"].to_numpy()).all()
    print(f"  clusters {m['cluster'].n_unique()}, cluster purity (size-weighted) "
          f"{np.average(per_cluster['purity'].to_numpy(), weights=weight):.3f}, clusters whose keywords are all "
          f"their planted topic's words {np.average(ok, weights=weight):.3f}, planted topics recovered "
          f"{len(recovered)}/{TOPICS}")
    # placement quality: share of each record's 2-D neighbours with the same planted topic
    idx = np.random.default_rng(seed).choice(len(m), size=min(len(m), 20_000), replace=False)
    from sklearn.neighbors import NearestNeighbors

    xy = np.column_stack([m["x"].to_numpy(), m["y"].to_numpy()])[idx]
    t = joined["topic_right"].to_numpy()[idx]
    _, nb = NearestNeighbors(n_neighbors=11).fit(xy).kneighbors(xy)
    agree = float((t[nb[:, 1:]] == t[:, None]).mean())
    print(f"  2-D 10-NN same-topic share on a 20K sample: {agree:.3f}")
    verbs = json.loads(ctx.folder.file(L.VERBS).read_text())
    top_verbs = [r["verb"] for r in verbs["rows"][:10]]
    _print_checks({
        "every record on the map": len(m) == len(truth) and xy_ok,
        "planted topics recovered >= 45/50": len(recovered) >= 45,
        "2-D neighbours agree on topic >= 0.8": agree >= 0.8,
        "verb table finds the planted verbs": set(top_verbs) == set(VERBS),
    })


def run_report(run: Path, diversity: dict[str, Any] | None) -> None:
    from curate.analysis.report import write_report
    from curate.pipeline.report import build_report
    from curate.pipeline.report import write_report as write_run_report

    lay = RunLayout(run)
    kept = pl.scan_parquet(lay.ingest.kept)
    counts = dict(kept.group_by("source").len().collect().iter_rows())
    n = sum(counts.values())
    sources = {s: {"format": "synthetic", "read": c, "ingested": c, "quarantined": 0} for s, c in counts.items()}
    head = {"name": run.name, "run_dir": str(run), "recipe_hash": "bench", "started": "", "seconds": 0.0,
            "dry_run": False, "limit": None}
    ingest = StepReport(step_id=L.INGEST_ID, kind="read", n_in=n, n_out=n)
    report = build_report(lay, lay.ingest, reports=[ingest], source_stats=sources, head=head)
    if diversity and "diversity" not in report:
        report["diversity"] = diversity
    write_run_report(lay, report)
    with Stage("report"):
        html_path, _ = write_report(run)
    print(f"  {html_path} ({html_path.stat().st_size / 1e6:.1f} MB)")
    png = _map_png(html_path)
    if png is not None:
        print(f"  cluster map PNG: {png}")


def _map_png(html_path: Path) -> Path | None:
    """Write the cluster-map image of the report next to it, to look at."""
    import base64
    import re

    page = html_path.read_text()
    m = re.search(r"<h2>Cluster map</h2><img src=\"data:image/png;base64,([^\"]+)\"", page)
    if not m:
        return None
    out = html_path.parent / "cluster_map.png"
    out.write_bytes(base64.b64decode(m.group(1)))
    return out


def _print_timings(step: Any) -> None:
    extra = getattr(step, "report_extra", {})
    parts = [f"{k[len('seconds_'):]} {v:.1f}s" for k, v in extra.items() if k.startswith("seconds_")]
    if parts:
        print("  " + ", ".join(parts))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.3f}"


def _print_checks(checks: dict[str, bool]) -> None:
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", nargs="+", default=["diversity", "map", "report"],
                    choices=["build", "diversity", "map", "report"])
    ap.add_argument("--rest", choices=["knn", "transform"], default=None,
                    help="score.map: how points beyond fit_sample are placed (default: the step's default)")
    ap.add_argument("--fit-sample", type=int, default=None, help="score.map fit_sample (default: the step's)")
    a = ap.parse_args()
    print(f"uptime: {os.popen('uptime').read().strip()}")
    with Stage("build"):
        run = build(a.records, a.seed)
    div = run_diversity(run, a.seed) if "diversity" in a.stages else None
    if "map" in a.stages:
        run_map(run, a.seed, a.rest, a.fit_sample)
    if "report" in a.stages:
        run_report(run, div)
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
