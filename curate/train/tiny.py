"""Build a tiny, randomly initialised Llama and a small byte-level BPE tokenizer, offline.

``python -m curate.train.tiny OUT_DIR [--corpus DATASET_DIR]`` writes a folder that loads with the Auto
classes, so the whole fine-tune path (template, masks, LoRA, checkpoints, merge) runs on a CPU in seconds
with nothing downloaded. Its figures say nothing about a real model's quality or speed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}

# Enough varied English (and the default templates' own words) for the BPE to learn useful merges.
_BUILTIN = [
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions."
    ),
    "### Instruction: ### Input: ### Response: USER: ASSISTANT: TOOL: system user assistant tool",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.",
    "How do I reverse a list in Python? Use reversed(items) or items[::-1]; list.reverse() works in place.",
    "Explain gradient descent: take small steps against the gradient of the loss until it stops falling.",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
    "Write a haiku about the sea. Waves fold into foam; the tide keeps its old promise; salt on the wind.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5",
    "SELECT name, count(*) FROM users GROUP BY name ORDER BY 2 DESC LIMIT 10;",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 2.71 -1 +1 = < > % $ # @ ! ? , . ; : ' \" ( ) [ ] { }",
    "Summarise the text in one sentence. Translate it into French. Give three examples. Answer briefly.",
]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 768) -> object:
    """A ByteLevel BPE trained on ``texts``, wrapped as a fast tokenizer with Llama-style special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, model_max_length=4096, **SPECIAL
    )


def build_tiny(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    vocab_size: int = 768,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    intermediate_size: int | None = None,
) -> Path:
    """Write a tiny Llama (about 0.5M params) and its tokenizer to ``out_dir``; returns the folder.

    ``intermediate_size`` defaults to 172 for the 64-wide model (the figures in FACTS.md were measured on it).
    GGUF's Q8_0/Q4_0 quantise rows in blocks of 32 values, so a model meant for a quantised GGUF needs every
    input width a multiple of 32: ``intermediate_size=192`` (``--intermediate-size 192``).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    corpus = list(texts) if texts is not None else []
    tokenizer = train_tokenizer(corpus + _BUILTIN, vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or (172 if hidden_size == 64 else int(hidden_size * 8 / 3)),
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,  # type: ignore[attr-defined]
        eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
        pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
        tie_word_embeddings=False,
        # Wider than Llama's 0.02: with a frozen random lm_head of std 0.02 and 64 dims, logits cannot leave
        # a near-uniform range, so LoRA could barely lower the loss on a memorisable set.
        initializer_range=0.1,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)  # type: ignore[attr-defined]
    return out


def corpus_from_dataset(dataset_dir: str | Path, limit: int = 2000) -> list[str]:
    """Turn contents of an exported dataset's train split, to fit the tokenizer to the demo data."""
    from curate.train.data import load_split

    return [t["content"] for c in load_split(dataset_dir, "train", limit=limit) for t in c.turns]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m curate.train.tiny", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder to write (config.json, model.safetensors, tokenizer)")
    ap.add_argument("--corpus", help="exported dataset folder whose text trains the tokenizer (optional)")
    ap.add_argument("--vocab-size", type=int, default=768)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--intermediate-size", type=int, default=None,
                    help="MLP width (default 172); a multiple of 32, e.g. 192, lets GGUF quantise every tensor")
    args = ap.parse_args(argv)
    texts = corpus_from_dataset(args.corpus) if args.corpus else None
    out = build_tiny(args.out_dir, texts=texts, vocab_size=args.vocab_size, seed=args.seed,
                     intermediate_size=args.intermediate_size)
    print(f"tiny Llama written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
