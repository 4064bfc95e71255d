"""Fixtures for the fine-tune tests: a tiny local Llama (built once per session) and tiny export folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ._data import FACTS, MULTI, qa, write_export
from ._models import build_tiny32, facts_export, one_thread, train_adapter


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from curate.train.tiny import build_tiny

    texts = [q + " " + a for q, a in FACTS] + [t["content"] for t in MULTI]
    return build_tiny(tmp_path_factory.mktemp("tiny") / "model", texts=texts * 5, vocab_size=600)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = [qa(q, a) for q, a in FACTS] * 2 + [MULTI]
    val = [qa(q, a) for q, a in FACTS[:2]]
    return write_export(tmp_path_factory.mktemp("export"), {"train": train, "validation": val})


@pytest.fixture
def cfg_for(tiny_model: Path, tmp_path: Path) -> Callable[..., Any]:
    """A CPU-sized config on the tiny model; keyword ``section__key=value`` overrides."""
    from curate.train.config import FinetuneConfig

    def make(**changes: Any) -> FinetuneConfig:
        raw: dict[str, Any] = {
            "model": {"name_or_path": str(tiny_model)},
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "data": {"max_seq_len": 256},
            "train": {
                "bf16": False, "gradient_checkpointing": False, "micro_batch_size": 4, "grad_accum_steps": 1,
                "learning_rate": 1e-2, "warmup_ratio": 0.0, "max_steps": 20, "logging_steps": 1,
                "save_steps": 10, "progress": False,
            },
            "hardware": {"device": "cpu"},
            "output": {"dir": str(tmp_path / "out")},
        }
        for key, value in changes.items():
            section, name = key.split("__")
            raw.setdefault(section, {})[name] = value
        return FinetuneConfig.model_validate(raw)

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Any:
    """On a shared 2-core machine one intra-op thread is several times faster for these tiny matrices."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny32_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 192-wide tiny Llama (every row quantisable), a LoRA memorising the facts, and `finetune --gguf q8_0`'s
    file in its output folder."""
    root = tmp_path_factory.mktemp("tiny32")
    with one_thread():
        model = build_tiny32(root / "tiny32")
        export = facts_export(root / "export")
        metrics = train_adapter(model, export, root / "ft", steps=30, gguf="q8_0")
    return {"model": model, "export": export, "out": root / "ft", "metrics": metrics}
