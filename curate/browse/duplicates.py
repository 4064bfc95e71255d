"""Duplicates page: every dedup group, the survivor beside the members that were removed.

Counts and members come from each dedup step's groups file, whose ``removed`` column says which
members the step removed: the survivor is never listed as removed, and a member a person already
protected (label keep or not a duplicate) is listed apart, as kept. A person can restore a removed
member (label ``keep``) or mark it ``not_duplicate``; both take effect on the next run through the
``label.apply`` step.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from curate import layout as L
from curate.browse.context import Ctx, dedup_groups
from curate.browse.data import group_sizes, with_labels
from curate.browse.render import md_code, md_text, record_status, render_turns

GROUPS_PER_PAGE = 5


def render(ctx: Ctx) -> None:
    st.header("Duplicates")
    groups = dedup_groups(*ctx.key)
    if groups is None:
        st.info(L.GROUPS.missing_note())
        return
    if groups.is_empty():
        st.info("The dedup steps of this run found no duplicates.")
        return
    index = ctx.index()
    sizes = group_sizes(groups)
    steps = sorted(sizes["step"].unique().to_list())
    c = st.columns([2, 1, 1])
    chosen = c[0].multiselect("Dedup step", steps, key="d.step")
    if chosen:
        sizes = sizes.filter(pl.col("step").is_in(chosen))
    order = c[1].selectbox("Order", ["largest groups", "lowest similarity"], key="d.order")
    sizes = (sizes.sort(["removed", "group"], descending=[True, False]) if order == "largest groups"
             else sizes.sort(["similarity", "group"], nulls_last=True))
    pages = max(1, -(-sizes.height // GROUPS_PER_PAGE))
    page = int(c[2].number_input(f"Page (of {pages:,})", 1, pages, 1, key="d.page"))
    removed, kept = int(sizes["removed"].sum()), int(sizes["kept_by_label"].sum())
    note = f"{sizes.height:,} groups, {removed:,} removed members"
    if kept:
        note += f", {kept:,} members kept by a label"
    st.caption(note + (f" (steps: {', '.join(md_code(s) for s in chosen)})" if chosen else ""))
    shown = sizes.slice((page - 1) * GROUPS_PER_PAGE, GROUPS_PER_PAGE)
    members = groups.join(shown.select("group"), on="group", how="semi").filter(
        pl.col("member") != pl.col("survivor"))
    ids = list(dict.fromkeys(shown["survivor"].to_list() + members["member"].to_list()))
    rows = with_labels(pl.DataFrame({"id": pl.Series("id", ids, dtype=pl.Utf8)}).join(
        index, on="id", how="inner", maintain_order="left"), ctx.labels())
    recs = {r["id"]: (r, rec) for r, rec in zip(rows.iter_rows(named=True), ctx.data.fetch(rows))}
    for g in shown.iter_rows(named=True):
        gid = g["group"]
        with st.container(border=True):
            head = f"**Group {md_code(gid)}** · step {md_code(g['step'])} · {g['removed']:,} removed"
            if g["kept_by_label"]:
                head += f" · {g['kept_by_label']:,} kept by a label"
            st.markdown(head)
            left, right = st.columns(2)
            with left:
                srow = recs.get(g["survivor"], ({}, {}))[0]
                st.markdown(f"Survivor {md_code(g['survivor'])}" + (f" · {record_status(srow)}" if srow else ""))
                if g["survivor"] in recs:
                    render_turns(recs[g["survivor"]][1]["turns"] or [], key=f"dup.s.{gid}")
                else:
                    st.caption("not in this run's records")
            with right:
                for m in members.filter(pl.col("group") == gid).sort("removed", descending=True).iter_rows(named=True):
                    mid = m["member"]
                    row = recs.get(mid, ({}, {}))[0]
                    label = md_text(row.get("label") or "-")
                    if m["removed"]:
                        st.markdown(f"Removed {md_code(mid)} · similarity **{m['similarity']:.3f}** · by "
                                    f"{md_code(m['step'])} · label: **{label}**")
                        b = st.columns(2)
                        b[0].button("Restore (keep)", key=f"dup.keep.{gid}.{mid}", on_click=ctx.label,
                                    args=([mid], "keep"), kwargs={"note": f"restored from duplicate group {gid}"})
                        b[1].button("Not a duplicate", key=f"dup.nd.{gid}.{mid}", on_click=ctx.label,
                                    args=([mid], "not_duplicate"),
                                    kwargs={"note": f"not a duplicate of {g['survivor']}"})
                    else:
                        st.markdown(f"Kept {md_code(mid)} · similarity **{m['similarity']:.3f}** · not removed "
                                    f"by {md_code(m['step'])} because of a label · label now: **{label}**")
                        st.button("Clear label", key=f"dup.clear.{gid}.{mid}", on_click=ctx.label,
                                  args=([mid], "clear"))
                    if mid in recs:
                        render_turns(recs[mid][1]["turns"] or [], key=f"dup.m.{gid}.{mid}")
