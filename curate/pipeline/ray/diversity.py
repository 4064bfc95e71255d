"""``score.diversity`` on the cluster, with the local step's figures and scores to the bit.

1. per shard: the records per (source, subset) and, with embeddings, each record's embedding row
   (:mod:`.vectors`);
2. the driver picks the groups as the local step does (every source by name, the ``max_subsets``
   largest subsets, the whole set: :func:`~curate.steps.score.diversity.report_groups`) and draws each
   group's seeded samples (:func:`~curate.analysis.diversity.group_samples`): positions among the
   group's records in record order, which the group's records per shard map to shards;
3. with embeddings and two records or more: one task trains the seeded k-means on every vector in
   record order (faiss draws its training sample from the rows in order, so this is the local
   ``kmeans_assign``'s k-means) and, up to ``knn_max`` records, another computes every record's
   ``nn_dist`` as the local step does (``nn_dist_all``); one task counts the removed duplicates per
   source in the ledger of the steps before (a scan of every removed record: not in the driver);
4. per shard: each record's nearest centroid (exact, row by row: the local label) and its slice of
   ``nn_dist`` go to the shard's score file; per group, the histograms of response words and of clusters
   of the shard's records, and the shard's records in the group's samples (row number; prompt and
   response for the text sample) go to small files;
5. per group: the histograms added up, the sampled vectors read by row number, and the figures
   computed by :func:`~curate.analysis.diversity.figures_from_samples`, as the local step computes them.

The driver holds the records per (source, subset) per shard, the samples' positions (at most
``nn_sample + vendi_sample + text_sample`` a group) and the figures: nothing as long as the set.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from curate import layout as L
from curate.analysis.diversity import (
    figures_from_samples,
    group_samples,
    response_text_expr,
    response_words_expr,
)
from curate.pipeline.ray.book import write_shard_scores
from curate.pipeline.ray.shards import InputShard, save_npy, save_parquet
from curate.pipeline.ray.vectors import all_vectors, row_offsets, save_vector_rows, shard_vectors, vectors_at
from curate.schema import first_user_expr
from curate.steps.base import GlobalResult, GlobalStep, StepContext

if TYPE_CHECKING:
    from curate.layout import StepFolder
    from curate.pipeline.ray_executor import RayExecutor

_HIST: dict[str, Any] = {"group": pl.Int32, "kind": pl.Utf8, "value": pl.Int64, "count": pl.Int64}
_SAMPLE: dict[str, Any] = {"group": pl.Int32, "kind": pl.Utf8, "rank": pl.Int64, "pos": pl.Int64,
                           "prompt": pl.Utf8, "response": pl.Utf8}
_PAIRS: dict[str, Any] = {"shard": pl.Int64, "source": pl.Utf8, "subset": pl.Utf8, "len": pl.Int64}

# A group of diversity.json: ("source", source, None), ("subset", source, subset) or ("all", None, None).
Group = tuple[str, Any, Any]


def _members(df: pl.DataFrame, group: Group) -> np.ndarray:
    """Rows of a shard's frame (``source``, ``subset``) in ``group``, in order."""
    kind, source, subset = group
    if kind == "all":
        return np.arange(df.height)
    mask = pl.col("source").eq_missing(pl.lit(source, dtype=pl.Utf8))
    if kind == "subset":
        mask = mask & pl.col("subset").eq_missing(pl.lit(subset, dtype=pl.Utf8))
    return np.flatnonzero(df.select(mask).to_series().to_numpy())


