"""``curate eval``: what curation bought, measured on held-out data.

``data`` (eval sets and prompt sets from an export folder or a JSONL file), ``perplexity`` (token-weighted
loss on assistant tokens, the same masking as training, for a base model and its adapters), ``answers``
(local greedy generation or answers read from JSONL), ``pairwise`` (an LLM judge on an OpenAI-compatible
endpoint, each pair judged in both orders), ``report`` (eval.json and eval.md) and ``cli``.
Importing this package imports no torch.
"""
