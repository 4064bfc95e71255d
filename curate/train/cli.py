"""``curate finetune DATASET_DIR --config pipelines/finetune/lora-a100.yaml``: check, then LoRA-train.

Every setting lives in the validated config; ``--set section.key=value`` overrides any of them and the
named flags override the common ones. ``--check`` runs only the data/template check (it also runs
before every training run).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset_dir", help="exported Hub dataset folder (curate export RUN_DIR OUT --format hub)")
    parser.add_argument("--config", help="fine-tune YAML (default: the built-in A100 defaults = lora-a100.yaml)")
    parser.add_argument("--base-model", help="local model folder or Hub name (model.name_or_path)")
    parser.add_argument("--output", help="output folder (output.dir)")
    parser.add_argument("--max-steps", type=int, help="stop after N optimizer steps (train.max_steps)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any config key, e.g. --set train.learning_rate=1e-4 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the output folder")
    parser.add_argument("--merge", action="store_true", help="also write merged weights to <output>/merged")
    parser.add_argument("--gguf", metavar="TYPE", choices=("f32", "f16", "q8_0", "q4_0"),
                        help="also write <output>/model-TYPE.gguf (merged; GPT4All/llama.cpp) (output.gguf)")
    parser.add_argument("--check", action="store_true", help="only render and check the data; do not train")


def named_overrides(args: argparse.Namespace) -> dict[str, Any]:
    named: dict[str, Any] = {}
    if args.base_model:
        named["model.name_or_path"] = args.base_model
    if args.output:
        named["output.dir"] = args.output
    if args.max_steps is not None:
        named["train.max_steps"] = args.max_steps
    if args.merge:
        named["output.merge"] = True
    if args.gguf:
        named["output.gguf"] = args.gguf
    return named


def run(args: argparse.Namespace) -> int:
    from curate.train.config import load_config
    from curate.train.trainer import prepare, train

    cfg = load_config(args.config, args.set, named_overrides(args))
    prep = prepare(args.dataset_dir, cfg)
    print(prep.report)
    if args.check:
        print("check passed")
        return 0
    metrics = train(prep, resume=args.resume).metrics
    ev = f", eval loss {metrics['eval_loss']:.4f}, perplexity {metrics['perplexity']:.2f}" if metrics["eval"] else ""
    tps = metrics["tokens_per_s"]
    print(
        f"done: {metrics['steps']} steps, train loss {metrics['train_loss_first']:.4f} -> "
        f"{metrics['train_loss_last']:.4f}{ev}, {tps:.0f} tokens/s; output in {cfg.output.dir}"
    )
    return 0
