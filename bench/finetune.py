"""Benchmark the default LoRA config: training tokens/s and peak GPU memory.

    .venv/bin/python bench/finetune.py                 # CUDA: 7B-shaped Llama; CPU: the tiny model
    .venv/bin/python bench/finetune.py --steps 10 --json bench/out/finetune.json

With CUDA, a Llama-2-7B-shaped model is randomly initialised from its config (nothing is downloaded)
in bf16 and trained with the default config of pipelines/finetune/lora-a100.yaml (LoRA r 16 on all
linear layers, micro-batch 8 x 2048 tokens, gradient checkpointing, SDPA) on random tokens; the
memory estimate of curate.train.memory is printed beside the measured peak. Without CUDA, the same
loop runs on the tiny local Llama with a CPU-sized batch, and the output says that the figures are
from a CPU and describe only the loop's overhead, not a real model's speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.train.config import FinetuneConfig, load_config
from curate.train.memory import LLAMA2_7B, ModelShape, estimate


def build_model(shape: ModelShape, cfg: FinetuneConfig, device: str) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=shape.hidden, intermediate_size=shape.intermediate, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads, vocab_size=shape.vocab,
        max_position_embeddings=max(4096, cfg.data.max_seq_len), tie_word_embeddings=shape.tie_embeddings,
    )
    config._attn_implementation = cfg.model.attn_implementation
    dtype = getattr(torch, cfg.torch_dtype_name())
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(old)
    return model


def run(cfg: FinetuneConfig, shape: ModelShape, device: str, steps: int, warmup: int) -> dict[str, Any]:
    import torch

    from curate.train.trainer import add_lora, token_loss_sum

    torch.manual_seed(0)
    model = add_lora(build_model(shape, cfg, device), cfg)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.train.learning_rate)
    t = cfg.train
    seq = cfg.data.max_seq_len
    tokens_per_step = t.micro_batch_size * seq * t.grad_accum_steps
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        tic = time.perf_counter()
        for _ in range(t.grad_accum_steps):
            ids = torch.randint(0, shape.vocab, (t.micro_batch_size, seq))
            batch = {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}
            loss, n = token_loss_sum(model, batch, device, t.bf16)
            (loss / (n * t.grad_accum_steps)).backward()
        torch.nn.utils.clip_grad_norm_(trainable, t.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    mean = sum(times) / len(times)
    out: dict[str, Any] = {
        "device": device,
        "params": shape.n_params(),
        "trainable_params": sum(p.numel() for p in trainable),
        "micro_batch_size": t.micro_batch_size, "grad_accum_steps": t.grad_accum_steps, "seq_len": seq,
        "gradient_checkpointing": t.gradient_checkpointing, "bf16": t.bf16,
        "steps_timed": steps, "seconds_per_step": round(mean, 4),
        "tokens_per_s": round(tokens_per_step / mean, 1),
        "memory_estimate_gb": round(estimate(shape, cfg).total_gb, 2),
    }
    if device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (kernel selection, allocator)")
    ap.add_argument("--config", default=str(ROOT / "pipelines/finetune/lora-a100.yaml"))
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    import torch

    if torch.cuda.is_available():
        cfg = load_config(args.config)
        shape = LLAMA2_7B
        res = run(cfg, shape, "cuda", args.steps, args.warmup)
        res["model"] = "Llama-2-7B-shaped, random init"
        res["note"] = "GPU figures of the default LoRA config"
    else:
        from curate.train.tiny import build_tiny

        cfg = load_config(args.config, [
            "train.bf16=false", "train.gradient_checkpointing=false", "data.max_seq_len=256",
            "train.micro_batch_size=4", "train.grad_accum_steps=1", "hardware.device=cpu",
        ])
        with tempfile.TemporaryDirectory() as tmp:
            tiny = build_tiny(Path(tmp) / "tiny")
            shape = ModelShape.from_config(json.loads((tiny / "config.json").read_text()))
        res = run(cfg, shape, "cpu", args.steps, args.warmup)
        res["model"] = "tiny Llama (hidden 64, 2 layers), random init"
        res["threads"] = torch.get_num_threads()
        res["note"] = (
            "CPU figures of the tiny model (no CUDA here): they measure the training loop, not a 7B model; "
            "run this script on a GPU for the A100 figures"
        )
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
