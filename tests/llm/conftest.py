"""The real OpenAI-compatible server for the LLM tests: `transformers serve` on a tiny local Llama, on CPU.

The model is built here (``curate.train.tiny``, about 0.5M random weights) and given a chat template;
the server runs offline (``HF_HUB_OFFLINE=1``) on a free port for the whole session. Its access log
counts the chat requests it answered, so tests can check that a cached run asked nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
START_TIMEOUT_S = 120


@dataclass
class TinyServer:
    url: str  # base_url, with /v1
    model: str
    log: Path

    def chat_requests(self) -> int:
        """Chat completions the server has answered so far (from its access log)."""
        return self.log.read_text(errors="replace").count("POST /v1/chat/completions")

    def llm(self, **kw: object) -> dict[str, object]:
        return {"base_url": self.url, "model": self.model, "timeout_s": 60, "max_retries": 1, **kw}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyServer]:
    pytest.importorskip("fastapi", reason="transformers serve needs transformers[serving]")
    pytest.importorskip("uvicorn", reason="transformers serve needs transformers[serving]")
    from transformers import AutoTokenizer

    from curate.train.tiny import build_tiny

    folder = build_tiny(tmp_path_factory.mktemp("tiny-llama") / "model")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    port = _free_port()
    log = folder.parent / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    cli = Path(sys.executable).parent / "transformers"
    cmd = [str(cli), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
           "--log-level", "info", "--default-seed", "0"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"transformers serve did not answer /health in {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield TinyServer(url=f"{url}/v1", model=str(folder), log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
