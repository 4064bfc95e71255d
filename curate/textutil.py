"""Text helpers shared by readers and clean steps: HTML -> Markdown.

Stack Exchange bodies and ShareGPT scrapes of ChatGPT pages hold HTML. Training data wants
Markdown: headings, lists, links, inline code and fenced code blocks that keep their language.
The converter is markdownify on BeautifulSoup's ``html.parser`` (pure Python, no lxml), with
three changes: code blocks take their language from ``lang-*``/``language-*`` classes and keep
only the ``<code>`` text (ChatGPT's "Copy code" toolbars are dropped), active content
(script/style/iframe/...) is removed with its text, and links whose scheme can run code
(``javascript:``, ``vbscript:``, ``data:``) are kept as plain text.
"""

from __future__ import annotations

import re
from typing import Any

# Tags we recognise as HTML markup (not `<T>` generics or `<name>` placeholders in plain text).
_KNOWN_TAGS = (
    "a|abbr|b|blockquote|br|code|dd|del|details|div|dl|dt|em|h[1-6]|hr|i|img|kbd|li|ol|p|pre|s|samp|"
    "section|span|strike|strong|sub|summary|sup|table|tbody|td|th|thead|tr|u|ul|script|style|iframe|"
    "article|header|footer|main|nav|button|svg|object|embed|form|input|noscript|template|body|html|head"
)
# Valid both for Python's re and polars' Rust regex (no look-around), for cheap column pre-checks.
KNOWN_TAG_PATTERN = rf"(?i)</?({_KNOWN_TAGS})(\s[^<>]*)?/?>"
_KNOWN_TAG = re.compile(KNOWN_TAG_PATTERN)

# Elements whose text is never content: removed with everything inside.
_DROP = ("script", "style", "noscript", "iframe", "object", "embed", "template", "svg", "button", "head", "form")
_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")
_LANG_CLASS = re.compile(r"^(?:lang|language)-([A-Za-z0-9_+#.-]+)$")
# Stack Exchange bodies are capped at 30,000 characters; ChatGPT pages run to a few 100 KB.
# Beyond this the input is not a post but a page dump (or an attack on the parser).
DEFAULT_MAX_CHARS = 2_000_000


class HTMLConversionError(ValueError):
    """An HTML text cannot be converted (too large, nested too deeply)."""


def looks_like_html(text: str) -> bool:
    """True when the text holds recognised HTML tags (a cheap test before parsing)."""
    return _KNOWN_TAG.search(text) is not None


def _converter_class() -> type[Any]:
    from bs4 import Tag
    from markdownify import MarkdownConverter

    class _Converter(MarkdownConverter):
        def convert_a(self, el: Any, text: str, parent_tags: set[str]) -> str:
            href = (el.get("href") or "").strip()
            scheme = re.sub(r"[\s\x00-\x1f]", "", href).lower()
            if scheme.startswith(_UNSAFE_SCHEMES):
                return str(text)
            return str(super().convert_a(el, text, parent_tags))  # type: ignore[misc]

        def convert_img(self, el: Any, text: str, parent_tags: set[str]) -> str:
            src = re.sub(r"[\s\x00-\x1f]", "", el.get("src") or "").lower()
            if src.startswith(_UNSAFE_SCHEMES):
                return str(el.get("alt") or "")
            return str(super().convert_img(el, text, parent_tags))  # type: ignore[misc]

        def convert_br(self, el: Any, text: str, parent_tags: set[str]) -> str:
            # A plain newline, not Markdown's two-trailing-spaces break that tools strip.
            return "\n" if "_inline" not in parent_tags else " "

        def convert_pre(self, el: Any, text: str, parent_tags: set[str]) -> str:
            code = el.find("code")
            lang = _language_of(code) if isinstance(code, Tag) else None
            lang = lang or _language_of(el) or ""
            body = code.get_text() if isinstance(code, Tag) else el.get_text()
            body = body.strip("\n")
            if not body.strip():
                return ""
            fence = "```"
            while fence in body:
                fence += "`"
            return f"\n\n{fence}{lang}\n{body}\n{fence}\n\n"

    return _Converter


def _language_of(el: Any) -> str | None:
    classes = el.get("class") or []
    if isinstance(classes, str):
        classes = classes.split()
    for c in classes:
        m = _LANG_CLASS.match(c)
        if m and m.group(1).lower() not in ("none", "plaintext", "text"):
            return str(m.group(1)).lower()
    return None


_CONVERTER: Any = None


def html_to_markdown(html: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Convert an HTML fragment to Markdown (ATX headings, ``-`` bullets, fenced code with language).

    Raises HTMLConversionError for inputs over ``max_chars`` or nested too deeply to convert, so
    the caller can quarantine the record instead of spending minutes or crashing on it.
    """
    global _CONVERTER
    if len(html) > max_chars:
        raise HTMLConversionError(f"html_too_large: {len(html)} chars > max_chars {max_chars}")
    from bs4 import BeautifulSoup

    if _CONVERTER is None:
        _CONVERTER = _converter_class()(
            heading_style="ATX",
            bullets="-",
            escape_asterisks=False,
            escape_underscores=False,
            escape_misc=False,
            autolinks=True,
            strip_document=None,
        )
    soup = BeautifulSoup(html, "html.parser")
    for el in soup.find_all(_DROP):
        el.decompose()
    try:
        md = _CONVERTER.convert_soup(soup)
    except RecursionError:
        raise HTMLConversionError("html_too_deep: tags nested too deeply to convert") from None
    return str(md).strip()
