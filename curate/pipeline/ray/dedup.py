"""``dedup.exact`` and ``dedup.minhash`` on the cluster, with the local steps' groups and survivors.

Both read each shard in its own task and shuffle through the run directory (:mod:`.shuffle`); one
task (:func:`resolve_in_task`) applies the shared keep policy (:func:`curate.steps.dedup.keep.resolve_groups`)
to the members of the duplicate groups, writes the GROUPS artifact and one decisions file per shard,
which the shard tasks book (with label protection and the dry run), so the survivor of every group,
its ``group_id`` and each member's similarity are the local step's and the driver holds none of it. Rows are numbered in input order
(shard offset + row in shard), as ``load_rows`` numbers them locally.

``dedup.exact``: each shard scatters ``(row, id, key, text hash)`` by hash; a bucket task labels each
hash's rows with their smallest row and keeps the hashes held by two rows or more.

``dedup.minhash``, in five rounds of tasks:

1. per shard: the scoped text's shingles (saved as the shard's shingle store: hashes + offsets
   ``.npy``, memory-mapped later), the keep key, and the shingle totals; the driver turns the totals
   into the number of OPH hashing rounds, which depends on the mean over the whole set;
2. per shard: signatures (``oph_signatures`` / ``signatures``, row by row the local ones) and LSH band
   keys, scattered by ``(band, key)`` (:mod:`curate.index.minhash_parts`): the groupby on band keys;
3. per band bucket: the windowed pairs of each bucket (exactly the local candidate pairs), scattered
   by the pair's first row;
4. per pair bucket: unique candidate pairs, verified with exact Jaccard on the shingle sets (read from
   the two rows' shingle stores) and, with ``scope: conversation``, on the responses;
5. one task joins the verified pairs into groups by union-find over the pairs only (their nodes
   renumbered), not over every row: verified pairs are about as many as the duplicates, far fewer
   than the records, so the task's memory follows the duplicates, not the data. A distributed
   min-label propagation would cost a join per round over the pair list for no gain at that size.
   Then one task per shard writes the id and keep key of its grouped rows, and the keep policy runs
   in one task (above).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from curate.index import minhash as mh
from curate.index.minhash_parts import band_keys, bucket_pairs, key_bucket
from curate.index.vectors import components
from curate.pipeline.ray.book import write_shard_decisions
from curate.pipeline.ray.shards import InputShard, save_npy, save_parquet
from curate.pipeline.ray.shuffle import gather, scatter
from curate.pipeline.ray.vectors import row_offsets
from curate.steps.base import GlobalResult, GlobalStep, StepContext
from curate.steps.dedup.exact import normalized
from curate.steps.dedup.keep import load_rows, resolve_groups, write_groups
from curate.steps.embed.texts import text_expr

if TYPE_CHECKING:
    from curate.layout import StepFolder
    from curate.pipeline.ray_executor import RayExecutor

Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def shard_rows(step: GlobalStep, shard: InputShard, offset: int, *extra: pl.Expr) -> pl.DataFrame:
    """``load_rows`` of one shard, rows numbered as in the whole input."""
    rows = load_rows(shard.scan(), step.params, *extra)
    return rows.with_columns(pl.col("_row") + offset)


def resolve_members(members: pl.DataFrame, similarity: Similarity, *, reason: str, step: GlobalStep,
                    ctx: StepContext) -> tuple[GlobalResult, pl.DataFrame]:
    """Keep policy over the members of duplicate groups (``_row``, ``id``, ``_key``, ``_label``, ``_shard``):
    the decisions of :class:`curate.steps.base.Dedup`, the GROUPS artifact and totals, the shard map."""
    members = members.sort("_row")
    labels = np.unique(members["_label"].to_numpy(), return_inverse=True)[1] if members.height else np.zeros(0)
    decisions, groups = resolve_groups(members.select("_row", "id", "_key"), labels, similarity, reason=reason,
                                       ctx=ctx, step_id=step.id)
    step.report_extra.update(write_groups(groups, ctx))
    if ctx.not_duplicate_ids:  # as Dedup.run
        decisions = decisions.filter(~pl.col("id").is_in(list(ctx.not_duplicate_ids)))
    return GlobalResult(decisions=decisions), members.select("id", "_shard")


def resolve_in_task(ex: RayExecutor, step: GlobalStep, ctx: StepContext, folder: StepFolder,
                    members: Callable[[], pl.DataFrame], similarity: Similarity, *,
                    reason: str) -> tuple[GlobalResult, None]:
    """:func:`resolve_members` in one task: ``members()`` loads the members of every duplicate group
    there, the keep policy runs there (with ``similarity`` computed there), the GROUPS artifact is written
    there and the decisions go to one file per shard, booked by the shard tasks. The driver receives the
    step's totals only, so its memory does not grow with the duplicates."""

    def resolve(_: int) -> dict[str, Any]:
        result, shard_of = resolve_members(members(), similarity, reason=reason, step=step, ctx=ctx)
        assert result.decisions is not None
        n = write_shard_decisions(result.decisions.join(shard_of, on="id", how="left"), folder)
        return {"extra": dict(step.report_extra), "decisions": n}

    done = ex.run(f"{step.id}_resolve", resolve, [0], whole_node=True)[0]
    step.report_extra.update(done["extra"])
    return GlobalResult(), None


