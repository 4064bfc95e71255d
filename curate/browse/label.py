"""Label page: keep or drop, tags and a note, in bulk for a set of records or one record at a time.

The set is the Browse page's filter result, the Map selection, the last Search result or a
cluster. One-at-a-time labelling has keyboard shortcuts: ``k`` keep, ``d`` drop, ``n``/right arrow
next, ``p``/left arrow previous. Streamlit has no hotkeys, so a tiny script in a one-pixel
iframe (same origin) clicks the page's own buttons by their text; it ignores keys typed into text fields.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from curate import layout as L
from curate.browse.context import (
    SEARCH_HITS,
    SELECTION,
    Ctx,
    bulk_label_button,
    cluster_names,
    parse_tags,
    text_hits,
)
from curate.browse.data import apply_filters, with_labels
from curate.browse.render import md_code, md_text, record_status, render_turns
from curate.labels import LABELS

BUTTONS = {"prev": "Previous (p)", "next": "Next (n)", "keep": "Keep (k)", "drop": "Drop (d)"}
HOTKEYS_JS = """
<script>
const doc = window.parent.document;
if (!doc.__curateHotkeys) {{
  doc.__curateHotkeys = true;
  const labels = {{k: "{keep}", d: "{drop}", n: "{next}", p: "{prev}",
                  ArrowRight: "{next}", ArrowLeft: "{prev}"}};
  doc.addEventListener("keydown", (e) => {{
    const t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    const want = labels[e.key];
    if (!want) return;
    const btn = Array.from(doc.querySelectorAll("button")).find((b) => b.innerText.trim() === want);
    if (btn) {{ e.preventDefault(); btn.click(); }}
  }});
}}
</script>
""".format(**BUTTONS)


def target_ids(ctx: Ctx, target: str, cluster: int | None) -> list[str]:
    index = ctx.index()
    if target == "Browse filter result":
        f = ctx.filters()
        hits = text_hits(*ctx.key, f.text, f.regex) if f.text else None
        return apply_filters(index, f, ctx.labels(), hits)["id"].to_list()
    if target == "Map selection":
        return list(st.session_state.get(SELECTION, []))
    if target == "Search results":
        return list(st.session_state.get(SEARCH_HITS, []))
    if cluster is None:
        return []
    return index.filter((pl.col("cluster") == cluster) & (pl.col("status") == "kept"))["id"].to_list()


def render(ctx: Ctx) -> None:
    st.header("Label")
    index = ctx.index()
    c = st.columns([2, 1])
    target = c[0].radio(
        "Records", ["Browse filter result", "Map selection", "Search results", "Cluster"], horizontal=True,
        key="l.target",
    )
    cluster = None
    if target == "Cluster":
        names = cluster_names(*ctx.key)
        if not names:
            st.info(f"This run has no clusters (no `{L.MAP.name}`).")
            return
        cluster = c[1].selectbox("Cluster (topic)", list(names), key="l.cluster", format_func=names.__getitem__)
    ids = target_ids(ctx, target, cluster)
    c = st.columns([1, 2, 3])
    tags = parse_tags(c[0].text_input("Tags (comma separated)", key="l.tags"))
    note = c[1].text_input("Note", key="l.note")
    c[2].markdown(f"**{len(ids):,}** records in this set")
    if not ids:
        st.info("The set is empty: filter on the Browse page, select on the Map, or search first.")
        return

    with st.expander(f"Label all {len(ids):,} at once"):
        b = st.columns([1, 1])
        bulk = b[0].selectbox("Label", LABELS, key="l.bulk_label")
        bulk_label_button(ctx, f"Apply '{bulk}' to {len(ids):,} records", ids, bulk, "l.bulk_apply", tags=tags,
                          note=note, where=b[1])

    pos = min(int(st.session_state.get("l.pos", 0)), len(ids) - 1)

    def step(label: str | None, delta: int) -> None:
        # A callback: it runs before the rerun, so the next render shows the next record.
        if label is not None:
            ctx.label([ids[pos]], label, tags, note)
        st.session_state["l.pos"] = min(max(pos + delta, 0), len(ids) - 1)

    nav = st.columns(5)
    nav[0].button(BUTTONS["prev"], key="l.prev", on_click=step, args=(None, -1))
    nav[1].button(BUTTONS["next"], key="l.next", on_click=step, args=(None, 1))
    nav[2].button(BUTTONS["keep"], key="l.keep", type="primary", on_click=step, args=("keep", 1))
    nav[3].button(BUTTONS["drop"], key="l.drop", on_click=step, args=("drop", 1))
    nav[4].markdown(f"record **{pos + 1:,}** of {len(ids):,}")
    st.iframe(HOTKEYS_JS, height=1)  # our constant script, never record text

    rid = ids[pos]
    rows = with_labels(index.filter(pl.col("id") == rid), ctx.labels())
    if rows.height == 0:
        st.warning(f"{md_code(rid)} is not a record of this run.")
        return
    row = rows.row(0, named=True)
    st.markdown(f"{md_code(rid)} · **{md_text(row['source'])}** · {record_status(row)}"
                f" · label: **{md_text(row['label'] or '-')}**")
    hist = ctx.store.history([rid])
    if hist.height:
        st.dataframe(hist.select("ts", "label", "tags", "note", "annotator"), hide_index=True)
    render_turns(ctx.data.fetch(rows)[0]["turns"] or [], key=f"label.{rid}")
