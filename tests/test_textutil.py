"""html_to_markdown on strings: Stack Exchange bodies, ChatGPT page HTML and hostile input."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from curate.textutil import HTMLConversionError, html_to_markdown, looks_like_html


def test_headings_lists_links_inline_code():
    md = html_to_markdown(
        "<h2>Setup</h2><p>Call <code>pd.read_csv</code>, see <a href='https://pandas.pydata.org'>docs</a>."
        "<br>Next line</p><ul><li>one</li><li>two <em>b</em></li></ul><ol><li>first</li><li>second</li></ol>"
    )
    assert md == (
        "## Setup\n\nCall `pd.read_csv`, see [docs](https://pandas.pydata.org).\nNext line\n\n"
        "- one\n- two *b*\n\n1. first\n2. second"
    )


@pytest.mark.parametrize("cls", ['class="lang-python"', 'class="language-python"', 'class="hljs language-Python"'])
def test_code_block_keeps_language(cls):
    md = html_to_markdown(f"<p>Try:</p><pre><code {cls}>def f(a_b):\n    return a_b * 2\n</code></pre>")
    assert md == "Try:\n\n```python\ndef f(a_b):\n    return a_b * 2\n```"


def test_stack_exchange_pre_class_and_no_language():
    md = html_to_markdown('<pre class="lang-sql prettyprint-override"><code>SELECT 1;</code></pre><pre><code>x = 1</code></pre>')
    assert md == "```sql\nSELECT 1;\n```\n\n```\nx = 1\n```"


def test_fence_longer_than_backticks_inside_code():
    md = html_to_markdown('<pre><code class="language-md">a ``` b</code></pre>')
    assert md == "````md\na ``` b\n````"


def test_chatgpt_markup_drops_toolbar():
    html = (
        '<div class="markdown prose w-full break-words dark:prose-invert light"><p>Here is code:</p>'
        '<pre><div class="bg-black mb-4 rounded-md"><div class="flex items-center relative text-gray-200">'
        '<span class="">python</span><button class="flex ml-auto gap-2"><svg stroke="currentColor"><rect>'
        "</rect></svg>Copy code</button></div><div class=\"p-4 overflow-y-auto\">"
        '<code class="!whitespace-pre hljs language-python">print(<span class="hljs-string">"hi"</span>)\n'
        "</code></div></div></pre><ol><li><p>First</p></li><li><p>Second</p></li></ol></div>"
    )
    md = html_to_markdown(html)
    assert md == 'Here is code:\n\n```python\nprint("hi")\n```\n\n1. First\n2. Second'
    assert "Copy code" not in md


def test_hostile_markup_is_neutralised():
    md = html_to_markdown(
        "<p>ok <a href=' JaVaScRiPt:alert(1)'>click me</a> <a href='java\tscript:x'>tab</a> "
        "<img src='data:text/html,x' alt='pic'></p><script>steal()</script><style>p{color:red}</style>"
        "<iframe src='https://evil'>inner</iframe>"
    )
    assert md == "ok click me tab pic"
    for bad in ("steal", "color", "javascript", "inner", "data:"):
        assert bad not in md.lower()


def test_underscores_and_asterisks_are_not_escaped():
    assert html_to_markdown("<p>snake_case and 2*3</p>") == "snake_case and 2*3"


def test_huge_and_deep_inputs_raise_a_clear_error():
    with pytest.raises(HTMLConversionError, match="html_too_large"):
        html_to_markdown("<p>x</p>" * 10, max_chars=20)
    with pytest.raises(HTMLConversionError, match="html_too_deep"):
        html_to_markdown("<div>" * 50_000 + "x")


def test_looks_like_html_ignores_generics_and_placeholders():
    assert looks_like_html("a<br>b") and looks_like_html('<P class="x">')
    assert not looks_like_html("List<T> and <name> and 1 < 2 > 0")


def test_real_stack_exchange_bodies(shared_data):
    """Bodies from the coffee and beer dumps: tags vanish, text, code and links survive."""
    seen = {"pre": 0, "a": 0}
    for path in sorted((shared_data / "stackexchange_posts_xml").glob("*.xml")):
        for _, el in ET.iterparse(path):
            body = el.get("Body") or ""
            if "<pre" in body and seen["pre"] < 5:
                seen["pre"] += 1
                md = html_to_markdown(body)
                assert "```" in md and "<pre" not in md and "<code" not in md
            elif '<a href="http' in body and seen["a"] < 5:
                seen["a"] += 1
                md = html_to_markdown(body)
                assert ("](http" in md or "<http" in md) and "<a " not in md and "<p>" not in md
            el.clear()
    assert seen == {"pre": 5, "a": 5}
    body = (
        "<p>I manually grind coffee beans for drip coffee.</p>\n\n<p>So what is the optimum fineness for drip "
        "coffee?</p>\n"
    )
    assert html_to_markdown(body) == (
        "I manually grind coffee beans for drip coffee.\n\nSo what is the optimum fineness for drip coffee?"
    )
