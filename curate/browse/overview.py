"""Overview page: the funnel, per-source counts and diversity, the top removal reasons."""

from __future__ import annotations

import streamlit as st

from curate.browse.context import Ctx, overview_tables
from curate.browse.data import flagged_table, funnel, top_reasons
from curate.browse.render import md_text


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
        st.info("report.json has no steps yet (the run is still going, or it was not written by `curate run`).")

    st.subheader("Sources")
    st.dataframe(tables["sources"], hide_index=True)

    flagged = flagged_table(report)
    if flagged.height:
        st.subheader("Flagged for review")
        st.caption("Kept, not removed: read them in Browse (filter \"Flag\") before turning a flag into a "
                   "removal (the filter's `mode: remove` or `remove_flags`).")
        st.dataframe(flagged, hide_index=True)

    st.subheader("Top removal reasons")
    reasons = top_reasons(report)
    if reasons.height == 0:  # no report.json steps: count the ledger instead
        reasons = tables["ledger_reasons"]
    if reasons.height:
        st.dataframe(reasons, hide_index=True)
    else:
        st.caption("Nothing was removed.")
