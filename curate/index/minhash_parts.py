"""MinHash-LSH in parts: the candidate pairs of :func:`curate.index.minhash.candidate_pairs`, computed from
row blocks and key buckets that different processes (or machines) hold.

:func:`candidate_pairs` sorts each band's keys with the row number in the low bits, so a bucket is a run
of equal high bits, in row order, and every row is paired with the next ``window - 1`` rows of its
bucket. Here a block of rows gives its ``(band, bucket key, row)`` triples (:func:`band_keys`, with
the same key truncation, which depends on the total row count), any split of the triples that keeps
each ``(band, key)`` whole gives its pairs (:func:`bucket_pairs`), and the union of the parts' pairs is
exactly the candidate set of the whole. Arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from curate.index.minhash import _band_hashes, _mix64


def row_bits(n_total: int) -> int:
    """Low bits :func:`curate.index.minhash.candidate_pairs` gives the row number for ``n_total`` rows."""
    return max(1, int(n_total - 1).bit_length())


def band_keys(sig: np.ndarray, bands: int, rows: int, row_ids: np.ndarray, n_total: int) -> tuple[np.ndarray, ...]:
    """``(band, key, row)`` of every row of ``sig`` in every band: ``key`` is the band hash with the low
    ``row_bits(n_total)`` bits dropped, as the whole-set sort compares it; ``row_ids`` are global rows."""
    m = sig.shape[0]
    if m == 0:
        return np.zeros(0, np.int16), np.zeros(0, np.uint64), np.zeros(0, np.int64)
    hv = _band_hashes(sig, bands, rows)  # (bands, m)
    key = hv >> np.uint64(row_bits(n_total))
    band = np.repeat(np.arange(bands, dtype=np.int16), m)
    return band, key.reshape(-1), np.tile(np.asarray(row_ids, dtype=np.int64), bands)


def key_bucket(band: np.ndarray, key: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each ``(band, key)``: the same in every process, so a bucket's keys meet in one task."""
    with np.errstate(over="ignore"):
        mixed = _mix64(key ^ (band.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    return (mixed % np.uint64(n_buckets)).astype(np.int64)


def bucket_pairs(band: np.ndarray, key: np.ndarray, row: np.ndarray, window: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``(i < j)`` sharing a ``(band, key)``: within each, every row with the next ``window - 1`` rows
    in row order. Unique pairs, sorted by ``(i, j)``."""
    if len(row) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((row, key, band))
    b, k, r = band[order], key[order], row[order]
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    for d in range(1, window):
        same = (k[d:] == k[:-d]) & (b[d:] == b[:-d])
        if not same.any():
            break
        out_i.append(r[:-d][same])
        out_j.append(r[d:][same])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.stack([np.concatenate(out_i), np.concatenate(out_j)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]
