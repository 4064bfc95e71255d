"""Search page: semantic search through the run's FAISS index, with the run's own embedding model.

A typed query is embedded by the model named in the run's embedding info (``get_embedder`` from the
embed steps); "more like this" uses the stored vector of a record, so it needs no model at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import streamlit as st

from curate import layout as L
from curate.browse.context import MORE_LIKE, SEARCH_HITS, Ctx, label_buttons, picked_row
from curate.browse.data import with_labels
from curate.browse.render import md_code, md_text, render_turns
from curate.errors import MissingResourceError


@st.cache_resource(max_entries=2, show_spinner="Loading the FAISS index...")
def load_index(path: str, mtime: int) -> tuple[Any, np.ndarray]:
    """The FAISS index and the record id of each of its rows (the index's id file beside it)."""
    import faiss

    index = faiss.read_index(path)
    ids_path = Path(path).with_name(L.INDEX_IDS.name)
    if not ids_path.exists():
        raise MissingResourceError(f"{ids_path}: the FAISS index has no id file beside it")
    ids = pl.read_parquet(ids_path)["id"].to_numpy()
    if len(ids) != index.ntotal:
        raise MissingResourceError(f"{ids_path}: {len(ids)} ids for {index.ntotal} vectors")
    return index, ids


@st.cache_resource(max_entries=2, show_spinner="Loading the embedding model...")
def load_embedder(model: str) -> Any:
    try:
        from curate.steps.embed import get_embedder
    except ImportError as e:
        raise MissingResourceError(f"cannot load the embedding model {model!r}: {e}") from e
    return get_embedder(model)


def record_vector(ctx: Ctx, rid: str) -> np.ndarray | None:
    """The stored embedding of one record (the matrix is memory-mapped, not loaded)."""
    emb = ctx.data.artifact(L.EMBEDDINGS)
    if emb is None:
        return None
    ids = pl.read_parquet(emb.with_name(L.EMBEDDING_IDS.name), columns=["id"]).with_row_index("row")
    hit = ids.filter(pl.col("id") == rid)
    if hit.height == 0:
        return None
    mat = np.load(emb, mmap_mode="r")
    return np.asarray(mat[int(hit["row"][0])], dtype=np.float32)


def search(index: Any, ids: np.ndarray, vec: np.ndarray, k: int) -> pl.DataFrame:
    q = np.ascontiguousarray(vec.reshape(1, -1), dtype=np.float32)
    scores, rows = index.search(q, k)
    keep = rows[0] >= 0
    return pl.DataFrame({"id": ids[rows[0][keep]].astype(str), "score": scores[0][keep].astype(np.float64)})


def render(ctx: Ctx) -> None:
    st.header("Search")
    faiss_path = ctx.data.artifact(L.INDEX)
    if faiss_path is None:
        st.info(L.INDEX.missing_note())
        return
    info_path = faiss_path.with_name(L.EMBEDDING_INFO.name)
    info = json.loads(info_path.read_text()) if info_path.exists() else (ctx.data.embedding_info() or {})
    index, ids = load_index(str(faiss_path), faiss_path.stat().st_mtime_ns)
    st.caption(f"{index.ntotal:,} vectors · model {md_code(info.get('model', '?'))} · text {md_code(info.get('text', '?'))}")
    pending = st.session_state.pop(MORE_LIKE, None)  # "More like this" clicked on another page
    if pending:
        st.session_state["s.mode"] = "more like this"
        st.session_state["s.rid"] = pending
    mode = st.radio("Search by", ["query", "more like this"], horizontal=True, key="s.mode")
    k = int(st.slider("Results", 5, 100, 20, key="s.k"))
    vec: np.ndarray | None = None
    exclude: str | None = None
    if mode == "query":
        query = st.text_input("Query", key="s.query")
        if query:
            embedder = st.session_state.get("curate.embedder")
            if embedder is None:
                try:
                    embedder = load_embedder(str(info.get("model", "")))
                except MissingResourceError as e:
                    st.error(md_text(e))
                    return
            vec = np.asarray(embedder.embed([query]), dtype=np.float32)[0]
    else:
        rid = st.text_input("Record id", key="s.rid")
        if rid:
            vec = record_vector(ctx, rid)
            exclude = rid
            if vec is None:
                st.warning(f"{md_code(rid)} has no stored embedding in this run (it may have been removed before the embed step).")
    if vec is None:
        return
    if vec.shape[0] != index.d:
        st.error(f"query vector has {vec.shape[0]} dims, the index {index.d}: the embedder is not the run's model")
        return
    hits = search(index, ids, vec, k + (1 if exclude else 0))
    if exclude:
        hits = hits.filter(pl.col("id") != exclude).head(k)
    st.session_state[SEARCH_HITS] = hits["id"].to_list()
    full = ctx.index()
    rows = with_labels(hits.join(full, on="id", how="inner", maintain_order="left"), ctx.labels())
    st.caption("Click a row to read the record.")
    event = st.dataframe(rows.select("score", "id", "source", "status", "label", "preview"), hide_index=True,
                         key="s.table", on_select="rerun", selection_mode="single-row")
    options = rows["id"].to_list()
    clicked = picked_row(event, options, "s.table_seen")
    if clicked is not None:
        st.session_state["s.pick"] = clicked
    if st.session_state.get("s.pick") not in options:
        st.session_state.pop("s.pick", None)
    pick = st.selectbox("Show record", options, key="s.pick")
    if pick:
        rec = ctx.data.fetch_ids(full, [pick])[0]
        c = st.columns([3, 1])
        with c[1]:
            label_buttons(ctx, pick, "search")
            st.button("More like this", key=f"search.more.{pick}", on_click=st.session_state.__setitem__,
                      args=(MORE_LIKE, pick))
        with c[0]:
            render_turns(rec["turns"] or [], key=f"search.{pick}")
