"""Overview page: the funnel, per-source counts and diversity figures, flagged records, removal reasons."""

from __future__ import annotations

import json

import streamlit as st

from curate.browse.context import FILTERS, Ctx, overview_tables
from curate.browse.data import Filters, diversity_display, flagged_table, funnel, top_reasons
from curate.browse.render import md_code, md_text


def open_flag_in_browse(flag: str) -> None:
    """Open the Browse page filtered on one flag (a callback: it runs before the page radio is drawn)."""
    st.session_state["b.flag"] = [flag]
    st.session_state[FILTERS] = Filters(flags=[flag])
    st.session_state["curate.page"] = "Browse"


def render(ctx: Ctx) -> None:
    report = ctx.data.report()
    tables = overview_tables(*ctx.key)
    st.header(f"Overview: {md_text(report.get('name') or ctx.data.path.name)}")
    seen, kept = tables["seen"], tables["kept"]
    cols = st.columns(4)
    cols[0].metric("records seen", f"{seen:,}")
    cols[1].metric("kept", f"{kept:,}")
    cols[2].metric("removed", f"{seen - kept:,}")
    cols[3].metric("labelled", f"{ctx.store.count():,}")

    st.subheader("Funnel")
    f = funnel(report)
    if f.height:
        import altair as alt

        chart = (
            alt.Chart(f.select("step", "n_out").to_pandas())
            .mark_bar()
            .encode(x=alt.X("n_out:Q", title="records after step"), y=alt.Y("step:N", sort=None, title=None))
        )
        st.altair_chart(chart, width="stretch")
        st.dataframe(f, hide_index=True)
    else:
        st.info("The run's report has no steps yet (the run is still going, or it was not written by `curate run`).")

    st.subheader("Sources")
    st.dataframe(tables["sources"], hide_index=True, key="o.sources")
    removals = tables["source_removals"]
    if removals.height:
        with st.expander("Removed per source, step and reason"):
            st.dataframe(removals, hide_index=True)

    diversity = tables["diversity"]
    if diversity.height:
        st.subheader("Diversity per source")
        decisions = tables["decisions"]
        if decisions and decisions.get("rule"):
            rule = ", ".join(f"{k} {v}" for k, v in decisions["rule"].items())
            st.caption(
                f"Measured by `score.diversity` on the records that reached it. `filter.source` drops a "
                f"{md_text(decisions.get('scope', 'source'))} when {md_text(decisions.get('match', 'all'))} "
                f"of these hold: {md_code(rule)}. Below the table: what it decided for each, with the figures it used."
            )
        else:
            st.caption("Measured by `score.diversity` on the records that reached it (seeded, fixed-size samples).")
        st.table(diversity_display(diversity))
        if "decision" in diversity.columns:
            for group, decision in diversity.select("group", "decision").drop_nulls().iter_rows():
                st.markdown(f"- **{md_text(group)}**: {md_text(decision)}")
        subsets = tables["diversity_subsets"]
        if subsets.height:
            with st.expander(f"Diversity per subset ({subsets.height:,} largest)"):
                st.dataframe(subsets, hide_index=True, key="o.subsets")
        samples = (report.get("diversity") or {}).get("samples")
        if isinstance(samples, dict):
            st.caption(f"Sample sizes: {md_code(json.dumps(samples))}")

    flagged = flagged_table(report)
    if flagged.height:
        st.subheader("Flagged for review")
        st.caption("Kept, not removed: read them in Browse before turning a flag into a removal (the "
                   "filter's `mode: remove` or `remove_flags`).")
        st.dataframe(flagged, hide_index=True)
        for row in flagged.iter_rows(named=True):
            flag = f"{row['step']}: {row['flag']}"
            st.button(f"Browse {row['records']:,} flagged {md_text(row['flag'])}", key=f"o.flag.{flag}",
                      on_click=open_flag_in_browse, args=(flag,))

    st.subheader("Top removal reasons")
    reasons = top_reasons(report)
    if reasons.height == 0:  # a report without steps: count the ledger instead
        reasons = tables["ledger_reasons"]
    if reasons.height:
        st.dataframe(reasons, hide_index=True)
    else:
        st.caption("Nothing was removed.")
