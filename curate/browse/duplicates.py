"""Duplicates page: every dedup group, the survivor beside the members that were removed.

A person can restore a removed member (label ``keep``) or mark it ``not_duplicate``; both take
effect on the next run through the ``label.apply`` step.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from curate.browse.context import Ctx, dedup_groups
from curate.browse.data import missing_note, with_labels
from curate.browse.render import md_code, md_text, render_turns

GROUPS_PER_PAGE = 5


def render(ctx: Ctx) -> None:
    st.header("Duplicates")
    groups = dedup_groups(*ctx.key)
    if groups is None:
        st.info(missing_note("groups.parquet"))
        return
    if groups.is_empty():
        st.info("The dedup steps of this run found no duplicates.")
        return
    index = ctx.index()
    sizes = groups.group_by("group", "survivor", "step").agg(pl.len().alias("members"), pl.col("similarity").min())
    steps = sorted(sizes["step"].unique().to_list())
    c = st.columns([2, 1, 1])
    chosen = c[0].multiselect("Dedup step", steps, key="d.step")
    if chosen:
        sizes = sizes.filter(pl.col("step").is_in(chosen))
    order = c[1].selectbox("Order", ["largest groups", "lowest similarity"], key="d.order")
    sizes = sizes.sort(["members", "group"], descending=[True, False]) if order == "largest groups" else sizes.sort(
        ["similarity", "group"]
    )
    pages = max(1, -(-sizes.height // GROUPS_PER_PAGE))
    page = int(c[2].number_input(f"Page (of {pages:,})", 1, pages, 1, key="d.page"))
    st.caption(f"{sizes.height:,} groups, {groups.height:,} removed members")
    shown = sizes.slice((page - 1) * GROUPS_PER_PAGE, GROUPS_PER_PAGE)
    members = groups.join(shown.select("group"), on="group", how="semi")
    ids = list(dict.fromkeys(shown["survivor"].to_list() + members["member"].to_list()))
    rows = with_labels(pl.DataFrame({"id": pl.Series("id", ids, dtype=pl.Utf8)}).join(index, on="id", how="inner", maintain_order="left"),
                       ctx.labels())
    recs = {r["id"]: (r, rec) for r, rec in zip(rows.iter_rows(named=True), ctx.data.fetch(rows))}
    for g in shown.iter_rows(named=True):
        with st.container(border=True):
            st.markdown(f"**Group {md_code(g['group'])}** · step {md_code(g['step'])} · {g['members']} removed")
            left, right = st.columns(2)
            with left:
                st.markdown(f"Survivor {md_code(g['survivor'])}")
                if g["survivor"] in recs:
                    render_turns(recs[g["survivor"]][1]["turns"] or [], key=f"dup.s.{g['group']}")
                else:
                    st.caption("not in this run's records")
            with right:
                for m in members.filter(pl.col("group") == g["group"]).iter_rows(named=True):
                    mid = m["member"]
                    row = recs.get(mid, ({}, {}))[0]
                    st.markdown(
                        f"Removed {md_code(mid)} · similarity **{m['similarity']:.3f}** · by {md_code(m['step'])}"
                        f" · label: **{md_text(row.get('label') or '-')}**"
                    )
                    b = st.columns(2)
                    b[0].button("Restore (keep)", key=f"dup.keep.{g['group']}.{mid}", on_click=ctx.label,
                                args=([mid], "keep"), kwargs={"note": f"restored from duplicate group {g['group']}"})
                    b[1].button("Not a duplicate", key=f"dup.nd.{g['group']}.{mid}", on_click=ctx.label,
                                args=([mid], "not_duplicate"), kwargs={"note": f"not a duplicate of {g['survivor']}"})
                    if mid in recs:
                        render_turns(recs[mid][1]["turns"] or [], key=f"dup.m.{g['group']}.{mid}")
