"""Serve a local model folder with `transformers serve` (an OpenAI-compatible server), offline, on CPU.

For trying the LLM steps without another server, for the tests and for ``bench/quality_signals.py``:
a real model folder works, and so does the tiny random Llama of ``curate.train.tiny`` (plumbing only:
its text is noise). Needs ``pip install 'transformers[serving]'``.

    with transformers_serve("models/my-model", log=Path("serve.log")) as server:
        llm = {"base_url": server.base_url, "model": server.model}
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

from curate.errors import ConfigError, MissingResourceError

# A minimal chat template for a tokenizer that has none (`/v1/chat/completions` needs one).
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@dataclass(frozen=True)
class LocalServer:
    base_url: str  # with /v1
    model: str  # the name requests use: the folder as given to the server
    log: Path

    def chat_requests(self) -> int:
        """Chat completions answered so far, counted in the server's access log."""
        return self.log.read_text(errors="replace").count("POST /v1/chat/completions")


def ensure_chat_template(model_dir: str | Path) -> bool:
    """Give the folder's tokenizer :data:`PLAIN_CHAT_TEMPLATE` when it has no chat template; True if added."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    if getattr(tok, "chat_template", None):
        return False
    tok.chat_template = PLAIN_CHAT_TEMPLATE
    tok.save_pretrained(str(model_dir))
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def transformers_serve(model_dir: str | Path, *, port: int | None = None, log: Path | None = None,
                       start_timeout_s: float = 180.0) -> Iterator[LocalServer]:
    """Run ``transformers serve MODEL_DIR`` on 127.0.0.1 (offline, CPU) until the block ends."""
    folder = Path(model_dir)
    if not (folder / "config.json").exists():
        raise MissingResourceError(f"{folder}: not a model folder (no config.json)")
    cli = Path(sys.executable).parent / "transformers"
    if not cli.exists():
        raise ConfigError("the `transformers` command is missing: pip install 'transformers[serving]'")
    port = port or free_port()
    log = log or folder.parent / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    cmd = [str(cli), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
           "--log-level", "info", "--default-seed", "0"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while not _healthy(url):
            if proc.poll() is not None:
                raise ConfigError(f"transformers serve exited with {proc.returncode}; its log ({log}) ends:\n"
                                  + log.read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                raise ConfigError(f"transformers serve did not answer {url}/health within {start_timeout_s:g}s; "
                                  f"see {log}")
            time.sleep(0.5)
        yield LocalServer(base_url=f"{url}/v1", model=str(folder), log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return bool(json.loads(r.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False
