"""Safe display of record text: record text is data, never markup that runs.

Streamlit's Markdown never gets ``unsafe_allow_html`` here. On top of that, prose is rewritten so
that raw HTML shows as text, only http(s)/mailto links stay links (``javascript:``/``data:`` and
relative targets become plain text), remote images are not fetched, and Streamlit's own Markdown
extensions (``$...$`` maths, ``:red[...]`` colour directives) do not fire on record text. Fenced and
inline code are left as written: they are shown literally and highlighted. Huge turns are cut into
parts of :data:`PART_CHARS` characters so a 5 MB string never reaches the page in one piece.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

PART_CHARS = 20_000  # one displayed part of a turn; Markdown of this size renders in well under a second
PREVIEW_CHARS = 160

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?:.|\n)*?(?<!`)\1(?!`)")
_LINK = re.compile(r"\]\(\s*(<?)([^)\s]*)")
_REF_DEF = re.compile(r"^( {0,3})\[(?=[^\]]+\]:)", re.MULTILINE)
_DIRECTIVE = re.compile(r":(?=[A-Za-z_/-]+(?:\[|:))")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _safe_url(url: str) -> bool:
    return url.lower().startswith(_SAFE_SCHEMES)


def _prose(text: str) -> str:
    """Neutralise one run of prose (no code inside)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("$", "\\$")
    text = text.replace("![", "!\\[")
    text = _REF_DEF.sub(r"\1\\[", text)
    text = _DIRECTIVE.sub("\\:", text)

    def link(m: re.Match[str]) -> str:
        # An unsafe target loses its link syntax: "](" becomes "]\(" and shows as text.
        return m.group(0) if not m.group(1) and _safe_url(m.group(2)) else "]\\(" + m.group(0)[2:]

    return _LINK.sub(link, text)


def _prose_with_inline_code(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _INLINE_CODE.finditer(text):
        out.append(_prose(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_prose(text[pos:]))
    return "".join(out)


def safe_markdown(text: str) -> str:
    """Markdown that shows ``text`` as written: code stays code, nothing in it runs or loads."""
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence is None:
            if m:
                out.append(_prose_with_inline_code("".join(prose)))
                prose = []
                fence = m.group(1)
                out.append(line)
            else:
                prose.append(line)
        else:
            out.append(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):]:
                fence = None
    out.append(_prose_with_inline_code("".join(prose)))
    return "".join(out)


def n_parts(text: str, part_chars: int = PART_CHARS) -> int:
    return max(1, -(-len(text) // part_chars))


def part_of(text: str, part: int, part_chars: int = PART_CHARS) -> str:
    """Part ``part`` (0-based) of ``text``; out-of-range parts are clamped."""
    part = min(max(part, 0), n_parts(text, part_chars) - 1)
    return text[part * part_chars : (part + 1) * part_chars]


def hover_text(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    """Plotly hover labels accept a little HTML: escape it, and keep the label short."""
    text = (text or "")[:limit].replace("\n", " ")
    return html.escape(text, quote=False)


def render_turns(turns: Sequence[Mapping[str, Any]], key: str) -> None:
    """Show a conversation as chat turns; each huge turn gets a part selector instead of its full text."""
    import streamlit as st

    avatars = {"user": "user", "assistant": "assistant"}
    for i, turn in enumerate(turns):
        role = str(turn.get("role") or "?")
        content = str(turn.get("content") or "")
        with st.chat_message(avatars.get(role, "ai" if role == "tool" else "user")):
            st.caption(role)
            parts = n_parts(content)
            if parts > 1:
                part = st.number_input(
                    f"part (of {parts}, {len(content):,} chars)",
                    min_value=1,
                    max_value=parts,
                    value=1,
                    key=f"{key}.part{i}",
                )
                st.markdown(safe_markdown(part_of(content, int(part) - 1)))
            else:
                st.markdown(safe_markdown(content))
