"""2-D maps of embeddings, cluster topics from c-TF-IDF, and an Alpaca-style verb/object table.

No LLM and no network: topics are the highest-scoring words of each cluster under class-based
TF-IDF (the weighting BERTopic uses): tf of word t in cluster c times log(1 + A / f_t), where A is the
mean number of words per cluster and f_t the frequency of t over all clusters.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np

# Words that start questions rather than instructions; the verb table skips these prompts.
_QUESTION_WORDS = frozenset(
    ["what", "how", "why", "when", "where", "who", "whom", "whose", "which", "is", "are", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will", "shall", "may", "might", "have", "has", "had", "am", "i", "my", "we", "our", "you", "your", "it", "this", "that", "there", "if"]
)
_DETERMINERS = frozenset(
    ["a", "an", "the", "me", "us", "him", "her", "them", "my", "your", "our", "their", "his", "its", "this", "that", "these", "those", "some", "any", "one", "two", "three", "few", "several", "all", "each", "every", "to", "for", "of", "in", "on", "about", "with", "and", "short", "brief", "new"]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
# Instruction verbs: Alpaca's top root verbs (Taori et al. 2023, fig. "verb-noun") and their common kin. A first
# word outside this list ("Hi", "I've", "Beginner question: ...") is not an instruction verb: without a
# parser, a closed list says "no verb" rather than a wrong one.
_VERB_LIST = (
    "add adapt analyse analyze answer apply arrange assess build calculate categorize categorise change check "
    "choose cite classify clean compare compile complete compose compute condense construct continue "
    "convert correct count create critique debug decide define delete derive describe design detect determine "
    "develop diagnose discuss draft draw edit elaborate eliminate enumerate estimate evaluate examine explain "
    "express extract fill find finish fix format formulate generate give guess help highlight identify "
    "illustrate implement improve include infer insert interpret invent judge justify label list locate make "
    "map match measure mention modify name note optimize optimise order organize organise outline paraphrase "
    "pick plan point predict prepare present produce propose provide put rank rate read recommend refactor "
    "reformat rephrase replace report research respond restate review revise rewrite say score select sort "
    "specify spell split state suggest summarise summarize support take teach tell test think transform "
    "translate turn update use verify walk write"
)
INSTRUCTION_VERBS = frozenset(_VERB_LIST.split())
# Politeness before the verb: "Please write...", "Can you explain...", "Could you help me..."
_LEAD = ("please", "kindly", "can you", "could you", "would you", "will you", "can u", "pls")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def umap_reducer(n: int, *, seed: int, n_neighbors: int = 15, min_dist: float = 0.1) -> Any:
    """The seeded 2-D UMAP of :func:`umap_layout` for ``n`` points (one thread, so it is deterministic)."""
    import umap

    return umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, n - 1), min_dist=min_dist,
                     metric="cosine", random_state=seed, low_memory=True, n_jobs=1)


def umap_fit_rows(n: int, *, seed: int, fit_sample: int) -> np.ndarray | None:
    """The rows UMAP is fitted on when there are more than ``fit_sample`` (sorted), else None (all of them)."""
    if n <= fit_sample:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=fit_sample, replace=False))


def umap_layout(vectors: np.ndarray, *, seed: int, fit_sample: int = 50_000, n_neighbors: int = 15,
                min_dist: float = 0.1, rest: Literal["knn", "transform"] = "knn",
                rest_neighbors: int = 5, timings: dict[str, float] | None = None) -> np.ndarray:
    """Seeded UMAP to 2-D. Above ``fit_sample`` rows it fits on a seeded sample and places the rest.

    ``rest="knn"`` puts each remaining row at the similarity-weighted mean position of its
    ``rest_neighbors`` nearest fitted rows (FAISS inner product, so rows should be unit-norm);
    ``rest="transform"`` uses umap's own ``transform`` in chunks of 100K (its own neighbour search and
    optimisation epochs; slower, see bench/analysis.py). ``timings``, when given, receives
    ``seconds_fit`` and ``seconds_rest``. The Ray executor runs the same parts: the fit in one task,
    the placement per shard (curate.pipeline.ray.maps).
    """
    n = len(vectors)
    if n < 4:
        return np.zeros((n, 2), dtype=np.float32)
    reducer = umap_reducer(n, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist)
    idx = umap_fit_rows(n, seed=seed, fit_sample=fit_sample)
    if idx is None:
        return np.asarray(reducer.fit_transform(vectors), dtype=np.float32)
    fitted = np.ascontiguousarray(vectors[idx], dtype=np.float32)
    t0 = time.perf_counter()
    reducer.fit(fitted)
    t1 = time.perf_counter()
    out = np.empty((n, 2), dtype=np.float32)
    out[idx] = reducer.embedding_
    todo = np.ones(n, dtype=bool)
    todo[idx] = False
    others = np.flatnonzero(todo)
    if rest == "transform":
        for s in range(0, len(others), 100_000):
            part = others[s : s + 100_000]
            out[part] = reducer.transform(np.asarray(vectors[part]))
    else:
        out[others] = knn_place(fitted, out[idx], vectors, others, k=rest_neighbors, seed=seed)
    if timings is not None:
        timings["seconds_fit"] = t1 - t0
        timings["seconds_rest"] = time.perf_counter() - t1
    return out


def _knn(fitted: np.ndarray, vectors: np.ndarray, rows: np.ndarray, *, k: int, seed: int,
         chunk: int) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """For each chunk of ``rows``: (output slice, similarities, neighbour rows in ``fitted``)."""
    from curate.index.vectors import build_index

    # A display position needs neighbours from the right region, not the exact top 5: recall@10 0.8
    # (nprobe 4 of 894 at 50K fitted rows) keeps 91% of the exact 5 neighbours at a third of the
    # CPU of recall 0.95 (3.2 s instead of 9.7 s per 100K rows; bench/analysis.py data).
    index, _ = build_index(np.ascontiguousarray(fitted, dtype=np.float32), exact_max=20_000, seed=seed,
                           target_recall=0.8)
    k = min(k, len(fitted))
    for s in range(0, len(rows), chunk):
        q = np.ascontiguousarray(vectors[rows[s : s + chunk]], dtype=np.float32)
        sims, nb = index.search(q, k)
        yield slice(s, s + len(q)), sims, nb


def knn_place(fitted: np.ndarray, fitted_xy: np.ndarray, vectors: np.ndarray, rows: np.ndarray, *,
              k: int = 5, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """2-D positions of ``vectors[rows]``: the similarity-weighted mean position of the k nearest fitted rows."""
    return knn_place_labelled(fitted, fitted_xy, None, vectors, rows, k=k, seed=seed, chunk=chunk)[0]


def knn_place_labelled(fitted: np.ndarray, fitted_xy: np.ndarray, fitted_labels: np.ndarray | None,
                       vectors: np.ndarray, rows: np.ndarray, *, k: int = 5, seed: int = 0,
                       chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Positions as :func:`knn_place`, and each row's label: that of its most similar fitted row
    (-1 for every row when ``fitted_labels`` is None)."""
    out = np.empty((len(rows), 2), dtype=np.float32)
    labels = np.full(len(rows), -1, dtype=np.int64)
    if len(rows) == 0 or len(fitted) == 0:
        return out[:0] if len(rows) == 0 else np.full((len(rows), 2), np.nan, np.float32), labels
    for part, sims, nb in _knn(fitted, vectors, rows, k=k, seed=seed, chunk=chunk):
        w = np.where(nb >= 0, np.maximum(sims, 0.0) + 1e-6, 0.0).astype(np.float32)
        w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        out[part] = np.einsum("qk,qkd->qd", w, fitted_xy[np.maximum(nb, 0)])
        if fitted_labels is not None:
            labels[part] = np.asarray(fitted_labels)[np.maximum(nb[:, 0], 0)]
    return out, labels