def run_diversity(step: GlobalStep, shards: list[InputShard], folder: StepFolder, ctx: StepContext,
                  ex: RayExecutor) -> tuple[GlobalResult, pl.DataFrame | None]:
    from curate.steps.score.diversity import (
        DiversityScorer,
        auto_k,
        duplicates_by_source,
        finish,
        ledger_before,
        nn_dist_all,
        report_groups,
    )

    assert isinstance(step, DiversityScorer)
    p = step.params
    sid, seed = step.id, ctx.seed
    emb_path = ctx.find_artifact(L.EMBEDDINGS)
    emb = emb_path.parent if emb_path is not None else None
    root, work = folder.work / "diversity", folder.work
    offs = row_offsets(shards)
    n, n_shards = offs[-1], len(shards)
    timings: dict[str, float] = {}

    # -- 1: records per (source, subset), embedding rows ------------------------------------------------
    def rows(i: int) -> dict[str, Any]:
        df = shards[i].scan(["id", "source", "subset"]).collect()
        if emb is not None:
            save_vector_rows(df["id"], emb, root, i, work)
        return {"pairs": [[s, sub, int(c)] for s, sub, c in df.group_by("source", "subset").len().iter_rows()]}

    t0 = time.perf_counter()
    found = ex.run(f"{sid}_rows", rows, range(n_shards))
    timings["seconds_load"] = time.perf_counter() - t0

    # -- 2: the groups and their samples ------------------------------------------------------------------
    pairs = pl.DataFrame([(i, s, sub, c) for i, f in enumerate(found) for s, sub, c in f["pairs"]],
                         schema=_PAIRS, orient="row")
    sources, subsets = report_groups(pairs, p.max_subsets)
    groups: list[Group] = [("source", s, None) for s in sources] + [("subset", s, b) for s, b in subsets]
    groups.append(("all", None, None))
    source_at = {s: g for g, s in enumerate(sources)}
    subset_at = {(s, b): len(sources) + g for g, (s, b) in enumerate(subsets)}
    per_shard = np.zeros((len(groups), n_shards), dtype=np.int64)  # each group's records in each shard
    for i, s, b, c in pairs.iter_rows():
        per_shard[source_at[s], i] += c
        if (s, b) in subset_at:
            per_shard[subset_at[(s, b)], i] += c
    per_shard[-1] = np.diff(offs)
    cum = np.concatenate([np.zeros((len(groups), 1), dtype=np.int64), np.cumsum(per_shard, axis=1)], axis=1)
    sizes = [int(c) for c in cum[:, -1]]
    k = p.clusters or auto_k(n)
    kmeans = emb is not None and n >= 2  # as locally: clusters (and nn_dist) from two records on
    if kmeans:
        k = min(k, n)
    knn = kmeans and n <= p.knn_max
    samples = []
    for size in sizes:  # the samples' positions among the group's records, as the local step draws them
        drawn = group_samples(size, seed=seed, nn_sample=p.nn_sample, vendi_sample=p.vendi_sample,
                              text_sample=p.text_sample)
        samples.append(drawn if emb is not None else {"text": drawn["text"]})
    ray = ex.ray
    plan = ray.put({"groups": groups, "cum": cum, "samples": samples})

    # -- 3: k-means and nn_dist over the whole set, duplicates in the ledger ---------------------------
    def fit(item: int) -> dict[str, Any]:
        from curate.index.vectors import kmeans_centroids

        assert emb is not None
        t = time.perf_counter()
        x = all_vectors(root, emb, n_shards)
        if item == 0:
            save_npy(kmeans_centroids(x, k, seed=seed), root / "centroids.npy", work)
        else:
            save_npy(nn_dist_all(x, seed=seed), root / "nn_dist.npy", work)
        return {"seconds": time.perf_counter() - t}

    if kmeans:
        fits = ex.run(f"{sid}_fit", fit, [0, 1] if knn else [0], whole_node=True)
        timings["seconds_kmeans"] = fits[0]["seconds"]
        if knn:
            timings["seconds_nn_dist"] = fits[1]["seconds"]
    files = ledger_before(ctx)
    dups: dict[Any, int] = {}
    if files:  # a scan of the ledger rows (as many as the removed records): in a task
        counted = ex.run(f"{sid}_duplicates",
                         lambda _: {"dups": [[s, c] for s, c in duplicates_by_source(files).items()]}, [0])
        dups = {s: int(c) for s, c in counted[0]["dups"]}

    # -- 4: per shard: scores, histograms, the shard's part of the samples -----------------------------
    def shard(i: int) -> dict[str, Any]:
        from curate.index.vectors import nearest_centroid

        got = ray.get(plan)
        df = shards[i].scan().select(
            "id", "source", "subset",
            first_user_expr().alias("prompt"),
            response_words_expr().alias("words"),
            response_text_expr().alias("response"),
        ).collect()
        labels = None
        if kmeans:
            assert emb is not None
            if df.height and k > 1:
                labels = nearest_centroid(shard_vectors(root, emb, i), np.load(root / "centroids.npy"))
            else:
                labels = np.zeros(df.height, dtype=np.int64)
            scores = pl.DataFrame({"id": df["id"]}).with_columns(pl.Series(f"{sid}.cluster", labels, dtype=pl.Int32))
            if knn:
                nn = np.asarray(np.load(root / "nn_dist.npy", mmap_mode="r")[offs[i]:offs[i + 1]])
                scores = scores.with_columns(pl.Series(f"{sid}.nn_dist", nn))
            write_shard_scores(scores, folder, i)
        words = df["words"].to_numpy()
        hist: list[pl.DataFrame] = []
        picked: list[pl.DataFrame] = []
        for g, group in enumerate(got["groups"]):
            lo, hi = int(got["cum"][g, i]), int(got["cum"][g, i + 1])
            if hi == lo:
                continue
            members = _members(df, group)
            if len(members) != hi - lo:
                raise AssertionError(f"shard {i} holds {len(members)} records of {group}, not {hi - lo}")
            values, counts = np.unique(words[members], return_counts=True)
            hist.append(pl.DataFrame({"group": g, "kind": "words", "value": values.astype(np.int64),
                                      "count": counts.astype(np.int64)}, schema=_HIST))
            if labels is not None:
                bins = np.bincount(labels[members], minlength=k)
                nz = np.flatnonzero(bins)
                hist.append(pl.DataFrame({"group": g, "kind": "clusters", "value": nz.astype(np.int64),
                                          "count": bins[nz].astype(np.int64)}, schema=_HIST))
            for kind, ranks in got["samples"][g].items():
                a, b = np.searchsorted(ranks, [lo, hi])
                local = pl.Series(members[ranks[a:b] - lo], dtype=pl.Int64)
                part = pl.DataFrame({"group": g, "kind": kind, "rank": np.arange(a, b, dtype=np.int64),
                                     "pos": local.to_numpy() + offs[i]},
                                    schema={c: _SAMPLE[c] for c in ("group", "kind", "rank", "pos")})
                if kind == "text":
                    part = part.with_columns(df["prompt"].gather(local), df["response"].gather(local))
                else:
                    part = part.with_columns(pl.lit(None, dtype=pl.Utf8).alias("prompt"),
                                             pl.lit(None, dtype=pl.Utf8).alias("response"))
                picked.append(part)
        save_parquet(pl.concat(hist) if hist else pl.DataFrame(schema=_HIST), root / "hist" / f"s{i:05d}.parquet",
                     work)
        save_parquet(pl.concat(picked) if picked else pl.DataFrame(schema=_SAMPLE),
                     root / "samples" / f"s{i:05d}.parquet", work)
        return {}

    ex.run(f"{sid}_shards", shard, range(n_shards))

    # -- 5: per group: the figures ------------------------------------------------------------------------
    def figures(g: int) -> dict[str, Any]:
        hist = (pl.scan_parquet([root / "hist" / f"s{i:05d}.parquet" for i in range(n_shards)])
                .filter(pl.col("group") == g).group_by("kind", "value").agg(pl.col("count").sum())
                .sort("kind", "value").collect())
        picked = (pl.scan_parquet([root / "samples" / f"s{i:05d}.parquet" for i in range(n_shards)])
                  .filter(pl.col("group") == g).collect().sort("kind", "rank"))
        words = hist.filter(pl.col("kind") == "words")
        count = sizes[g]
        if int(words["count"].sum()) != count:
            raise AssertionError(f"group {groups[g]}: {words['count'].sum()} responses counted, not {count}")
        nn_vectors = vendi_vectors = cluster_counts = None
        if emb is not None and count:
            nn_pos = picked.filter(pl.col("kind") == "nn")["pos"].to_numpy()
            vendi_pos = picked.filter(pl.col("kind") == "vendi")["pos"].to_numpy()
            x = vectors_at(root, emb, n_shards, np.concatenate([nn_pos, vendi_pos]))
            nn_vectors, vendi_vectors = x[: len(nn_pos)], x[len(nn_pos):]
        if kmeans and count:
            c = hist.filter(pl.col("kind") == "clusters")
            cluster_counts = np.zeros(k, dtype=np.int64)
            cluster_counts[c["value"].to_numpy()] = c["count"].to_numpy()
        text = picked.filter(pl.col("kind") == "text")
        return {"figures": figures_from_samples(
            count=count, nn_vectors=nn_vectors, vendi_vectors=vendi_vectors, cluster_counts=cluster_counts, k=k,
            prompts=text["prompt"].to_list(), responses=text["response"].to_list(),
            word_values=words["value"].to_numpy(), word_counts=words["count"].to_numpy())}

    t0 = time.perf_counter()
    figs = [r["figures"] for r in ex.run(f"{sid}_figures", figures, range(len(groups)))]
    per_source = {s: figs[g] for g, s in enumerate(sources)}
    per_subset = {f"{s}/{b}": figs[subset_at[(s, b)]] for s, b in subsets}
    finish(step, ctx, k=k, embeddings=emb is not None, overall=figs[-1], per_source=per_source,
           per_subset=per_subset, dups=dups, timings=timings, t0=t0)
    return GlobalResult(scores=None), None
