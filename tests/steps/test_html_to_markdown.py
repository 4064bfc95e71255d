"""clean.html_to_markdown: converts only HTML turns, keeps the rest, quarantines what it cannot convert."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from curate.schema import ERROR_COLUMN, content_hash
from curate.steps.clean.html_to_markdown import HtmlToMarkdownClean


def test_converts_html_turns_only(batch_of):
    step = HtmlToMarkdownClean.from_params()
    batch = batch_of(
        "user: <p>How do I <code>grep</code>?</p> || assistant: <pre><code class='lang-bash'>grep -r x .</code></pre>",
        "user: plain List<T> text || assistant: fine",
    )
    out = step.apply(batch)
    assert out["turns"].to_list() == [
        [{"role": "user", "content": "How do I `grep`?"}, {"role": "assistant", "content": "```bash\ngrep -r x .\n```"}],
        [{"role": "user", "content": "plain List<T> text"}, {"role": "assistant", "content": "fine"}],
    ]
    assert ERROR_COLUMN not in out.columns
    assert out["id"].to_list() == batch["id"].to_list()
    assert out["content_hash"][0] == content_hash(out["turns"][0].to_list())
    assert out["content_hash"][1] == batch["content_hash"][1]
    assert step.report_extra == {"html_records": 1, "html_turns": 2}


def test_roles_param_limits_conversion(batch_of):
    step = HtmlToMarkdownClean.from_params(roles=["assistant"])
    out = step.apply(batch_of("user: <b>keep</b> || assistant: <b>bold</b>"))
    assert [t["content"] for t in out["turns"][0]] == ["<b>keep</b>", "**bold**"]


def test_bad_record_gets_error_not_batch(batch_of):
    step = HtmlToMarkdownClean.from_params(max_chars=50)
    batch = batch_of("user: <p>short</p>", "user: <p>" + "x" * 100 + "</p>", "user: no html")
    out = step.apply(batch)
    assert out.height == 3
    errors = out[ERROR_COLUMN].to_list()
    assert errors[0] is None and errors[2] is None
    assert errors[1].startswith("HTMLConversionError: html_too_large")
    assert out["turns"][0].to_list() == [{"role": "user", "content": "short"}]
    assert out["turns"][1].to_list() == batch["turns"][1].to_list()  # left as it was, runner quarantines it


def test_no_html_batch_is_returned_unchanged(batch_of):
    batch = batch_of("user: hi || assistant: hello")
    assert HtmlToMarkdownClean.from_params().apply(batch).equals(batch)


def test_unknown_role_param_is_rejected():
    with pytest.raises(ValidationError, match="unknown roles"):
        HtmlToMarkdownClean.from_params(roles=["bot"])


def test_html_that_is_the_answer_stays(batch_of):
    from curate.steps.clean.html_to_markdown import HtmlToMarkdownClean, is_page_markup

    form = '<form action="/submit">\n  <label>Name</label>\n  <input type="text" name="name">\n</form>'
    svg = '<svg width="10" height="10"><circle cx="5" cy="5" r="4"/></svg>'
    rendered = '<div class="markdown prose"><p>Use <code>ls</code> to list files.</p></div>'
    assert not is_page_markup(form, "Generate a valid HTML form")
    assert not is_page_markup(svg, "Draw a circle")  # a document
    assert not is_page_markup("Here:\n```html\n<b>bold</b>\n```", "Show bold text")  # fenced
    assert is_page_markup(rendered, "How do I list files in an HTML page?")  # a chat UI's rendering
    assert is_page_markup("<p>Use <b>ls</b>.</p>", "How do I list files?")
    step = HtmlToMarkdownClean.from_params()
    out = step.apply(batch_of(f"user: Generate a valid HTML form || assistant: {form}",
                              f"user: How do I list files? || assistant: {rendered}"))
    turns = [t[-1]["content"] for t in out["turns"].to_list()]
    assert turns[0] == form
    assert "<" not in turns[1] and "`ls`" in turns[1]