def same_vectors(a: np.ndarray, b: np.ndarray, *, atol: float = 1e-3, chunk: int = 100_000) -> bool:
    """True when every row of ``a`` equals the same row of ``b`` within ``atol`` (read in chunks, so two
    memory-mapped 1M x 384 matrices are compared without loading either)."""
    if a.shape != b.shape:
        return False
    for s in range(0, len(a), chunk):
        x = np.asarray(a[s : s + chunk], dtype=np.float32)
        y = np.asarray(b[s : s + chunk], dtype=np.float32)
        if not np.allclose(x, y, rtol=0.0, atol=atol):
            return False
    return True


def match_clusters(prev: np.ndarray, new: np.ndarray, new_all: np.ndarray, *, min_share: float = 0.5) -> dict[int, int]:
    """Stable ids for freshly computed clusters: ``{new label: id}``.

    ``prev`` and ``new`` are the old and new labels of the records both maps hold (same order);
    ``new_all`` every new label. A new cluster takes the id of the old cluster it shares the most
    records with (Hungarian matching on the overlap counts, so no two new clusters take one id), when
    that old cluster holds at least ``min_share`` of the new cluster's records that were mapped before.
    Other clusters get ids above every old one. Noise (-1) stays -1.
    """
    from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

    prev = np.asarray(prev, dtype=np.int64)
    new = np.asarray(new, dtype=np.int64)
    new_ids = sorted(int(c) for c in np.unique(new_all) if c >= 0)
    old_ids = sorted(int(c) for c in np.unique(prev) if c >= 0)
    mapping: dict[int, int] = {-1: -1}
    if new_ids and old_ids:
        both = (prev >= 0) & (new >= 0)
        ni = np.searchsorted(new_ids, new[both])
        oi = np.searchsorted(old_ids, prev[both])
        overlap = np.zeros((len(new_ids), len(old_ids)), dtype=np.int64)
        np.add.at(overlap, (ni, oi), 1)
        seen = np.bincount(np.searchsorted(new_ids, new[new >= 0]), minlength=len(new_ids))
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        for r, c in zip(rows.tolist(), cols.tolist()):
            if overlap[r, c] > 0 and overlap[r, c] >= min_share * seen[r]:
                mapping[new_ids[r]] = old_ids[c]
    nxt = max([*old_ids, *mapping.values(), -1]) + 1
    for c in new_ids:
        if c not in mapping:
            mapping[c] = nxt
            nxt += 1
    return mapping


