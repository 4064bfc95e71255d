"""MinHash-LSH in parts: any split of the rows and of the band keys gives exactly the whole set's candidates."""

from __future__ import annotations

import numpy as np

from curate.index import minhash as mh
from curate.index import minhash_parts as mp


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(40)]
    base = [" ".join(rng.choice(words, 25)) for _ in range(n)]
    near = [t.replace("w1 ", "w2 ", 1) for t in base[: n // 2]]
    return base + near + ["", "", "w3"] + base[: n // 5]


def _in_parts(sig: np.ndarray, active: np.ndarray, bands: int, rows: int, n_blocks: int, n_buckets: int,
              window: int) -> np.ndarray:
    n = sig.shape[0]
    blocks = [mp.band_keys(sig[b], bands, rows, b, n) for b in np.array_split(active, n_blocks)]
    band = np.concatenate([b[0] for b in blocks])
    key = np.concatenate([b[1] for b in blocks])
    row = np.concatenate([b[2] for b in blocks])
    bucket = mp.key_bucket(band, key, n_buckets)
    pairs = [np.stack(mp.bucket_pairs(band[bucket == b], key[bucket == b], row[bucket == b], window), axis=1)
             for b in range(n_buckets)]
    return np.unique(np.concatenate(pairs), axis=0)


def test_candidates_from_parts_equal_the_whole_set():
    sh = mh.shingle(_texts(400), ngram=2)
    active = np.flatnonzero(sh.counts() > 0)
    for sketch, (bands, rows) in (("oph", mh.lsh_params(0.5, 128)), ("minhash", mh.lsh_params(0.7, 64))):
        perms = 128 if sketch == "oph" else 64
        sig = mh.oph_signatures(sh, perms, seed=1) if sketch == "oph" else mh.signatures(sh, perms, seed=1)
        i, j = mh.candidate_pairs(sig, bands, rows, window=6, active=sh.counts() > 0)
        whole = np.stack([i, j], axis=1)
        assert len(whole) > 300
        for n_blocks, n_buckets in ((1, 1), (7, 5), (40, 13)):
            assert np.array_equal(_in_parts(sig, active, bands, rows, n_blocks, n_buckets, 6), whole)


def test_signatures_of_a_row_do_not_depend_on_the_other_rows():
    """What lets each shard sign its own rows: OPH with the set's rounds, row by row the same."""
    texts = _texts(60)
    sh = mh.shingle(texts, ngram=2)
    rounds = mh.oph_rounds(sh, 128)
    whole = mh.oph_signatures(sh, 128, seed=3, rounds=rounds)
    part = mh.oph_signatures(mh.shingle(texts[10:25], ngram=2), 128, seed=3, rounds=rounds)
    assert np.array_equal(whole[10:25], part)


def test_row_bits_follow_the_row_count():
    assert [mp.row_bits(n) for n in (1, 2, 3, 1024, 1025)] == [1, 1, 2, 10, 11]
