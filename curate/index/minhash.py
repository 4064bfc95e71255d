"""MinHash signatures and LSH candidate pairs, vectorised with polars and numpy.

Arrays in, arrays out: texts become uint64 word-n-gram hashes (one concatenated array plus offsets),
signatures are a (n, num_perm) uint32 matrix, LSH returns candidate row pairs, and candidates are
verified with exact Jaccard on the shingle sets. No Python loop runs per shingle or per token.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

# Word tokens: runs of letters/digits (unicode-aware); CJK text without spaces becomes one long token
# per run, so short-shingle fallback applies (documented in dedup.minhash).
TOKEN_PATTERN = r"\w+"
_MIX = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio constant (splitmix64) to combine token hashes
_MAX_U32 = np.uint32(0xFFFFFFFF)


@dataclass
class Shingles:
    """Word-n-gram hashes of n texts: ``hashes[offsets[r]:offsets[r+1]]`` belong to row r (unique, sorted)."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, length n + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, row: int) -> np.ndarray:
        return self.hashes[self.offsets[row] : self.offsets[row + 1]]

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def _mix64(x: np.ndarray, block: int = 1 << 15, out: np.ndarray | None = None) -> np.ndarray:
    """splitmix64 finaliser: spreads combined n-gram hashes over all 64 bits.

    Runs in cache-sized blocks with in-place ufuncs: on millions of hashes this is several times
    faster than whole-array expressions, which allocate and fault in a fresh temporary per step.
    ``out`` (same shape, uint64, may be ``x`` itself) receives the result instead of a new array.
    """
    x = np.ascontiguousarray(x, dtype=np.uint64)
    if out is None:
        out = np.empty_like(x)  # ``out=x`` mixes in place (each block reads x before writing out)
    tmp = np.empty(min(block, max(len(x), 1)), dtype=np.uint64)
    for s in range(0, len(x), block):
        o = out[s : s + block]
        t = tmp[: len(o)]
        np.right_shift(x[s : s + block], np.uint64(30), out=t)
        np.bitwise_xor(x[s : s + block], t, out=o)
        np.multiply(o, np.uint64(0xBF58476D1CE4E5B9), out=o)
        np.right_shift(o, np.uint64(27), out=t)
        np.bitwise_xor(o, t, out=o)
        np.multiply(o, np.uint64(0x94D049BB133111EB), out=o)
        np.right_shift(o, np.uint64(31), out=t)
        np.bitwise_xor(o, t, out=o)
    return out


def shingle(texts: pl.Series | list[str], ngram: int = 5, seed: int = 0, chunk_rows: int = 20_000) -> Shingles:
    """Lowercased word n-gram hashes per text (duplicates within a row are kept; MinHash ignores them).

    A text with fewer than ``ngram`` tokens gets one shingle of all its tokens; an empty text gets none.
    Rows are processed in chunks (about 1M tokens each for 50-word texts): the numpy temporaries stay
    small enough to be reused by the allocator instead of page-faulting fresh memory on every step.
    """
    if ngram < 1:
        raise ValueError("ngram must be >= 1")
    s = pl.Series("t", texts, dtype=pl.Utf8).fill_null("")
    parts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    tokenize = pl.col("t").str.to_lowercase().str.extract_all(TOKEN_PATTERN).list.eval(pl.element().hash(seed))
    wave = chunk_rows * 8
    for w in range(0, max(len(s), 1), wave):
        # the regex tokeniser is the slowest part; collect_all runs the chunks of a wave on all cores
        frames = [
            pl.LazyFrame({"t": s.slice(start, chunk_rows)}).select(tokenize)
            for start in range(w, min(w + wave, max(len(s), 1)), chunk_rows)
        ]
        for df in pl.collect_all(frames):
            hashes, n_sh = _shingle_chunk(df.to_series(), ngram)
            parts.append(hashes)
            counts.append(n_sh)
    all_counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    offsets = np.zeros(len(all_counts) + 1, dtype=np.int64)
    np.cumsum(all_counts, out=offsets[1:])
    return Shingles(np.concatenate(parts) if parts else np.zeros(0, np.uint64), offsets)


