"""Model calls for curation steps, all to an OpenAI-compatible endpoint the user runs (see docs/llm.md).

``config`` (the ``llm:`` parameters and sampling), ``client`` (concurrency, retries, accounting),
``cache`` (the SQLite request cache), ``step`` (what LLM steps share). Importing this package does not
import the ``openai`` client; the client does, when it is created.
"""
