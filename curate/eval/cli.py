"""``curate eval --base M --adapter curated=DIR1 --adapter uncurated=DIR2 --data EXPORT``: what curation bought.

Held-out perplexity (assistant tokens, training masks) of the base and each adapter; with
``--judge-model`` also a position-swapped pairwise comparison of two models' answers by a judge on an
OpenAI-compatible endpoint you run. Writes ``eval.json`` and ``eval.md`` to ``--output``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", help="base model folder (or Hub name) the adapters were trained on")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR",
                        help="a LoRA adapter (or a `curate finetune` output folder) to score, e.g. curated=out/ft "
                             "(repeatable)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                        help="a full model folder to score too, e.g. a merged model (repeatable)")
    parser.add_argument("--data", help="eval set: an exported dataset folder (its --split) or a JSONL of "
                                       "{\"messages\": [...]} conversations")
    parser.add_argument("--split", default="validation", help="split of an exported folder (default validation)")
    parser.add_argument("--max-convs", type=int, help="score only the first N conversations")
    parser.add_argument("--template", default="auto",
                        help="chat template: auto (the adapters' own), model, chatml, alpaca or vicuna")
    parser.add_argument("--max-seq-len", type=int, default=2048, help="tokens per conversation (as in training)")
    parser.add_argument("--batch-size", type=int, default=8, help="conversations per forward pass / generation batch")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, float16, bfloat16")
    parser.add_argument("--held-out-only", action="store_true",
                        help="score only conversations no adapter trained on (checked against each adapter's "
                             "training split, named in its metrics.json)")
    parser.add_argument("--no-perplexity", action="store_true", help="skip the perplexity part")
    judge = parser.add_argument_group("pairwise comparison (needs a judge endpoint you run)")
    judge.add_argument("--judge-url", default="http://localhost:8000/v1",
                       help="OpenAI-compatible endpoint with its /v1 prefix (llama.cpp server, vLLM, transformers serve)")
    judge.add_argument("--judge-model", help="judge model name as the endpoint knows it; turns the comparison on")
    judge.add_argument("--judge-key-env", help="environment variable holding the endpoint's API key (not the key)")
    judge.add_argument("--judge-concurrency", type=int, default=4, help="judge requests in flight")
    judge.add_argument("--judge-timeout", type=float, default=120.0, help="seconds per judge request")
    judge.add_argument("--judge-max-tokens", type=int, default=512, help="tokens the judge may write per verdict")
    judge.add_argument("--judge-cache", help="SQLite request cache (default <output>/llm_cache.sqlite)")
    judge.add_argument("--no-judge-cache", action="store_true", help="ask the judge every time")
    judge.add_argument("--pair", help="A,B: the two models to compare (default: the two adapters/models)")
    judge.add_argument("--prompts", help="prompt set (export folder or JSONL; default --data): each conversation "
                                         "up to its last user turn")
    judge.add_argument("--max-prompts", type=int, default=80, help="prompts judged (default 80, as Vicuna's set)")
    judge.add_argument("--answers", action="append", default=[], metavar="NAME=FILE",
                       help="read NAME's answers from a JSONL of {id, answer} instead of generating them")
    judge.add_argument("--max-new-tokens", type=int, default=256, help="tokens generated per answer")
    parser.add_argument("--output", default="eval-out", help="folder for eval.json, eval.md, answers/, pairwise.jsonl")


def run(args: argparse.Namespace) -> int:
    from curate.errors import ConfigError
    from curate.eval.run import EvalOptions, JudgeOptions, parse_named, run_eval

    for flag, value in (("--max-convs", args.max_convs), ("--batch-size", args.batch_size),
                        ("--max-seq-len", args.max_seq_len), ("--max-prompts", args.max_prompts),
                        ("--max-new-tokens", args.max_new_tokens), ("--judge-concurrency", args.judge_concurrency),
                        ("--judge-max-tokens", args.judge_max_tokens)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    answers: dict[str, str] = {}
    for v in args.answers:
        name, sep, path = v.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--answers {v!r}: expected NAME=FILE")
        answers[name.strip()] = path.strip()
    pair = None
    if args.pair:
        parts = [p.strip() for p in args.pair.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"--pair {args.pair!r}: expected two model names, A,B")
        pair = (parts[0], parts[1])
    judge = None
    if args.judge_model:
        judge = JudgeOptions(args.judge_url, args.judge_model, args.judge_key_env, args.judge_concurrency,
                             args.judge_timeout, args.judge_max_tokens, args.judge_cache, not args.no_judge_cache)
    opts = EvalOptions(
        output=Path(args.output),
        base=args.base,
        entries=parse_named(args.adapter, "--adapter", "adapter") + parse_named(args.model, "--model", "model"),
        data=args.data, split=args.split, max_convs=args.max_convs, template=args.template,
        max_seq_len=args.max_seq_len, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
        judge=judge, pair=pair, prompts=args.prompts, max_prompts=args.max_prompts, answers=answers,
        max_new_tokens=args.max_new_tokens, perplexity=not args.no_perplexity, held_out_only=args.held_out_only,
    )
    run_eval(opts)
    return 0
