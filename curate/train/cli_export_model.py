"""``curate export-model ADAPTER_OR_MODEL --gguf q8_0 -o model.gguf``: a file GPT4All and llama.cpp run.

An adapter (or a ``curate finetune`` output folder) is merged into its base first; a model folder is
written as it is. ``--check`` then reads the file back: transformers' GGUF loader must give the merged
model's logits (F16 within rounding; Q8_0/Q4_0 close, with the top-1 agreement reported), and the
``gpt4all`` bindings must load it and generate what transformers generates greedily.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

CHECK_PROMPT = [{"role": "user", "content": "What colour is the sky?"}]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from curate.train.gguf import QUANT_TYPES

    parser.add_argument("model", help="LoRA adapter folder, `curate finetune` output folder, or model folder")
    parser.add_argument("--gguf", required=True, metavar="TYPE", help=f"tensor type: {', '.join(QUANT_TYPES)}")
    parser.add_argument("-o", "--output", required=True, help="the .gguf file to write")
    parser.add_argument("--base", help="base model of an adapter (default: the one its adapter_config.json names)")
    parser.add_argument("--name", help="general.name stored in the file (default: the file name)")
    parser.add_argument("--template", choices=("chatml", "alpaca", "vicuna"),
                        help="chat template to store instead of the tokenizer's own (needed when it has none)")
    parser.add_argument("--check", action="store_true",
                        help="read the file back with transformers and gpt4all and compare with the merged model")


def run(args: argparse.Namespace) -> int:
    from curate.errors import ConfigError, check_output_file
    from curate.train.gguf import check_quant_type, write_gguf
    from curate.train.models import load_merged

    qtype = check_quant_type(args.gguf)
    out = check_output_file(args.output, "-o")
    if out.suffix.lower() != ".gguf":
        raise ConfigError(f"-o {out}: give a file name ending in .gguf")
    model, tok, label = load_merged(args.model, args.base)
    if args.template:
        from curate.train.templates import default_template

        tok.chat_template = default_template(args.template, tok)
    result = write_gguf(model, tok, out, qtype, name=args.name)
    print(f"{label} -> " + result.summary())
    if not result.chat_template:
        print("note: the file holds no chat template (the tokenizer has none); pass --template to store one")
    if args.check:
        for line in check_lines(result.path, model, tok):
            print(line)
    return 0


def check_lines(path: Path, model: Any, tok: Any) -> list[str]:
    """Compare the file with the in-memory model: logits via transformers, greedy text via gpt4all."""
    import torch

    from curate.eval.answers import render_prompt, stop_ids
    from curate.train.chat import GGUFChat
    from curate.train.gguf import compare_with_transformers
    from curate.train.templates import default_template

    template = getattr(tok, "chat_template", None) or default_template("chatml", tok)
    text = render_prompt(tok, template, CHECK_PROMPT)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    cmp = compare_with_transformers(path, model, ids)
    lines = [(f"transformers GGUF loader: max |logit diff| {cmp['max_abs_diff']:.3g} (logits up to "
             f"{cmp['max_abs_logit']:.3g}), top-1 agreement {cmp['top1_agreement']:.1%} over {cmp['positions']} positions")]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=16, do_sample=False, eos_token_id=stop_ids(tok),
                             pad_token_id=tok.pad_token_id)
    want = str(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)).strip()
    chat = GGUFChat(path, max_new_tokens=16, temperature=0.0)
    got = chat.reply(CHECK_PROMPT)
    same = "same as" if got == want else "differs from"
    lines.append(f"gpt4all ({chat.g.backend}): loaded, greedy answer {got!r} ({same} transformers' {want!r})")
    return lines