def _read_all(folder: Path, schema: Mapping[str, Any]) -> pl.DataFrame:
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame(schema=schema)


# ------------------------------------------------------------------------------------------ exact


_EXACT_ROWS: dict[str, Any] = {"_row": pl.Int64, "id": pl.Utf8, "_key": pl.Float64, "_hash": pl.Utf8}
_MEMBERS: dict[str, Any] = {"_row": pl.Int64, "id": pl.Utf8, "_key": pl.Float64, "_label": pl.Int64, "_shard": pl.Int64}


def run_exact(step: GlobalStep, shards: list[InputShard], folder: StepFolder, ctx: StepContext,
              ex: RayExecutor) -> tuple[GlobalResult, None]:
    from curate.pipeline.ray_executor import n_buckets

    p = step.params
    key = pl.col("content_hash") if p.scope == "conversation" else normalized(text_expr(p.scope))
    offs = row_offsets(shards)
    buckets = n_buckets(len(shards))
    root, work = folder.work / "exact", folder.work

    def keys(i: int) -> dict[str, Any]:
        rows = shard_rows(step, shards[i], offs[i], key.alias("_hash")).filter(pl.col("_hash").fill_null("") != "")
        rows = rows.select("_row", "id", "_key", "_hash")
        scatter(rows, (rows["_hash"].hash(0) % buckets).cast(pl.Int64), buckets, root / "rows", i, work)
        return {}

    def groups(b: int) -> dict[str, Any]:
        g = gather(root / "rows", b, _EXACT_ROWS)
        g = g.filter(pl.len().over("_hash") > 1).with_columns(pl.col("_row").min().over("_hash").alias("_label"))
        _write(g.select(list(_MEMBERS)), root / "members" / f"b{b:04d}.parquet", work)
        return {"members": g.height}

    ex.run(f"{step.id}_keys", keys, range(len(shards)))
    ex.run(f"{step.id}_groups", groups, range(buckets))
    return resolve_in_task(ex, step, ctx, folder, lambda: _read_all(root / "members", _MEMBERS),
                           lambda m, s: np.ones(len(m)), reason="exact_dup")


_write = save_parquet


# ---------------------------------------------------------------------------------------- minhash


_save_npy = save_npy


def save_shingles(sh: mh.Shingles, root: Path, shard: int, work: Path) -> None:
    _save_npy(sh.hashes, root / f"s{shard:05d}.hashes.npy", work)
    _save_npy(sh.offsets, root / f"s{shard:05d}.offsets.npy", work)


def load_shingles(root: Path, shard: int) -> mh.Shingles:
    return mh.Shingles(np.load(root / f"s{shard:05d}.hashes.npy", mmap_mode="r"),
                       np.load(root / f"s{shard:05d}.offsets.npy"))


