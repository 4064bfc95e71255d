"""Writing records in each source's native format (OIG, Stack Exchange XML, P3, ShareGPT, Alpaca)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from curate.demo import text as T
from curate.demo.common import Conv, Slot

# ---------------------------------------------------------------------------------------------- formats


def _esc_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc_attr(s: str) -> str:
    return _esc_text(s).replace('"', "&quot;").replace("\r", "&#xD;").replace("\n", "&#xA;")


def so_row(**attrs: Any) -> str:
    return "  <row " + " ".join(f'{k}="{_esc_attr(str(v))}"' for k, v in attrs.items()) + " />\n"


def so_date(day: float) -> str:
    base = time.gmtime(1420070400 + int(day * 86400))  # 2015-01-01, shifted by a deterministic offset
    ms = int((day * 86400 % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", base) + f".{ms:03d}"


def so_body_html(q: dict[str, Any]) -> str:
    """A question's Body: paragraphs, the second part a code block."""
    return "".join(
        f"<pre><code>{_esc_text(part)}\n</code></pre>\n" if k == 1 else f"<p>{_esc_text(part)}</p>\n\n"
        for k, part in enumerate(q["body"])
    )


def so_answer_html(a: dict[str, Any]) -> str:
    """An answer's Body: a paragraph, an optional code block, a paragraph."""
    parts = [f"<p>{_esc_text(a['text'][0])}</p>\n"]
    if a["code"]:
        parts.append(f"\n<pre><code>{_esc_text(a['code'])}\n</code></pre>\n")
    parts.append(f"\n<p>{_esc_text(a['text'][1])}</p>\n")
    return "".join(parts)


def so_user_text(q: dict[str, Any]) -> str:
    """The user turn read.stackexchange makes of a question: title, blank line, body as Markdown."""
    from curate.textutil import html_to_markdown

    return f"{q['title']}\n\n{html_to_markdown(so_body_html(q))}"


def so_answer_text(q: dict[str, Any]) -> str:
    """The assistant turn read.stackexchange makes of the question's first (accepted) answer."""
    from curate.textutil import html_to_markdown

    return str(html_to_markdown(so_answer_html(q["answers"][0])))


def so_text(q: dict[str, Any]) -> str:
    """A question's text as the reader yields it: title, body, then the answer it picks (ours is first)."""
    a = q["answers"][0]
    return "\n".join([q["title"], *q["body"], a["text"][0], a["code"], a["text"][1]])


def oig_line(s: Slot) -> bytes:
    if isinstance(s.conv, bytes):
        return s.conv + b"\n"
    conv: Conv = s.conv
    text = "\n".join(f"<human>: {t}" if r == "user" else f"<bot>: {t}" for r, t in conv.turns)
    return json.dumps({"text": text, "metadata": {"source": "unified_chip2"}}, ensure_ascii=False).encode() + b"\n"


def p3_line(s: Slot) -> bytes:
    if isinstance(s.conv, bytes):
        return s.conv + b"\n"
    return json.dumps(s.conv, ensure_ascii=False).encode() + b"\n"


@dataclass
class BrokenElement:
    """An Alpaca record written with the comma after its instruction missing (invalid JSON)."""

    conv: Conv


def alpaca_obj(s: Slot, rng: Random) -> dict[str, str] | str:
    if isinstance(s.conv, BrokenElement):
        good = alpaca_obj(Slot(s.conv.conv), rng)
        text = json.dumps(good, ensure_ascii=False, indent=2)
        return text.replace('",\n  "input"', '"\n  "input"', 1)
    conv: Conv = s.conv
    if conv.alpaca_input:
        inp = conv.alpaca_input
    else:  # most real Alpaca records have "", the seed tasks write "<noinput>"
        inp = "<noinput>" if rng.random() < 0.15 else ""
    return {"instruction": conv.prompt, "input": inp, "output": conv.turns[-1][1]}


def json_array_bytes(objs: Sequence[dict[str, Any] | str]) -> bytes:
    """Indented like the published Alpaca/ShareGPT files: one element starts per top-level line.

    A string is an element already rendered (a planted broken one)."""
    parts = [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False, indent=2) for o in objs]
    body = ",\n".join("  " + p.replace("\n", "\n  ") for p in parts)
    return ("[\n" + body + "\n]\n").encode()


def to_chatgpt_html(text: str, topic: str, rng: Random) -> str:
    """Render an answer the way scraped ChatGPT pages store it: <p>, <ol>/<ul>, <pre><code class=...>."""
    out = []
    lines = [ln for ln in text.split("\n") if ln.strip()]
    items: list[str] = []
    tag = ""
    for ln in lines + [""]:
        m = re.match(r"^(\d+\.|-)\s+(.*)$", ln)
        if m:
            tag = "ol" if m.group(1) != "-" else "ul"
            items.append(f"<li>{_esc_text(m.group(2))}</li>")
            continue
        if items:
            out.append(f"<{tag}>" + "".join(items) + f"</{tag}>")
            items = []
        if ln:
            out.append(f"<p>{_esc_text(ln)}</p>")
    prog = next((t for t in T.PROGRAMMING_TOPICS if t.name == topic), None)
    if prog is not None:
        lang = {"python programming": "python", "pandas dataframes": "python", "regular expressions": "python",
                "javascript": "javascript", "sql databases": "sql", "docker containers": "dockerfile"}.get(topic, "bash")
        snippet_ = rng.choice(prog.code).format(a="value", b="item", C="Item", n=rng.randint(2, 9), f="data.csv",
                                                h="3f2a9c1")
        code = (f'<pre><div class="bg-black rounded-md"><code class="!whitespace-pre hljs language-{lang}">'
                f"{_esc_text(snippet_)}</code></div></pre>")
        out.insert(min(1, len(out)), code)
    return '<div class="markdown prose w-full break-words dark:prose-invert light">' + "".join(out) + "</div>"