def _shingle_chunk(token_hashes: pl.Series, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes and per-row counts from a list[u64] column of token hashes."""
    lens = token_hashes.list.len().fill_null(0).to_numpy().astype(np.int64)
    h = token_hashes.explode().drop_nulls().to_numpy()
    n_tok = len(h)
    starts = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=starts[1:])
    short = (lens > 0) & (lens < ngram)
    short_pos = starts[:-1][short]
    short_len = lens[short]
    with np.errstate(over="ignore"):
        # after step k, combined[p] = polynomial hash of tokens p..p+k-1 (mod 2**64) for p <= n_tok - k;
        # updated in place on the shrinking prefix, so no shifted copy is allocated per step
        combined = h.astype(np.uint64, copy=True)
        short_vals = np.zeros(len(short_pos), dtype=np.uint64)
        for k in range(1, ngram + 1):
            if k > 1:
                head = combined[: n_tok - (k - 1)]
                np.multiply(head, _MIX, out=head)
                np.add(head, h[k - 1 :], out=head)
            at_k = short_len == k
            short_vals[at_k] = combined[short_pos[at_k]]
        combined[short_pos] = short_vals
        # keep position p of row r when p + ngram <= end of r (full n-grams), plus each short row's start
        n_full = np.maximum(lens - ngram + 1, 0)
        take = np.zeros(n_tok + 1, dtype=np.int8)
        np.add.at(take, starts[:-1][n_full > 0], 1)
        np.add.at(take, (starts[:-1] + n_full)[n_full > 0], -1)
        keep = np.cumsum(take[:-1], dtype=np.int8).astype(bool)
        keep[short_pos] = True
        hashes = combined[keep]
        _mix64(hashes, out=hashes)
    n_sh = np.where(lens >= ngram, lens - ngram + 1, short.astype(np.int64))
    return hashes, n_sh


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (a, b) for multiply-shift hashing ((a*x + b) mod 2**64) >> 32 with odd a."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def signatures(sh: Shingles, num_perm: int = 128, seed: int = 1, block_perm: int = 16,
               chunk_shingles: int = 1_000_000) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures; rows without shingles are all 0xFFFFFFFF.

    Each block of permutations is one (shingles x block_perm) array reduced per row with
    ``np.minimum.reduceat``; rows are chunked so that array stays near ``chunk_shingles`` long.
    """
    a, b = permutations(num_perm, seed)
    n = len(sh)
    sig = np.full((n, num_perm), _MAX_U32, dtype=np.uint32)
    counts = sh.counts()
    nonempty = np.flatnonzero(counts > 0)
    if len(nonempty) == 0:
        return sig
    # chunk boundaries over non-empty rows by cumulative shingle count
    cum = np.cumsum(counts[nonempty])
    cut = np.searchsorted(cum, np.arange(chunk_shingles, cum[-1], chunk_shingles), side="left")
    edges = np.unique(np.concatenate([[0], cut + 1, [len(nonempty)]]))
    edges = edges[edges <= len(nonempty)]
    with np.errstate(over="ignore"):
        for lo, hi in itertools.pairwise(edges):
            rows = nonempty[lo:hi]
            s0, s1 = sh.offsets[rows[0]], sh.offsets[rows[-1] + 1]
            x = sh.hashes[s0:s1]
            # rows are contiguous in the shingle array except for empty rows, which hold no shingles
            idx = sh.offsets[rows] - s0
            buf = np.empty((block_perm, len(x)), dtype=np.uint64)
            for p in range(0, num_perm, block_perm):
                # (block_perm, shingles) layout: each permutation's row is contiguous for reduceat;
                # in-place ops on one cache-sized buffer avoid allocating per step
                q = min(block_perm, num_perm - p)
                hv = buf[:q]
                np.multiply(a[p : p + q, None], x[None, :], out=hv)
                np.add(hv, b[p : p + q, None], out=hv)
                np.right_shift(hv, np.uint64(32), out=hv)
                sig[rows, p : p + q] = np.minimum.reduceat(hv, idx, axis=1).T
    return sig


def oph_rounds(sh: Shingles, num_perm: int) -> int:
    """Hashing rounds for ``oph_signatures``: enough that the mean non-empty row puts about 1.5 x
    ``num_perm`` (shingle, round) items into its bins (at most 8 rounds)."""
    counts = sh.counts()
    nonempty = counts[counts > 0]
    if len(nonempty) == 0:
        return 1
    return int(min(8, max(1, math.ceil(1.5 * num_perm / float(nonempty.mean())))))


def oph_signatures(sh: Shingles, num_perm: int = 128, seed: int = 1, chunk_shingles: int = 1 << 18,
                   rounds: int | None = None) -> np.ndarray:
    """(n, num_perm) uint32 one-permutation-hashing signatures with optimal densification.

    One-permutation hashing (Li, Owen, Zhang 2012) hashes every shingle once: the hash picks one of
    ``num_perm`` bins and the bin keeps the smallest value, so the cost is O(shingles), not
    O(shingles x num_perm) as with k permutations. Empty bins are filled by optimal densification
    (Shrivastava 2017): bin j copies the value of bin h(j, t) for the first attempt t whose bin is
    non-empty, with h independent of the row, so two rows agree in slot j with probability equal to
    their Jaccard, as with classic MinHash. Rows without shingles are all 0xFFFFFFFF.

    Short texts leave most bins empty (about 63% of 128 bins for 60 shingles), and densifying them
    dominated the cost. So each shingle is hashed in ``rounds`` independent rounds (Dahlgaard, Knudsen,
    Thorup 2017, "Fast similarity sketching"): OPH then runs over the set of (shingle, round) items,
    whose Jaccard between two texts equals that of the shingle sets, and few bins are left to densify.
    ``rounds`` defaults to ``oph_rounds`` (the same for every row, as it must be for slots to agree).
    """
    if rounds is None:
        rounds = oph_rounds(sh, num_perm)
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    k = int(num_perm)
    n = len(sh)
    sig = np.full((n, k), _MAX_U32, dtype=np.uint32)
    counts = sh.counts()
    if n == 0 or sh.offsets[-1] == 0:
        return sig
    key = int(_mix64(np.array([seed], dtype=np.uint64) + np.uint64(0x632BE59BD9B4E019))[0])
    edges = np.unique(np.searchsorted(sh.offsets, np.arange(0, sh.offsets[-1], chunk_shingles), side="right") - 1)
    edges = np.unique(np.concatenate([[0], edges, [n]]))
    with np.errstate(over="ignore"):
        for lo, hi in itertools.pairwise(edges.tolist()):
            x = sh.hashes[sh.offsets[lo] : sh.offsets[hi]]
            row_base = np.repeat(np.arange(hi - lo, dtype=np.int64) * k, counts[lo:hi])
            block = sig[lo:hi]
            xr = np.empty_like(x)
            for r in range(rounds):
                np.bitwise_xor(x, np.uint64((key + r * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF), out=xr)
                h = _mix64(xr, out=xr)
                # value from the low 32 bits (0xFFFFFFFF marks an empty bin), bin from the high 32 bits
                # by multiply-shift range reduction, which for a power-of-two k is the top log2(k) bits
                vals = h.astype(np.uint32)
                np.minimum(vals, _MAX_U32 - np.uint32(1), out=vals)
                if k & (k - 1) == 0:
                    np.right_shift(h, np.uint64(64 - (k.bit_length() - 1)), out=h)
                else:
                    np.right_shift(h, np.uint64(32), out=h)
                    np.multiply(h, np.uint64(k), out=h)
                    np.right_shift(h, np.uint64(32), out=h)
                flat_idx = h.view(np.int64)
                np.add(flat_idx, row_base, out=flat_idx)
                np.minimum.at(block.reshape(-1), flat_idx, vals)
            _densify(block, key)
    return sig


@functools.lru_cache(maxsize=8)
def _probe_tables(k: int, key: int, attempts: int) -> np.ndarray:
    """(attempts, k) bin probed by bin j at attempt t: a hash of (t, j) only, never of the row."""
    with np.errstate(over="ignore"):
        probe = _mix64(np.arange(attempts * k, dtype=np.uint64) + np.uint64(key))
        table = (((probe >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)).astype(np.int64).reshape(attempts, k)
    table.setflags(write=False)  # shared through the cache
    return table


def _densify(block: np.ndarray, key: int) -> None:
    """Fill empty bins in place: bin j takes the value of bin h(j, t) for the first non-empty probe t.

    Only the still-empty bins of the block are carried from one attempt to the next (flat positions in
    one int64 array), so the work is about (empty bins) / (fraction of non-empty bins) per row.
    """
    k = block.shape[1]
    flat = block.reshape(-1)
    full = flat != _MAX_U32
    pending = ~full.reshape(block.shape) & full.reshape(block.shape).any(axis=1)[:, None]
    pos = np.flatnonzero(pending)
    tables = _probe_tables(k, key, 256)
    t = 0
    while len(pos):
        if t == len(tables):  # a row with one or two shingles: extend the probe sequence
            tables = _probe_tables(k, key, 2 * len(tables))
        pj = pos % k
        src = pos + (tables[t][pj] - pj)
        ok = full[src]
        flat[pos[ok]] = flat[src[ok]]
        pos = pos[~ok]
        t += 1


def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising weighted false-positive and false-negative mass around ``threshold``
    (the same optimisation datasketch's MinHashLSH uses, integrated numerically)."""
    xs_lo = np.linspace(0.0, threshold, 200)
    xs_hi = np.linspace(threshold, 1.0, 200)
    best, best_err = (1, num_perm), math.inf
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - xs_lo**rows) ** bands, xs_lo)
            fn = np.trapezoid((1 - xs_hi**rows) ** bands, xs_hi)
            err = float(fp_weight * fp + fn_weight * fn)
            if err < best_err:
                best, best_err = (bands, rows), err
    return best


def _band_hashes(sig: np.ndarray, bands: int, rows: int, chunk_rows: int = 1 << 14) -> np.ndarray:
    """(bands, n) uint64 hash of each row's slots in each band, all bands at once.

    Two 32-bit slots are packed exactly into one uint64 per finaliser call (with an even ``rows``,
    through a uint64 view of the signature matrix, without copying slots). Rows go in chunks so the
    temporaries stay cache-sized.
    """
    n = sig.shape[0]
    width = bands * rows
    out = np.empty((bands, n), dtype=np.uint64)
    seeds = (np.arange(1, bands + 1, dtype=np.uint64) * _MIX)[None, :]
    view = rows % 2 == 0 and sig.shape[1] % 2 == 0 and sig.dtype == np.uint32 and sig.flags.c_contiguous
    with np.errstate(over="ignore"):
        for r0 in range(0, n, chunk_rows):
            part = sig[r0 : r0 + chunk_rows]
            m = part.shape[0]
            if view:
                packed = part.view(np.uint64)[:, : width // 2].reshape(m, bands, rows // 2)
            else:
                cols = part[:, :width].astype(np.uint64).reshape(m, bands, rows)
                if rows % 2:
                    cols = np.concatenate([cols, np.zeros((m, bands, 1), np.uint64)], axis=2)
                packed = (cols[:, :, 0::2] << np.uint64(32)) | cols[:, :, 1::2]
            hv = np.broadcast_to(seeds, (m, bands))
            for c in range(packed.shape[2]):
                step = hv * _MIX
                step += packed[:, :, c]
                hv = _mix64(step.reshape(-1), out=step.reshape(-1)).reshape(m, bands)
            out[:, r0 : r0 + m] = hv.T
    return out


def candidate_pairs(sig: np.ndarray, bands: int, rows: int, window: int = 32,
                    active: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (i < j) that share at least one LSH band bucket.

    Within a bucket every row is paired with the next ``window - 1`` rows of that bucket in row order:
    all pairs for buckets up to ``window`` rows, a bounded band around each row for larger ones (these
    are near-identical clusters, which union-find still joins through the overlapping windows).
    ``active`` (bool per row) excludes rows, e.g. empty texts.
    """
    n = sig.shape[0]
    rows_idx = np.arange(n, dtype=np.int64) if active is None else np.flatnonzero(active)
    keys: list[np.ndarray] = []
    # each band's key is a hash of its slots in the high bits and the row number in the low bits, so
    # one plain sort of uint64 (SIMD in numpy, no argsort indirection) groups equal bands in row order;
    # the hash keeps 64 - row_bits bits, and a key collision only adds a candidate that exact Jaccard
    # then rejects
    row_bits = max(1, int(n - 1).bit_length())
    row_mask = np.uint64((1 << row_bits) - 1)
    r64 = rows_idx.astype(np.uint64)
    band_hashes = _band_hashes(sig if len(rows_idx) == n else sig[rows_idx], bands, rows)
    for band in range(bands):
        hv = band_hashes[band]
        hv &= ~row_mask
        hv |= r64
        hv.sort()
        sorted_h = hv >> np.uint64(row_bits)
        sorted_r = (hv & row_mask).astype(np.int64)
        for d in range(1, window):
            same = sorted_h[d:] == sorted_h[:-d]
            if not same.any():
                break
            i, j = sorted_r[:-d][same], sorted_r[d:][same]
            keys.append(i * n + j)  # rows ascend within a bucket, so i < j
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    uniq = np.unique(np.concatenate(keys))
    return uniq // n, uniq % n


def jaccard(sh: Shingles, i: np.ndarray, j: np.ndarray, chunk_pairs: int = 1 << 16) -> np.ndarray:
    """Exact Jaccard of the shingle sets of row pairs; 0 where either row has no shingles.

    Vectorised over pairs: the shingles of both rows of each pair are tagged with the pair number and
    the side, sorted as one uint64 array, deduplicated (a row may repeat a shingle), and the
    intersection is the number of hashes present on both sides. The pair number takes the high bits
    of the sort key, so the shingle hash keeps 64 - 1 - pair_bits of its 64 bits (47 or more): two
    distinct shingles of one pair collide there with probability about (200 / 2**47) per pair of
    200-shingle texts, negligible next to the 64-bit shingle hashes themselves.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    out = np.zeros(len(i), dtype=np.float32)
    counts = sh.counts()
    for lo in range(0, len(i), chunk_pairs):
        a, b = i[lo : lo + chunk_pairs], j[lo : lo + chunk_pairs]
        m = len(a)
        pair_bits = max(1, int(m - 1).bit_length())
        shift = np.uint64(64 - pair_bits)  # pair number in the top bits
        rows = np.concatenate([a, b])
        lens = counts[rows]
        # positions of every shingle of every (pair, side) segment, without a Python loop
        seg_start = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=seg_start[1:])
        total = int(seg_start[-1])
        pos = np.arange(total, dtype=np.int64) - np.repeat(seg_start[:-1] - sh.offsets[rows], lens)
        h = sh.hashes[pos]
        seg = np.repeat(np.arange(len(rows), dtype=np.int64), lens)
        pair = (seg % m).astype(np.uint64)
        side = (seg >= m).astype(np.uint64)
        key = (pair << shift) | ((h >> np.uint64(pair_bits + 1)) << np.uint64(1)) | side
        key.sort()
        if len(key):
            first = np.ones(len(key), dtype=bool)
            first[1:] = key[1:] != key[:-1]
            key = key[first]  # one entry per distinct (pair, shingle, side)
        pk = (key >> shift).astype(np.int64)
        size_a = np.bincount(pk[(key & np.uint64(1)) == 0], minlength=m)
        size_b = np.bincount(pk[(key & np.uint64(1)) == 1], minlength=m)
        both = (key[1:] >> np.uint64(1)) == (key[:-1] >> np.uint64(1))  # same pair and shingle, sides 0 and 1
        inter = np.bincount(pk[1:][both], minlength=m)
        union = size_a + size_b - inter
        ok = (size_a > 0) & (size_b > 0)
        res = np.zeros(m, dtype=np.float64)
        res[ok] = inter[ok] / union[ok]
        out[lo : lo + m] = res
    return out


def estimated_jaccard(sig: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Fraction of equal signature slots: the MinHash estimate of Jaccard."""
    est: np.ndarray = (sig[i] == sig[j]).mean(axis=1).astype(np.float32)
    return est