def take_shingles(root: Path, offs: list[int], rows: np.ndarray) -> tuple[mh.Shingles, np.ndarray]:
    """The shingles of global ``rows`` from their shards' stores: ``(shingles of np.unique(rows), unique rows)``.

    Only the pages of those rows are read (the hashes are memory-mapped)."""
    uniq = np.unique(np.asarray(rows, dtype=np.int64))
    starts = np.asarray(offs, dtype=np.int64)
    owner = np.searchsorted(starts, uniq, side="right") - 1
    parts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for s in np.unique(owner).tolist():
        local = uniq[owner == s] - starts[s]
        sh = load_shingles(root, int(s))
        lo, hi = sh.offsets[local], sh.offsets[local + 1]
        lens = hi - lo
        total = int(lens.sum())
        seg = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=seg[1:])
        idx = np.arange(total, dtype=np.int64) - np.repeat(seg[:-1] - lo, lens)
        parts.append(np.asarray(sh.hashes[idx]))
        counts.append(lens)
    all_counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    offsets = np.zeros(len(all_counts) + 1, dtype=np.int64)
    np.cumsum(all_counts, out=offsets[1:])
    return mh.Shingles(np.concatenate(parts) if parts else np.zeros(0, np.uint64), offsets), uniq


def pair_jaccard(root: Path, offs: list[int], i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact Jaccard of global row pairs, and whether both rows have shingles."""
    sh, uniq = take_shingles(root, offs, np.concatenate([i, j]))
    ci, cj = np.searchsorted(uniq, i), np.searchsorted(uniq, j)
    has = sh.counts()
    return mh.jaccard(sh, ci, cj), (has[ci] > 0) & (has[cj] > 0)


_BANDS: dict[str, Any] = {"band": pl.Int16, "key": pl.UInt64, "row": pl.Int64}
_PAIRS: dict[str, Any] = {"i": pl.Int64, "j": pl.Int64}
_ROWS: dict[str, Any] = {"_row": pl.Int64, "id": pl.Utf8, "_key": pl.Float64}


def run_minhash(step: GlobalStep, shards: list[InputShard], folder: StepFolder, ctx: StepContext,
                ex: RayExecutor) -> tuple[GlobalResult, None]:
    from curate.pipeline.ray_executor import n_buckets

    p = step.params
    seed = step.seed
    check_response = p.scope == "conversation" and p.min_response_jaccard > 0
    extra = [text_expr("assistant").alias("_response")] if check_response else []
    offs = row_offsets(shards)
    n_total = offs[-1]
    buckets = n_buckets(len(shards))
    root, work = folder.work / "minhash", folder.work

    def shingle(i: int) -> dict[str, Any]:
        rows = shard_rows(step, shards[i], offs[i], text_expr(p.scope), *extra)
        sh = mh.shingle(rows["_text"], ngram=p.ngram, seed=seed)
        save_shingles(sh, root / "sh", i, work)
        if check_response:
            save_shingles(mh.shingle(rows["_response"], ngram=p.ngram, seed=seed), root / "resp", i, work)
        _write(rows.select(list(_ROWS)), root / "rows" / f"s{i:05d}.parquet", work)
        counts = sh.counts()
        return {"shingles": int(counts.sum()), "nonempty": int((counts > 0).sum())}

    totals = ex.run(f"{step.id}_shingles", shingle, range(len(shards)))
    nonempty = sum(t["nonempty"] for t in totals)
    mean = sum(t["shingles"] for t in totals) / nonempty if nonempty else 0.0
    # oph_rounds of the whole set: the mean shingle count of non-empty rows decides it
    rounds = int(min(8, max(1, math.ceil(1.5 * p.num_perm / mean)))) if nonempty else 1
    lsh_t = p.lsh_threshold_jaccard if p.lsh_threshold_jaccard is not None else max(0.05, p.threshold_jaccard - 0.25)
    bands, band_rows = mh.lsh_params(lsh_t, p.num_perm)

    def band(i: int) -> dict[str, Any]:
        sh = load_shingles(root / "sh", i)
        if p.sketch == "oph":
            sig = mh.oph_signatures(sh, num_perm=p.num_perm, seed=seed + 1, rounds=rounds)
        else:
            sig = mh.signatures(sh, num_perm=p.num_perm, seed=seed + 1)
        active = np.flatnonzero(sh.counts() > 0)
        b, k, r = band_keys(np.ascontiguousarray(sig[active]), bands, band_rows, active + offs[i], n_total)
        scatter(pl.DataFrame({"band": b, "key": k, "row": r}, schema=_BANDS),
                pl.Series(key_bucket(b, k, buckets)), buckets, root / "bands", i, work)
        return {}

    def pairs(b: int) -> dict[str, Any]:
        g = gather(root / "bands", b, _BANDS)
        i, j = bucket_pairs(g["band"].to_numpy(), g["key"].to_numpy(), g["row"].to_numpy(), window=p.bucket_window)
        scatter(pl.DataFrame({"i": i, "j": j}, schema=_PAIRS), pl.Series(i % buckets), buckets, root / "pairs", b, work)
        return {}

    def verify(q: int) -> dict[str, Any]:
        g = gather(root / "pairs", q, _PAIRS).unique(["i", "j"]).sort("i", "j")
        i, j = g["i"].to_numpy(), g["j"].to_numpy()
        sim = pair_jaccard(root / "sh", offs, i, j)[0] if len(i) else np.zeros(0, np.float32)
        ok = sim >= p.threshold_jaccard
        i, j = i[ok], j[ok]
        verified = len(i)
        if check_response and len(i):
            rsim, both = pair_jaccard(root / "resp", offs, i, j)
            keep = ~both | (rsim >= p.min_response_jaccard)
            i, j = i[keep], j[keep]
        _write(pl.DataFrame({"i": i, "j": j}, schema=_PAIRS), root / "verified" / f"q{q:04d}.parquet", work)
        return {"candidates": len(g), "verified": verified, "kept": len(i)}

    ex.run(f"{step.id}_bands", band, range(len(shards)))
    ex.run(f"{step.id}_pairs", pairs, range(buckets))
    checked = ex.run(f"{step.id}_verify", verify, range(buckets))
    step.report_extra["candidate_pairs"] = float(sum(c["candidates"] for c in checked))
    step.report_extra["verified_pairs"] = float(sum(c["verified"] for c in checked))
    if check_response:
        step.report_extra["pairs_with_other_response"] = float(sum(c["verified"] - c["kept"] for c in checked))
    group_rows(ex, f"{step.id}_components", root / "verified", root, work)
    ex.run(f"{step.id}_members", lambda s: members_of_shard(root, offs, s, work), range(len(shards)))

    def jaccard_to_survivor(m: np.ndarray, s: np.ndarray) -> np.ndarray:
        return pair_jaccard(root / "sh", offs, m, s)[0]

    return resolve_in_task(ex, step, ctx, folder, lambda: labelled_members(root), jaccard_to_survivor,
                           reason="near_dup")


def group_rows(ex: RayExecutor, name: str, pairs: Path, root: Path, work: Path, order: Path | None = None) -> None:
    """Connected components of the pairs (``i``, ``j``) under ``pairs``, in one task: saves the grouped rows
    (``nodes.npy``, sorted) and the group of each (``labels.npy``: its smallest row). With ``order`` (an
    ``.npy`` of row numbers), ``i`` and ``j`` are positions in it."""

    def components_task(_: int) -> dict[str, Any]:
        pr = _read_all(pairs, _PAIRS)
        i, j = pr["i"].to_numpy(), pr["j"].to_numpy()
        if order is not None:
            rows = np.load(order, mmap_mode="r")
            i, j = np.asarray(rows[i]), np.asarray(rows[j])
        nodes = np.unique(np.concatenate([i, j]))
        labels = nodes[components(len(nodes), np.searchsorted(nodes, i), np.searchsorted(nodes, j))]
        _save_npy(nodes, root / "nodes.npy", work)
        _save_npy(labels, root / "labels.npy", work)
        return {}

    ex.run(name, components_task, [0])


def members_of_shard(root: Path, offs: list[int], s: int, work: Path) -> dict[str, Any]:
    """Shard ``s``'s grouped rows (``rows/`` files, with ``_shard``) into ``members/``."""
    mine = np.load(root / "nodes.npy")
    mine = mine[(mine >= offs[s]) & (mine < offs[s + 1])]
    rows = pl.read_parquet(root / "rows" / f"s{s:05d}.parquet").filter(pl.col("_row").is_in(mine.tolist()))
    _write(rows.with_columns(pl.lit(s, dtype=pl.Int64).alias("_shard")), root / "members" / f"s{s:05d}.parquet", work)
    return {"members": rows.height}


def labelled_members(root: Path) -> pl.DataFrame:
    """The members files of the grouped rows with each row's group (``_label``)."""
    rows = _read_all(root / "members", {**_ROWS, "_shard": pl.Int64})
    return rows.join(pl.DataFrame({"_row": np.load(root / "nodes.npy"), "_label": np.load(root / "labels.npy")}),
                     on="_row", how="inner")
