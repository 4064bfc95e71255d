"""Record text is shown, never run or fetched: HTML, links, images, maths and directives stay inert.

Each output is checked with a real CommonMark parser (markdown-it, see ``markdown_hazards``), not by
looking for substrings, so a disagreement between our fence tracking and the parser's shows up.
"""

from __future__ import annotations

import html
import re
import textwrap
import time

import pytest

from curate.browse.render import (
    HIGHLIGHT,
    PART_CHARS,
    highlighter,
    hover_text,
    md_code,
    md_text,
    n_parts,
    part_of,
    plain_markdown,
    safe_markdown,
)

from .conftest import EVIL, NETWORK, NETWORK_FIELDS, NETWORK_ID, markdown_hazards

pytest.importorskip("markdown_it")


def _parse(md: str) -> list:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(textwrap.dedent(md).strip())


def _visible(md: str) -> str:
    """The text a reader sees, whitespace collapsed."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(textwrap.dedent(md).strip())
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", out)).split())


def _code(md: str) -> list[tuple[str, str]]:
    """(info, content) of every code block, ("inline", content) of every code span."""
    out: list[tuple[str, str]] = []
    for t in _parse(md):
        if t.type == "fence":
            out.append((t.info, t.content))
        for c in t.children or []:
            if c.type == "code_inline":
                out.append(("inline", c.content))
    return out


@pytest.mark.parametrize("name", list(NETWORK))
def test_network_payloads_load_nothing(name: str):
    out = safe_markdown(NETWORK[name])
    assert markdown_hazards(out) == [], out


def test_fence_with_a_backtick_in_its_info_string_is_not_a_fence():
    out = safe_markdown(f"```a`b\n![x]({EVIL}/x.png)\n")
    assert markdown_hazards(out) == []
    assert f"![x]({EVIL}/x.png)" in _visible(out)  # shown as written


def test_fence_inside_a_list_item_ends_with_the_item():
    out = safe_markdown(f"1. step\n\n   ```\n   code\n\n![x]({EVIL}/x.png)\n")
    assert markdown_hazards(out) == []
    assert ("", "code\n") in _code(out) or any("code" in c for _, c in _code(out))


def test_inline_code_never_spans_paragraphs_or_table_cells():
    assert markdown_hazards(safe_markdown(f"`a\n\n![x]({EVIL}/x.png)\n\n`")) == []
    table = f"| a | b |\n|---|---|\n| `x|![t]({EVIL}/t.png)` | y |\n"
    assert markdown_hazards(safe_markdown(table)) == []


def test_raw_html_and_autolinks_show_as_text():
    text = f"<script>alert(1)</script><img src={EVIL}/i.png onerror=alert(1)> <{EVIL}/a> <javascript:alert(1)>"
    out = safe_markdown(text)
    assert markdown_hazards(out) == []
    assert _visible(out) == text
    # a bare URL stays a bare URL: Streamlit's GFM autolink literal may make it a link showing its own
    # target (it applies after escapes are resolved, so no escape can stop it); it never becomes an image
    lit = safe_markdown(f"see {EVIL}/p.png or www.evil.invalid or a@evil.invalid")
    assert markdown_hazards(lit) == [] and _visible(lit) == f"see {EVIL}/p.png or www.evil.invalid or a@evil.invalid"


def test_reference_style_images_and_links_show_as_text():
    for text in (f"![a][r]\n\n[r]: {EVIL}/r.png", f"- [r]: {EVIL}/r.png\n\n![a][r] [b][r]", f"![a]\n\n   [a]: {EVIL}/r.png"):
        out = safe_markdown(text)
        assert markdown_hazards(out) == [], (text, out)
        assert "[r]" in _visible(out) or "[a]" in _visible(out)


def test_links_of_any_scheme_show_as_written():
    for text in ("[ok](https://example.org)", "[x](javascript:alert(1))", "[m](mailto:a@b.c)", "[r]: javascript:alert(1)",
                 "[x](&#106;avascript:x)"):
        out = safe_markdown(text)
        assert markdown_hazards(out) == [], out
        assert _visible(out) == text


def test_maths_and_directives_do_not_fire():
    assert safe_markdown("costs $5 or $10") == "costs \\$5 or \\$10"
    assert safe_markdown(":red[alarm] :material/home:") == "\\:red\\[alarm\\] \\:material/home\\:"


def test_code_stays_code():
    text = "see `<b>` here\n```html\n<script>x()</script>\n[a](javascript:y)\n```\nafter <i> **bold**"
    out = safe_markdown(text)
    assert markdown_hazards(out) == []
    assert _code(out) == [("inline", "<b>"), ("html", "<script>x()</script>\n[a](javascript:y)\n")]
    assert "after <i> bold" in _visible(out)
    nested = safe_markdown(f"~~~~md\n```\n![x]({EVIL}/x.png)\n```\n~~~~\n")
    assert _code(nested) == [("md", f"```\n![x]({EVIL}/x.png)\n```\n")]
    spans = safe_markdown("a ``x`y`` b `` ` `` c")
    assert [c for _, c in _code(spans)] == ["x`y", "`"]


def test_unclosed_fence_keeps_the_rest_as_code():
    out = safe_markdown("text\n```py\n<script>\n![x](http://e/x.png)")
    assert markdown_hazards(out) == []
    assert _code(out) == [("py", "<script>\n![x](http://e/x.png)\n")]


def test_field_helpers_escape_every_construct():
    values = [v for _, v in NETWORK_FIELDS.values()] + [
        NETWORK_ID, "a\n[r]: http://e/x.png\n![a][r]", "<http://e>", "`x` **y** :red[z] $1", "x|y", "``", "` a `"]
    for value in values:
        for md in (md_text(value), md_code(value), f"`{md_code(value)}`", f"**{md_text(value)}**"):
            assert markdown_hazards(md) == [], (value, md)
        assert _visible(md_text(value)) == " ".join(value.split())
        assert _visible(md_code(value)) == " ".join(value.split())
    assert md_code("r0030") == "`r0030`"
    assert md_text(None) == ""


def test_huge_text_is_cut_into_parts_quickly():
    text = "x" * 5_000_000
    t0 = time.perf_counter()
    assert n_parts(text) == 5_000_000 // PART_CHARS
    chunk = part_of(text, 3)
    md = safe_markdown(chunk)
    assert len(chunk) == PART_CHARS and len(md) == PART_CHARS
    assert part_of(text, 10**6) == text[-PART_CHARS:]  # clamped, not an error
    busy = safe_markdown(("`a` [b] <c> $d ```e\n" * 2000)[:PART_CHARS])
    assert markdown_hazards(busy) == []
    assert time.perf_counter() - t0 < 5.0  # a guard against quadratic work, generous for a loaded machine


def test_hover_text_is_escaped_and_short():
    assert hover_text("<b>hi</b>\nthere") == "&lt;b&gt;hi&lt;/b&gt; there"
    assert len(hover_text("y" * 1000)) == 160
    assert hover_text(None) == ""


# -- the default view: text as written ---------------------------------------------------------------


def _lines(md: str) -> list[str]:
    """The text a reader sees, line by line (a hard break or a paragraph ends a line; no-break spaces kept)."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(textwrap.dedent(md).strip())
    out = re.sub(r"<br\s*/?>\n?", "\n", out)
    out = re.sub(r"</p>\s*<p>", "\n\n", out)
    return html.unescape(re.sub(r"<[^>]+>", "", out)).strip("\n").split("\n")


