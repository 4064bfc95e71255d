"""Shared fixtures: `batch_of`, `tiny_ds`, `FakeEmbedder`, and the real sample data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curate.schema import make_batch, record_id

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _parse_conv(spec: str) -> list[dict[str, str]]:
    """'user: hi || assistant: hello' -> turns."""
    turns = []
    for part in spec.split(" || "):
        role, _, content = part.partition(": ")
        turns.append({"role": role.strip(), "content": content})
    return turns


def make_ds(*convs: str, source: str = "test", sources: list[str] | None = None) -> pl.DataFrame:
    rows = []
    for i, c in enumerate(convs):
        src = sources[i] if sources else source
        rows.append(
            {
                "id": record_id(src, "mem", i),
                "source": src,
                "subset": None,
                "turns": _parse_conv(c),
                "meta": None,
                "provenance": {"file": "mem", "record": i},
            }
        )
    return make_batch(rows)


@pytest.fixture
def batch_of():
    """batch_of("user: hi || assistant: hello", ...): one conversation per argument."""
    return make_ds


@pytest.fixture
def tiny_ds():
    return make_ds(
        "user: What is the capital of France? || assistant: Paris is the capital of France.",
        "user: Write a haiku about rain. || assistant: Soft rain on the roof / ...",
        "user: What is the capital of France? || assistant: Paris is the capital of France.",
        "user: Explain recursion. || assistant: A function that calls itself on a smaller input.",
    )


class FakeEmbedder:
    """Maps known strings to hand-picked vectors (normalised), so thresholds are checked exactly."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = {k: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for k, v in table.items()}
        self.dim = len(next(iter(self.table.values())))

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


@pytest.fixture
def fake_embedder():
    return FakeEmbedder


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data folder {SHARED_DATA} is absent (it sits beside the checkout in CI)")
    return SHARED_DATA