def hdbscan_labels(xy: np.ndarray, *, min_cluster_size: int = 50, seed: int = 0) -> np.ndarray:
    """HDBSCAN on the 2-D layout (noise = -1). Fitted on at most 100K points, the rest get the nearest label."""
    from sklearn.cluster import HDBSCAN
    from sklearn.neighbors import KNeighborsClassifier

    n = len(xy)
    if n <= 100_000:
        return cast(np.ndarray, HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(xy).astype(np.int64))
    idx = np.sort(np.random.default_rng(seed).choice(n, size=100_000, replace=False))
    sub = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(xy[idx])
    knn = KNeighborsClassifier(n_neighbors=1).fit(xy[idx], sub)
    return cast(np.ndarray, knn.predict(xy).astype(np.int64))


def ctfidf_topics(texts: Sequence[str], labels: np.ndarray, *, top_n: int = 4,
                  max_docs_per_cluster: int = 2_000, seed: int = 0) -> dict[int, list[str]]:
    """Top c-TF-IDF words per cluster label (label -1, noise, gets no topic)."""
    rows = ctfidf_rows(labels, max_docs_per_cluster=max_docs_per_cluster, seed=seed)
    return ctfidf_words({k: [texts[i] for i in idx.tolist()] for k, idx in rows.items()}, top_n=top_n)