@pytest.mark.parametrize("name", list(NETWORK))
def test_plain_view_loads_nothing_either(name: str):
    out = plain_markdown(NETWORK[name])
    assert markdown_hazards(out) == [], out


def test_plain_view_shows_prose_as_written():
    text = ("Question: what does __init__ do?\nAnswer: it *sets* up self.__dict__ = {}\n"
            "    indented line\n# not a heading\n1. not a list\n> not a quote\n| not | a table |")
    out = plain_markdown(text)
    assert markdown_hazards(out) == []
    assert _lines(out) == [ln.replace("    ", "\u00a0" * 4) for ln in text.split("\n")]
    tokens = [t.type for t in _parse(out) for t in [t, *(t.children or [])]]
    assert not {"strong_open", "em_open", "heading_open", "ordered_list_open", "blockquote_open", "table_open",
                "code_block"} & set(tokens)


def test_plain_view_keeps_fenced_code_as_code():
    text = "Use it like this:\n```python\nclass A:\n    def __init__(self):\n        pass\n```\nThen call A()."
    out = plain_markdown(text)
    assert _code(out) == [("python", "class A:\n    def __init__(self):\n        pass\n")]
    assert "Use it like this:" in _visible(out) and "Then call A()." in _visible(out)
    # the Markdown toggle renders emphasis (still safe): the same text through safe_markdown
    assert "<strong>" in __import__("markdown_it").MarkdownIt().render(safe_markdown("__init__"))


def test_search_matches_are_highlighted_in_prose_only():
    text = "find the needle, a needle again\n```\nneedle in code\n```"
    out = plain_markdown(text, highlighter("needle", regex=False))
    assert out.count(HIGHLIGHT.format("needle")) == 2 and "needle in code" in out
    marked = plain_markdown("a[b]c", highlighter("[b]", regex=False))
    assert HIGHLIGHT.format("\\[b\\]") in marked and markdown_hazards(marked) == []
    assert highlighter("print(", regex=True) is None and highlighter("", regex=False) is None
