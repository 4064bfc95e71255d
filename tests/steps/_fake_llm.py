"""A small OpenAI-compatible fake server (stdlib http.server) for the LLM steps' fault cases.

``FakeLLM`` answers ``GET /v1/models`` and ``POST /v1/chat/completions``. By default it echoes the last
user message (``answer: <text>``, ``finish_reason: stop``); a test sets ``fake.reply`` to a function
``(body, n) -> Reply`` to script errors (500, 429), stalls, cut answers or malformed judge output.
Every chat request body is kept in ``fake.requests``; ``fake.max_in_flight`` is the most requests it
served at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    text: str | None = None
    status: int = 200
    finish_reason: str = "stop"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as the body instead of a chat.completion


def echo(body: dict[str, Any], n: int) -> Reply:
    last = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    return Reply(text=f"answer: {last}")


class FakeLLM:
    def __init__(self, model: str = "fake-model", models: list[str] | None = None) -> None:
        self.model = model
        self.models = models if models is not None else [model]
        self.reply: Callable[[dict[str, Any], int], Reply] = echo
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    data = {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
                    self._send(200, json.dumps(data).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                if body.get("model") not in fake.models:
                    self._send(404, json.dumps({"error": {"message": f"model {body.get('model')} not found"}}).encode())
                    return
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                    n = len(fake.requests)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    r = fake.reply(body, n)
                    if r.delay_s:
                        time.sleep(r.delay_s)
                    if r.raw is not None:
                        self._send(r.status, r.raw, r.headers)
                    elif r.status != 200:
                        self._send(r.status, json.dumps({"error": {"message": f"fake error {r.status}"}}).encode(),
                                   r.headers)
                    else:
                        resp = {
                            "id": f"cmpl-{n}", "object": "chat.completion", "created": 0, "model": body["model"],
                            "choices": [{"index": 0, "finish_reason": r.finish_reason,
                                         "message": {"role": "assistant", "content": r.text}}],
                            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                        }
                        self._send(200, json.dumps(resp).encode(), r.headers)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def llm(self, **kw: Any) -> dict[str, Any]:
        """An ``llm:`` parameter block for this server."""
        return {"base_url": self.url, "model": self.model, "max_retries": 0, "timeout_s": 10, **kw}

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