def ctfidf_rows(labels: np.ndarray, *, max_docs_per_cluster: int = 2_000, seed: int = 0) -> dict[int, np.ndarray]:
    """The rows :func:`ctfidf_topics` reads per cluster label: all of a cluster's, or a seeded sample of
    ``max_docs_per_cluster`` (noise, -1, none)."""
    rng = np.random.default_rng(seed)
    rows: dict[int, np.ndarray] = {}
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    for idx in np.split(order, cuts):
        if not len(idx) or labels[idx[0]] < 0:
            continue
        if len(idx) > max_docs_per_cluster:
            idx = rng.choice(idx, size=max_docs_per_cluster, replace=False)
        rows[int(labels[idx[0]])] = idx
    return rows


def ctfidf_words(docs: dict[int, list[str]], *, top_n: int = 4) -> dict[int, list[str]]:
    """Top c-TF-IDF words of each cluster's documents."""
    from sklearn.feature_extraction.text import CountVectorizer

    if not docs:
        return {}
    keys = sorted(docs)
    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z+#-]{2,}\b", min_df=1)
    try:
        counts = vec.fit_transform([" ".join(docs[k]) for k in keys])
    except ValueError:  # nothing but stop words
        return {k: [] for k in keys}
    tf = counts.toarray().astype(np.float64)
    tf = tf / np.maximum(tf.sum(axis=1, keepdims=True), 1)
    avg_words = counts.sum() / len(keys)
    freq = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1 + avg_words / np.maximum(freq, 1))
    score = tf * idf
    vocab = np.array(vec.get_feature_names_out())
    out = {}
    for row, k in enumerate(keys):
        best = np.argsort(-score[row])[:top_n]
        out[k] = [str(vocab[j]) for j in best if score[row, j] > 0]
    return out


def verb_object(prompt: str) -> tuple[str, str] | None:
    """The root verb and its object of an imperative instruction, by a light heuristic.

    "Write a short poem about rain" -> ("write", "poem"); "Hi! Can you explain recursion?" -> ("explain",
    "recursion"). The verb must be one of :data:`INSTRUCTION_VERBS`, at the start of one of the first two
    sentences (after a greeting or "please"/"can you"); questions and statements ("What is ...", "I've been
    trying ...") give None.
    """
    for sentence in _SENTENCE.split(prompt[:300].strip())[:2]:
        text = sentence.strip().lower()
        for lead in _LEAD:
            if text.startswith(lead + " "):
                text = text[len(lead) + 1 :]
                break
        words = [w.lower() for w in _WORD.findall(text)]
        if len(words) < 2 or words[0] not in INSTRUCTION_VERBS:
            continue
        for w in words[1:6]:
            if w not in _DETERMINERS and w not in _QUESTION_WORDS:
                return words[0], w
        return None
    return None


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def verb_pairs(prompts: Iterable[str]) -> Counter[tuple[str, str]]:
    """(verb, object) counts of ``prompts``, in order of first appearance (what :func:`verb_table` ranks)."""
    return Counter(vo for vo in map(verb_object, prompts) if vo is not None)


def verb_table(prompts: Sequence[str], *, top_verbs: int = 20, top_objects: int = 4) -> dict[str, Any]:
    """Alpaca-style table: the most common root verbs and, for each, its most common objects."""
    return verb_table_of(verb_pairs(prompts), len(prompts), top_verbs=top_verbs, top_objects=top_objects)


def verb_table_of(pairs: Mapping[tuple[str, str], int], n_prompts: int, *, top_verbs: int = 20,
                  top_objects: int = 4) -> dict[str, Any]:
    """:func:`verb_table` from (verb, object) counts in order of first appearance (counts of several
    parts added up in part order give the table of the whole)."""
    verbs: Counter[str] = Counter()
    objs: dict[str, Counter[str]] = defaultdict(Counter)
    for (v, o), n in pairs.items():
        verbs[v] += n
        objs[v][o] += n
    rows = [
        {"verb": v, "count": n, "objects": [{"object": o, "count": c} for o, c in objs[v].most_common(top_objects)]}
        for v, n in verbs.most_common(top_verbs)
    ]
    return {"prompts": n_prompts, "with_verb": sum(pairs.values()), "distinct_verbs": len(verbs), "rows": rows}
