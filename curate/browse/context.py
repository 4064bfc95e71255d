"""What every page gets: the run, the labels store, the annotator, and the cached derived tables.

Caches are keyed by the run's file mtimes (``RunData.fingerprint``), so a re-run of the recipe into
the same folder is picked up on the next page load. The index table is a ``cache_resource``
(shared, not copied per call: at 1M records it is ~250 MB and ``cache_data`` would pickle it on
every hit); small derived tables use ``cache_data``.

Test hooks (session state, set before the first run; documented in docs/browse.md):
``curate.run_dir`` and ``curate.labels_path`` replace the command-line arguments, and
``curate.embedder`` supplies an object with ``embed(list[str]) -> np.ndarray`` for the Search page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from curate.browse.data import Filters, RunData
from curate.browse.render import md_text
from curate.labels import LabelStore

SELECTION = "curate.selection"  # ids selected on the Map page
FILTERS = "curate.filters"  # the Browse page's current Filters
SEARCH_HITS = "curate.search_hits"  # ids of the last Search result
MORE_LIKE = "curate.more_like"  # record id the Search page opens with "more like this" (consumed once)
PENDING = "curate.pending"  # the bulk label action waiting for its confirmation: {"key", "label", "n"}


@st.cache_resource(max_entries=2, show_spinner="Indexing the run (once per run)...")
def index_table(run_path: str, fingerprint: tuple[tuple[str, int], ...]) -> pl.DataFrame:
    return RunData(run_path).build_index()


@st.cache_data(max_entries=32, show_spinner="Searching the text...")
def text_hits(run_path: str, fingerprint: tuple[tuple[str, int], ...], pattern: str, regex: bool) -> pl.DataFrame:
    return RunData(run_path).text_search(pattern, regex)


@st.cache_data(max_entries=4)
def facets(run_path: str, fingerprint: tuple[tuple[str, int], ...]) -> tuple[dict[str, list[Any]], int]:
    """Distinct values of the filterable columns, and the longest record: small, computed once per run."""
    index = index_table(run_path, fingerprint)
    values = {
        col: index[col].drop_nulls().unique().sort().to_list()
        for col in ("source", "subset", "lang", "cluster", "reason", "flag")
    }
    longest = index.select(pl.col("chars").max().fill_null(0)).item() if index.height else 0
    return values, int(longest)


@st.cache_data(max_entries=4)
def cluster_names(run_path: str, fingerprint: tuple[tuple[str, int], ...]) -> dict[int, str]:
    """``{cluster: "topic words · #cluster"}`` for every cluster of the map, largest first."""
    from curate.browse.map import cluster_name

    index = index_table(run_path, fingerprint)
    sizes = (index.filter(pl.col("cluster").is_not_null() & (pl.col("status") == "kept"))
             .group_by("cluster").agg(pl.col("topic").first(), pl.len().alias("n"))
             .sort(["n", "cluster"], descending=[True, False]))
    return {int(c): cluster_name(int(c), t) for c, t, _ in sizes.iter_rows()}


@st.cache_data(max_entries=4)
def overview_tables(run_path: str, fingerprint: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    """Counts for the Overview page (status totals, per-source table, reasons seen in the ledger)."""
    from curate.browse.data import KEPT, diversity_table, source_removals, sources_table

    index = index_table(run_path, fingerprint)
    data = RunData(run_path)
    report = data.report()
    decisions = data.source_decisions()
    return {
        "seen": index.height,
        "kept": int((index["status"] == KEPT).sum()),
        "sources": sources_table(report, index),
        "source_removals": source_removals(report),
        "diversity": diversity_table(report, "per_source", decisions),
        "diversity_subsets": diversity_table(report, "per_subset", decisions),
        "decisions": decisions,
        "ledger_reasons": index.filter(pl.col("reason").is_not_null())
        .group_by("step", "reason")
        .agg(pl.len().alias("records"))
        .sort("records", descending=True)
        .head(15),
    }


@st.cache_data(max_entries=4)
def dedup_groups(run_path: str, fingerprint: tuple[tuple[str, int], ...]) -> pl.DataFrame | None:
    return RunData(run_path).groups()


@st.cache_resource(max_entries=4)
def _run_data(run_path: str) -> RunData:
    return RunData(run_path)


@dataclass
class Ctx:
    data: RunData
    store: LabelStore
    annotator: str

    @property
    def key(self) -> tuple[str, tuple[tuple[str, int], ...]]:
        return str(self.data.path), self.data.fingerprint()

    def index(self) -> pl.DataFrame:
        return index_table(*self.key)

    def labels(self) -> pl.DataFrame:
        """Effective labels, read fresh on every rerun (another session may have written)."""
        return self.store.effective()

    def label(self, ids: Sequence[str], label: str, tags: Sequence[str] = (), note: str = "") -> None:
        """Write a label (used as a button callback, so the rerun that follows already shows it)."""
        n = self.store.add(ids, label, tags=tags, note=note, annotator=self.annotator)
        st.toast(f"{md_text(label)}: {n} record{'s' if n != 1 else ''} labelled")

    def filters(self) -> Filters:
        f = st.session_state.get(FILTERS)
        return f if isinstance(f, Filters) else Filters()


def make_ctx(run_dir: str | Path, labels_path: str | Path, annotator: str) -> Ctx:
    data = _run_data(str(Path(run_dir).resolve()))
    return Ctx(data=data, store=LabelStore(labels_path), annotator=annotator)


def _ask(key: str, label: str, n: int) -> None:
    st.session_state[PENDING] = {"key": key, "label": label, "n": n}


def _cancel() -> None:
    st.session_state.pop(PENDING, None)


def _confirmed(ctx: Ctx, ids: Sequence[str], label: str, tags: Sequence[str], note: str) -> None:
    st.session_state.pop(PENDING, None)
    ctx.label(ids, label, tags, note)


def bulk_label_button(ctx: Ctx, text: str, ids: Sequence[str], label: str, key: str, *,
                      tags: Sequence[str] = (), note: str = "", where: Any = None) -> None:
    """A button that labels many records, after a confirmation that says how many and with what.

    The first click only asks: "Label 1,234 records drop?" with Confirm and Cancel, drawn in ``where``
    (a container; default: the page). The labels are written when Confirm is clicked, for the set
    as it is then (its size is in the Confirm button's text).
    """
    host = where if where is not None else st
    pending = st.session_state.get(PENDING)
    if isinstance(pending, dict) and pending.get("key") == key:
        n = len(ids)
        box = host.container(border=True)
        box.warning(f"Label **{n:,}** record{'s' if n != 1 else ''} **{md_text(label)}**? "
                    "This appends one label per record to the labels file (undo with `clear`).")
        c = box.columns(2)
        c[0].button(f"Confirm: {label} {n:,}", key=f"{key}.confirm", type="primary", disabled=n == 0,
                    on_click=_confirmed, args=(ctx, list(ids), label, list(tags), note))
        c[1].button("Cancel", key=f"{key}.cancel", on_click=_cancel)
    else:
        host.button(text, key=key, on_click=_ask, args=(key, label, len(ids)), disabled=not ids)


def picked_row(event: Any, ids: Sequence[str], seen_key: str) -> str | None:
    """The id of a row clicked in a ``st.dataframe(on_select="rerun")`` table, once per click (None when
    the click was already handled, so a selectbox beside the table still works)."""
    rows = list(((event or {}).get("selection") or {}).get("rows") or [])
    if not rows or not 0 <= int(rows[0]) < len(ids):
        return None
    rid = str(ids[int(rows[0])])
    if st.session_state.get(seen_key) == rid:
        return None
    st.session_state[seen_key] = rid
    return rid


def parse_tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def label_buttons(ctx: Ctx, rid: str, key: str) -> None:
    """Keep / Drop / Clear buttons for one record, in a row.

    Labels are written in ``on_click`` callbacks, which run before the page reruns, so the page
    that follows the click already shows the new label.
    """
    cols = st.columns(3)
    for col, (text, label) in zip(cols, (("Keep", "keep"), ("Drop", "drop"), ("Clear", "clear"))):
        col.button(text, key=f"{key}.{label}.{rid}", on_click=ctx.label, args=([rid], label))
