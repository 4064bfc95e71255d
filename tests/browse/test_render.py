"""Record text is shown, never run: HTML, javascript: links, maths and directives stay inert."""

from __future__ import annotations

import time

from curate.browse.render import PART_CHARS, hover_text, n_parts, part_of, safe_markdown


def test_raw_html_is_escaped_as_text():
    out = safe_markdown("<script>alert(1)</script><img src=x onerror=alert(1)>")
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_only_http_and_mailto_links_stay_links():
    assert safe_markdown("[ok](https://example.org)") == "[ok](https://example.org)"
    assert safe_markdown("[m](mailto:a@b.c)") == "[m](mailto:a@b.c)"
    for target in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "&#106;avascript:x", "/local"):
        out = safe_markdown(f"[x]({target})")
        assert "](" not in out, (target, out)
    assert safe_markdown("[r]: javascript:alert(1)").startswith("\\[")
    assert safe_markdown("<javascript:alert(1)>") == "&lt;javascript:alert(1)&gt;"


def test_remote_images_maths_and_directives_do_not_fire():
    assert "![" not in safe_markdown("![t](http://tracker.example/p.png)")
    assert safe_markdown("costs $5 or $10") == "costs \\$5 or \\$10"
    assert safe_markdown(":red[alarm] :material/home:") == "\\:red[alarm] \\:material/home:"


def test_code_is_left_verbatim():
    text = "see `<b>` here\n```html\n<script>x()</script>\n[a](javascript:y)\n```\nafter <i>"
    out = safe_markdown(text)
    assert "`<b>`" in out
    assert "```html\n<script>x()</script>\n[a](javascript:y)\n```\n" in out
    assert out.endswith("after &lt;i&gt;")


def test_unclosed_fence_keeps_the_rest_as_code():
    out = safe_markdown("```\n<script>\n")
    assert out == "```\n<script>\n"


def test_huge_text_is_cut_into_parts_quickly():
    text = "x" * 5_000_000
    t0 = time.perf_counter()
    assert n_parts(text) == 5_000_000 // PART_CHARS
    chunk = part_of(text, 3)
    md = safe_markdown(chunk)
    assert len(chunk) == PART_CHARS and len(md) == PART_CHARS
    assert part_of(text, 10**6) == text[-PART_CHARS:]  # clamped, not an error
    assert time.perf_counter() - t0 < 0.5


def test_hover_text_is_escaped_and_short():
    assert hover_text("<b>hi</b>\nthere") == "&lt;b&gt;hi&lt;/b&gt; there"
    assert len(hover_text("y" * 1000)) == 160
    assert hover_text(None) == ""
