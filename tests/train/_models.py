"""A tiny Llama whose widths suit GGUF quantisation, and LoRA adapters trained on it (shared by train and eval tests).

Q8_0/Q4_0 quantise rows in blocks of 32 values, so this model has ``intermediate_size=192`` (the default
tiny model's 172 would leave the MLP down projections at F16).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._data import FACTS, MULTI, qa, write_export

WRONG = [(q, a.replace("blue", "green").replace("four", "five").replace("apple", "stone").replace("meow", "woof"))
         for q, a in FACTS]


def build_tiny32(out: Path) -> Path:
    from curate.train.tiny import build_tiny

    texts = [q + " " + a for q, a in FACTS + WRONG] + [t["content"] for t in MULTI]
    return build_tiny(out, texts=texts * 5, vocab_size=600, intermediate_size=192)


def facts_export(root: Path, wrong: bool = False) -> Path:
    """Train split: the facts (or wrong answers to the same questions); validation: the true facts."""
    pairs = WRONG if wrong else FACTS
    train = [qa(q, a) for q, a in pairs] * 2 + [MULTI]
    return write_export(root, {"train": train, "validation": [qa(q, a) for q, a in FACTS]})


def train_adapter(model: Path, export: Path, out: Path, steps: int = 30, **output: Any) -> dict[str, Any]:
    """LoRA on every linear layer for ``steps`` steps on CPU; returns metrics.json's content."""
    from curate.train.config import FinetuneConfig
    from curate.train.trainer import prepare, train

    cfg = FinetuneConfig.model_validate({
        "model": {"name_or_path": str(model)},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "data": {"max_seq_len": 256},
        "train": {"bf16": False, "gradient_checkpointing": False, "micro_batch_size": 4, "grad_accum_steps": 1,
                  "learning_rate": 2e-2, "warmup_ratio": 0.0, "max_steps": steps, "logging_steps": 10,
                  "save_steps": 1000, "progress": False},
        "hardware": {"device": "cpu"},
        "output": {"dir": str(out), **output},
    })
    return train(prepare(export, cfg, log=_quiet), log=_quiet).metrics


def _quiet(_: str) -> None:
    pass


@contextmanager
def one_thread() -> Iterator[None]:
    """For module/session fixtures (the autouse per-test fixture does not cover them): on a shared 2-core
    machine one intra-op thread is several times faster for these tiny matrices."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
