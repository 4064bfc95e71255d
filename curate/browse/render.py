"""Safe display of record text: record text is data, never markup that runs or loads anything.

Streamlit's Markdown never gets ``unsafe_allow_html`` here, and nothing a dataset holds may make the
browser call out of the user's machine. Safety does not rest on tracking Markdown's structure right:

- :func:`safe_markdown` cuts a turn into prose and fenced code (CommonMark's rules, read liberally).
  Prose is escaped character by character (backslash escapes for ``\\ ` [ ] < $ : ~ &``), so no
  image, link, autolink, link reference, raw HTML, maths or Streamlit directive can start in it,
  whatever block it ends up in. Code is re-emitted inside a fence we choose (longer than any backtick
  run in it), so it can neither close early nor leak into prose. If our cut differs from a Markdown
  parser's, text only looks different (code shown as prose or the reverse); it never becomes markup.
- Inline code spans are re-emitted on one line with their own delimiter; a span holding ``|`` (a
  table could split it) is shown as escaped prose instead.
- :func:`md_text` and :func:`md_code` are the only way a record-derived field (id, subset, source,
  language, reason, label, topic, a path or a model name) reaches ``st.markdown``, ``st.caption``,
  headers, alerts or widget labels.

:func:`plain_markdown` (the default view) goes further: every ASCII punctuation character of prose is
escaped, line breaks are hard breaks and leading spaces are kept, so prose shows exactly as written
(``__init__`` stays ``__init__``, "Question:/Answer:" lines stay on their own lines); only fenced code is
shown as code. :func:`safe_markdown` (the "Render Markdown" toggle) lets emphasis, lists and headings render.

Links in record text are shown as written, not as links. One exception no escaping can stop:
Streamlit applies GFM's autolink literals to the parsed text, so a bare ``http(s)://...``, ``www.``
name or e-mail address is shown as a link whose text is its own target; it loads nothing unless
clicked (and opens with ``rel="noopener noreferrer"``). Huge turns are cut into parts of
:data:`PART_CHARS` characters so a 5 MB string never reaches the page in one piece.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PART_CHARS = 20_000  # one displayed part of a turn; Markdown of this size renders in well under a second
PREVIEW_CHARS = 160
# Streamlit's background-colour directive; the match inside is escaped like the rest of the prose.
HIGHLIGHT = ":orange-background[{}]"

# A fence may follow container markers (blockquote ">", list bullets "-", "1.") and any indentation:
# reading a fence where CommonMark sees none only shows that text as code.
_FENCE_OPEN = re.compile(r"^((?:[ \t]*(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])))*[ \t]*)(`{3,}|~{3,})(.*?)\r?\n?$")
_FENCE_CLOSE = re.compile(r"^[ \t>]*(`{3,}|~{3,})[ \t]*\r?\n?$")
_BACKTICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*\r?\n")
_PROSE_ESCAPE = re.compile(r"[\\`\[\]<$:~&]")
_PUNCT = re.compile(r"[!-/:-@\[-`{-~]")  # every ASCII punctuation character: CommonMark can escape each
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_LANG = re.compile(r"[^\w+#.-]")


@dataclass(frozen=True)
class Segment:
    """A run of prose, or one fenced code block (``lang`` from its info string)."""

    text: str
    code: bool = False
    lang: str = ""


def segments(text: str) -> list[Segment]:
    """Cut ``text`` into prose and fenced code. A backtick fence's info string holds no backtick; a
    fence closes with the same character, at least as long, nothing after it; an unclosed fence runs
    to the end."""
    out: list[Segment] = []
    prose: list[str] = []
    code: list[str] = []
    fence = ""
    prefix = 0
    lang = ""
    for line in text.splitlines(keepends=True):
        if not fence:
            m = _FENCE_OPEN.match(line)
            if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
                if prose:
                    out.append(Segment("".join(prose)))
                    prose = []
                fence, prefix = m.group(2), len(m.group(1))
                lang = m.group(3).strip().split(" ")[0] if m.group(3).strip() else ""
            else:
                prose.append(line)
            continue
        m = _FENCE_CLOSE.match(line)
        if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
            out.append(Segment("".join(code), code=True, lang=lang))
            code, fence = [], ""
            continue
        # strip the container's indentation (or "> ") that the opening fence sat behind
        cut = 0
        while cut < prefix and cut < len(line) and line[cut] in " \t>":
            cut += 1
        code.append(line[cut:])
    if fence:
        out.append(Segment("".join(code), code=True, lang=lang))
    elif prose:
        out.append(Segment("".join(prose)))
    return out


def _longest_backticks(text: str) -> int:
    return max((len(m.group(0)) for m in _BACKTICKS.finditer(text)), default=0)


def _escape_prose(text: str) -> str:
    return _PROSE_ESCAPE.sub(lambda m: "\\" + m.group(0), text)


def _code_span(content: str) -> str | None:
    """``content`` as one inline code span, or None when a span is not safe to emit (see module doc)."""
    content = _LINE_BREAKS.sub(" ", content)
    if "|" in content or not content:
        return None
    ticks = "`" * (_longest_backticks(content) + 1)
    pad = " " if content[0] == "`" or content[-1] == "`" else ""
    return f"{ticks}{pad}{content}{pad}{ticks}"


def _prose(text: str) -> str:
    """Escape one run of prose; code spans (matched as CommonMark does, within a paragraph) are re-emitted."""
    runs = list(_BACKTICKS.finditer(text))
    starts_by_len: dict[int, list[int]] = {}
    for k, r in enumerate(runs):
        starts_by_len.setdefault(len(r.group(0)), []).append(k)
    blanks = [m.start() for m in _BLANK_LINE.finditer(text)]
    out: list[str] = []
    pos = 0
    k = 0
    while k < len(runs):
        r = runs[k]
        n = len(r.group(0))
        same = starts_by_len[n]
        j = bisect.bisect_right(same, k)
        b = bisect.bisect_left(blanks, r.end())
        limit = blanks[b] if b < len(blanks) else len(text)
        if j < len(same) and runs[same[j]].start() < limit:
            closer = runs[same[j]]
            span = _code_span(text[r.end() : closer.start()])
            line_start = text.rfind("\n", 0, r.start()) + 1
            if span is not None and not (span.startswith("```") and not text[line_start : r.start()].strip()):
                out.append(_escape_prose(text[pos : r.start()]))
                out.append(span)
                pos = closer.end()
            k = same[j] + 1
        else:
            k += 1
    out.append(_escape_prose(text[pos:]))
    return "".join(out)


def _fenced(code: str, lang: str) -> str:
    ticks = "`" * max(3, _longest_backticks(code) + 1)
    lang = _LANG.sub("", lang)[:30]
    if code and not code.endswith("\n"):
        code += "\n"
    return f"{ticks}{lang}\n{code}{ticks}\n"


def safe_markdown(text: str) -> str:
    """Markdown that shows ``text`` as written: code stays code, nothing in it runs or loads."""
    out: list[str] = []
    for seg in segments(text):
        if seg.code:
            # a blank line first: it ends any paragraph, table, quote or list item the prose left open
            sep = "" if not out or out[-1].endswith("\n\n") else ("\n" if out[-1].endswith("\n") else "\n\n")
            out.append(sep + _fenced(seg.text, seg.lang))
        else:
            out.append(_prose(seg.text))
    return "".join(out)


def _plain_line(line: str, highlight: re.Pattern[str] | None) -> str:
    """One line of prose, every punctuation character escaped; leading whitespace kept (as no-break
    spaces, which no Markdown rule reads as indentation); ``highlight`` matches marked."""
    body = line.lstrip(" \t")
    lead = line[: len(line) - len(body)].replace("\t", "    ").replace(" ", "\u00a0")
    if highlight is None or not body:
        return lead + _PUNCT.sub(lambda m: "\\" + m.group(0), body)
    out, pos = [lead], 0
    for m in highlight.finditer(body):
        if m.end() == m.start():
            continue
        out.append(_PUNCT.sub(lambda c: "\\" + c.group(0), body[pos : m.start()]))
        out.append(HIGHLIGHT.format(_PUNCT.sub(lambda c: "\\" + c.group(0), m.group(0))))
        pos = m.end()
    out.append(_PUNCT.sub(lambda c: "\\" + c.group(0), body[pos:]))
    return "".join(out)


def _plain_prose(text: str, highlight: re.Pattern[str] | None) -> str:
    """Prose as written: a line break is a hard break (a trailing backslash), a blank line a paragraph."""
    paragraphs: list[list[str]] = [[]]
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw.strip(" \t"):
            paragraphs[-1].append(_plain_line(raw.rstrip(" \t"), highlight))
        elif paragraphs[-1]:
            paragraphs.append([])
    return "\n\n".join("\\\n".join(p) for p in paragraphs if p)


def plain_markdown(text: str, highlight: re.Pattern[str] | None = None) -> str:
    """Markdown that shows ``text`` exactly as written: prose is plain text, fenced code is a code block.

    ``highlight`` (a compiled pattern) marks its matches in the prose with a background colour; code
    blocks are shown unmarked.
    """
    out: list[str] = []
    for seg in segments(text):
        if seg.code:
            out.append(_fenced(seg.text, seg.lang))
        else:
            prose = _plain_prose(seg.text, highlight)
            if prose:
                out.append(prose + "\n")
    return "\n".join(out)


def md_text(value: object) -> str:
    """A record-derived field as inline Markdown that shows exactly its text (on one line)."""
    if value is None:
        return ""
    return _PUNCT.sub(lambda m: "\\" + m.group(0), _LINE_BREAKS.sub(" ", str(value)))


def md_code(value: object) -> str:
    """A field (an id, a step name, a path) as an inline code span; escaped text when a span is unsafe."""
    text = "" if value is None else _LINE_BREAKS.sub(" ", str(value))
    span = _code_span(text)
    return md_text(text) if span is None or span.startswith("```") else span


def record_header(row: dict[str, Any]) -> str:
    """One Markdown line about a record: id, source / subset, size, language, cluster, status, label.
    Every field comes from the data, so each goes through ``md_code``/``md_text``."""
    head = f"{md_code(row['id'])} · **{md_text(row['source'])}**"
    if row.get("subset"):
        head += f" / {md_text(row['subset'])}"
    if row.get("chars") is not None:
        head += f" · {row['chars']:,} chars"
    if row.get("lang"):
        head += f" · {md_text(row['lang'])}"
    if row.get("cluster") is not None:
        head += f" · cluster {md_text(row['cluster'])}"
    return head + f" · {record_status(row)} · label: **{md_text(row.get('label') or '-')}**"


def record_status(row: dict[str, Any]) -> str:
    """``kept``, or ``removed by <step>: <reason> (of <id>)``, as Markdown."""
    if row["status"] == "kept":
        return "kept"
    status = f"removed by {md_text(row['step'])}: {md_text(row['reason'])}"
    if row.get("duplicate_of"):
        status += f" (of {md_code(row['duplicate_of'])})"
    return status


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


MARKDOWN_KEY = "curate.markdown"  # session state: the sidebar's "Render Markdown" toggle


def highlighter(pattern: str, regex: bool) -> re.Pattern[str] | None:
    """A Python pattern that marks what the Browse text filter matched, or None when there is none.

    Polars matches with Rust's regex syntax; a pattern Python's ``re`` reads differently or not at all
    is simply not marked (the filter result itself comes from Polars)."""
    if not pattern:
        return None
    try:
        return re.compile(pattern if regex else re.escape(pattern))
    except re.error:
        return None


def render_turns(turns: Sequence[Mapping[str, Any]], key: str, highlight: re.Pattern[str] | None = None) -> None:
    """Show a conversation as chat turns; each huge turn gets a part selector instead of its full text.

    Text is shown as written (:func:`plain_markdown`) unless the sidebar's "Render Markdown" is on.
    """
    import streamlit as st

    as_markdown = bool(st.session_state.get(MARKDOWN_KEY, False))
    avatars = {"user": "user", "assistant": "assistant"}
    for i, turn in enumerate(turns):
        role = str(turn.get("role") or "?")
        content = str(turn.get("content") or "")
        with st.chat_message(avatars.get(role, "ai" if role == "tool" else "user")):
            st.caption(md_text(role))
            parts = n_parts(content)
            if parts > 1:
                part = st.number_input(
                    f"part (of {parts}, {len(content):,} chars)",
                    min_value=1,
                    max_value=parts,
                    value=1,
                    key=f"{key}.part{i}",
                )
                content = part_of(content, int(part) - 1)
            if as_markdown:
                st.markdown(safe_markdown(content))
            else:
                st.markdown(plain_markdown(content, highlight))
