"""Browse page: filter the run's records and read them as chat turns, one page at a time.

Filters run on the in-memory index table; substring and regex search stream over the Parquet text
(cached per pattern). Only the records of the current page are read in full.
"""

from __future__ import annotations

import streamlit as st

from curate.browse.context import (
    FILTERS,
    MORE_LIKE,
    SELECTION,
    Ctx,
    cluster_names,
    facets,
    label_buttons,
    text_hits,
)
from curate.browse.data import Filters, apply_filters, check_regex, with_labels
from curate.browse.render import highlighter, md_text, record_header, render_turns

PAGE_SIZES = (10, 20, 50)


def filter_form(ctx: Ctx) -> tuple[Filters, str | None]:
    """The filter widgets; returns the Filters and an error message for a bad regex (None if fine)."""
    opts, longest = facets(*ctx.key)
    names = cluster_names(*ctx.key)
    c = st.columns(4)
    f = Filters(
        sources=c[0].multiselect("Source", opts["source"], key="b.source"),
        subsets=c[1].multiselect("Subset", opts["subset"], key="b.subset"),
        langs=c[2].multiselect("Language", opts["lang"], key="b.lang"),
        clusters=c[3].multiselect("Cluster (topic)", list(names) or opts["cluster"], key="b.cluster",
                                  format_func=lambda k: names.get(k, str(k))),
    )
    c2 = st.columns(4)
    f.statuses = c2[0].multiselect("Status", ["kept", "removed"], key="b.status")
    f.reasons = c2[1].multiselect("Reason", opts["reason"], key="b.reason")
    f.labels = c2[2].multiselect("Label", ["keep", "drop", "not_duplicate", "unlabelled"], key="b.label")
    f.flags = c[3].multiselect("Flag (kept, for review)", opts["flag"], key="b.flag") if opts["flag"] else []
    hi = longest
    lo_v, hi_v = c2[3].slider("Length (chars)", 0, max(hi, 1), (0, max(hi, 1)), key="b.chars")
    f.min_chars = lo_v if lo_v > 0 else None
    f.max_chars = hi_v if hi_v < hi else None
    c3 = st.columns([3, 1])
    f.text = c3[0].text_input("Text contains", key="b.text", placeholder="substring, or a regex with the box ticked")
    f.regex = c3[1].checkbox("regex", key="b.regex")
    selection = st.session_state.get(SELECTION) or []
    if selection and st.checkbox(f"Only the Map selection ({len(selection):,} records)", key="b.mapsel",
                                 value=True):
        f.ids = list(selection)
    err = check_regex(f.text) if f.text and f.regex else None
    return f, err


def more_like_this(rid: str) -> None:
    """Open the Search page on this record's neighbours (a callback: it runs before the page radio is drawn)."""
    st.session_state[MORE_LIKE] = rid
    st.session_state["curate.page"] = "Search"


def render(ctx: Ctx) -> None:
    st.header("Browse")
    index = ctx.index()
    labels = ctx.labels()
    f, err = filter_form(ctx)
    hits = None
    if err:
        # a pattern that cannot be searched matches nothing: listing every record would look like a result
        st.error(md_text(err))
        st.session_state[FILTERS] = Filters(ids=[])
        st.info("Fix the pattern (or untick regex to search for the text as written) to see matching records.")
        return
    if f.text:
        hits = text_hits(*ctx.key, f.text, f.regex)
    st.session_state[FILTERS] = f
    result = apply_filters(index, f, labels, hits)
    n = result.height
    c = st.columns([1, 1, 4])
    size = int(c[0].selectbox("Per page", PAGE_SIZES, key="b.size"))
    pages = max(1, -(-n // size))
    page = int(c[1].number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, key="b.page"))
    c[2].markdown(f"**{n:,}** matching records")
    if n == 0:
        st.info("No record matches these filters.")
        return
    rows = with_labels(result.slice((page - 1) * size, size), labels)
    records = ctx.data.fetch(rows)
    mark = highlighter(f.text, f.regex)
    for row, rec in zip(rows.iter_rows(named=True), records):
        rid = row["id"]
        with st.container(border=True):
            st.markdown(record_header(row))
            left, right = st.columns([3, 1])
            with right:
                label_buttons(ctx, rid, "browse")
                st.button("More like this", key=f"browse.more.{rid}", on_click=more_like_this, args=(rid,))
            with left:
                render_turns(rec["turns"] or [], key=f"browse.{rid}", highlight=mark)
