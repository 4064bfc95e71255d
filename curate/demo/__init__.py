"""The demo corpus (``curate demo-data DIR``): a deterministic synthetic raw corpus in five native formats, with planted problems.

Why synthetic: the real sources (OIG, Stack Overflow, P3, ShareGPT, Alpaca) are gigabytes, carry
licences we cannot ship, and nothing in them tells you which records *should* be removed. This corpus
is small, offline, byte-identical for a given seed, and every planted problem is listed in
``ground_truth.jsonl`` so each pipeline step can be scored (precision/recall per kind).

Layout under DIR (the Makefile's ``make demo`` uses these paths)::

    oig/unified_chip2.jsonl        LAION OIG lines {"text": "<human>: ...\\n<bot>: ...", "metadata": {...}}
    stackoverflow/Posts.xml        Stack Exchange dump rows (BOM, HTML-escaped Body/Tags)
    p3/p3.jsonl                    BigScience P3 records: the homogeneous, low-diversity source
    sharegpt/sharegpt.json         ShareGPT array [{id, conversations: [{from, value}]}]
    alpaca/alpaca.json             Alpaca array [{instruction, input, output}]
    ground_truth.jsonl             one line per planted record: {file, record, kind, of, detail}
    ground_truth_summary.json      counts per kind and source, low_diversity_source

Locators (``record``) are what readers put in ``provenance.record``: the 1-based line number in JSONL,
the 1-based element ordinal in a JSON array, the question's ``Id`` in Posts.xml. Planted kinds are
disjoint: a record has exactly one kind, and the record a duplicate points to (``of``) is never planted.

Modules, in the order they build on each other: ``common`` (file names, rates, limits, record types),
``text`` (topics, facts and phrasings), ``writer`` (composing conversations), ``plants`` (planted
problems), ``formats`` (each source's native format), ``corpus`` (who gets what), ``truth`` (the API:
generate, ground truth, recipes, outcomes) and ``cli`` (``curate demo-data``).
"""

from __future__ import annotations

from curate.demo.common import (
    ALPACA_FILE,
    DEFAULT_RECORDS,
    FILES,
    OIG_FILE,
    OVERLONG_WORDS,
    P3_FILE,
    RATES,
    SHAREGPT_FILE,
    SHARES,
    SO_FILE,
    jaccard,
    make_plan,
    tokens,
)
from curate.demo.truth import (
    RECIPE_SOURCES,
    generate,
    iter_ground_truth,
    outcome_table,
    planted_outcomes,
    recipe_overrides,
    recipe_plan,
)
from curate.demo.writer import rouge_tokens

__all__ = [
    "ALPACA_FILE", "DEFAULT_RECORDS", "FILES", "OIG_FILE", "OVERLONG_WORDS", "P3_FILE", "RATES", "RECIPE_SOURCES",
    "SHAREGPT_FILE", "SHARES", "SO_FILE", "generate", "iter_ground_truth", "jaccard", "make_plan", "outcome_table",
    "planted_outcomes", "recipe_overrides", "recipe_plan", "rouge_tokens", "tokens",
]
