"""The real OpenAI-compatible server for the LLM tests: `transformers serve` on a tiny local Llama, on CPU.

The model is built here (``curate.train.tiny``, about 0.5M random weights) and given a chat template;
``curate.llm.serve`` runs the server offline (``HF_HUB_OFFLINE=1``) on a free port for the whole session.
Its access log counts the chat requests it answered, so tests can check that a cached run asked nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from curate.llm.serve import LocalServer, ensure_chat_template, transformers_serve


@dataclass(frozen=True)
class TinyServer:
    server: LocalServer

    @property
    def url(self) -> str:
        return self.server.base_url

    @property
    def model(self) -> str:
        return self.server.model

    def chat_requests(self) -> int:
        return self.server.chat_requests()

    def llm(self, **kw: object) -> dict[str, object]:
        return {"base_url": self.url, "model": self.model, "timeout_s": 60, "max_retries": 1, **kw}


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyServer]:
    pytest.importorskip("fastapi", reason="transformers serve needs transformers[serving]")
    pytest.importorskip("uvicorn", reason="transformers serve needs transformers[serving]")
    from curate.train.tiny import build_tiny

    folder = build_tiny(tmp_path_factory.mktemp("tiny-llama") / "model")
    assert ensure_chat_template(folder)
    with transformers_serve(folder, start_timeout_s=120) as server:
        yield TinyServer(server)
