"""The Streamlit app: sidebar navigation over the pages; each page lives in its own module.

Started by ``curate browse RUN_DIR`` or ``streamlit run app.py -- RUN_DIR [--labels PATH]``.
The page is also in the URL (``?page=map``) so a link opens it directly.
"""

from __future__ import annotations

import getpass
import importlib
import sys
from pathlib import Path

import streamlit as st

from curate.labels import default_labels_path

PAGES: dict[str, str] = {
    "Overview": "overview",
    "Map": "map",
    "Browse": "browse",
    "Duplicates": "duplicates",
    "Search": "search",
    "Label": "label",
}


def parse_argv(argv: list[str]) -> tuple[str | None, str | None]:
    """``RUN_DIR [--labels PATH]``; tolerant (never exits), since Streamlit owns the process."""
    run_dir: str | None = None
    labels: str | None = None
    it = iter(argv)
    for a in it:
        if a == "--labels":
            labels = next(it, None)
        elif a.startswith("--labels="):
            labels = a.split("=", 1)[1]
        elif not a.startswith("-") and run_dir is None:
            run_dir = a
    return run_dir, labels


def _annotator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "annotator"


def main(argv: list[str]) -> None:
    st.set_page_config(page_title="curate browse", layout="wide")
    from curate.browse.context import make_ctx
    from curate.browse.render import MARKDOWN_KEY, md_code, md_text
    from curate.rundir import RunDirError

    arg_run, arg_labels = parse_argv(argv)
    run_dir = st.session_state.get("curate.run_dir") or arg_run
    if not run_dir:
        st.error("No run directory given. Start with `curate browse RUN_DIR`.")
        return
    try:
        labels_path = st.session_state.get("curate.labels_path") or arg_labels or default_labels_path(
            Path(run_dir)
        )
        ctx = make_ctx(run_dir, labels_path, "")
    except RunDirError as e:
        st.error(md_text(e))
        return

    slugs = {v: k for k, v in PAGES.items()}
    if "curate.page" not in st.session_state:
        st.session_state["curate.page"] = slugs.get(str(st.query_params.get("page", "")), "Overview")
    with st.sidebar:
        st.markdown("**curate browse**")
        st.caption(md_text(ctx.data.path))
        page = st.radio("Page", list(PAGES), key="curate.page")
        if "curate.annotator" not in st.session_state:
            # a new page load starts a new session: the name lives in the URL, so a reload or a shared
            # link keeps it (the login name is only the first default)
            st.session_state["curate.annotator"] = str(st.query_params.get("annotator", "")) or _annotator()
        ctx.annotator = st.text_input("Annotator", key="curate.annotator")
        st.query_params["annotator"] = ctx.annotator
        st.toggle("Render Markdown", key=MARKDOWN_KEY,
                  help="Off: record text is shown as written (plain text, fenced code as code). On: emphasis, "
                       "lists and headings render; links and images still stay text.")
        st.caption(f"Labels: {md_code(ctx.store.path)}")
    st.query_params["page"] = PAGES[page]
    mod = importlib.import_module(f"curate.browse.{PAGES[page]}")
    mod.render(ctx)


if __name__ == "__main__":
    main(sys.argv[1:])
