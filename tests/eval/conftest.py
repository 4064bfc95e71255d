"""A tiny Llama and two LoRA adapters on it: one trained on the true facts ("curated"), one on wrong answers to the
same questions ("uncurated"); the validation split holds the true facts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from steps._fake_llm import FakeLLM
from train._models import build_tiny32, facts_export, one_thread, train_adapter


@pytest.fixture(scope="session")
def pair_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("evalrun")
    with one_thread():
        model = build_tiny32(root / "tiny32")
        curated = facts_export(root / "curated-export")
        uncurated = facts_export(root / "uncurated-export", wrong=True)
        m1 = train_adapter(model, curated, root / "curated", steps=40)
        m2 = train_adapter(model, uncurated, root / "uncurated", steps=40)
    return {"model": model, "data": curated, "curated": root / "curated", "uncurated": root / "uncurated",
            "metrics": {"curated": m1, "uncurated": m2}}


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM(model="judge") as f:
        yield f


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with one_thread():
        yield

