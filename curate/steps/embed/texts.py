"""Which text of a conversation a global step looks at: one polars expression per scope."""

from __future__ import annotations

from typing import Literal

import polars as pl

from curate.schema import first_user_expr, turn_texts

TextScope = Literal["first_user", "user", "conversation", "assistant"]
SCOPES: tuple[str, ...] = ("first_user", "user", "conversation", "assistant")
# "prompt" is the name for the first user turn (GPT4All rows have exactly one prompt).
ALIASES = {"prompt": "first_user"}


def text_expr(scope: str) -> pl.Expr:
    """Utf8 expression over ``turns``: the first user turn, all user turns, all turns, or the assistant turns.

    Several turns are joined with a newline; a conversation without such turns gives "".
    """
    scope = ALIASES.get(scope, scope)
    if scope == "first_user":
        expr = first_user_expr()
    elif scope == "user":
        expr = turn_texts("user").list.join("\n")
    elif scope == "assistant":
        expr = turn_texts("assistant").list.join("\n")
    elif scope == "conversation":
        expr = turn_texts().list.join("\n")
    else:
        raise ValueError(f"unknown text scope {scope!r}; expected one of {SCOPES + tuple(ALIASES)}")
    return expr.fill_null("").alias("_text")
