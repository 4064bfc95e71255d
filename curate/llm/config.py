"""What an LLM step needs to reach a model: the endpoint (``llm:``) and the sampling parameters.

Every model call goes to an OpenAI-compatible endpoint the user runs (llama.cpp server, vLLM, Ollama,
LM Studio, the GPT4All app's API server, ``transformers serve``): nothing is sent anywhere else, and
there is no default hosted service. ``base_url`` includes the API prefix, usually ``/v1``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from curate.errors import ConfigError

DEFAULT_BASE_URL = "http://localhost:8000/v1"
# Sent when no key is configured: local servers ignore the header, but the client needs a value.
NO_KEY = "not-needed"


class LLMConfig(BaseModel):
    """``llm: {base_url, model, api_key_env, max_concurrency, timeout_s, max_retries}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        DEFAULT_BASE_URL,
        description="OpenAI-compatible endpoint you run, with its API prefix: llama.cpp server "
        "http://localhost:8080/v1, vLLM and transformers serve http://localhost:8000/v1, Ollama "
        "http://localhost:11434/v1, LM Studio http://localhost:1234/v1, GPT4All app http://localhost:4891/v1.",
    )
    model: str = Field(
        min_length=1, description="Model name as the endpoint knows it (`GET <base_url>/models` lists them)."
    )
    api_key_env: str | None = Field(
        None,
        description="Name of the environment variable holding the endpoint's API key (never the key itself); "
        "null: no key (local servers need none).",
    )
    max_concurrency: int = Field(4, ge=1, le=512, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one answer before it counts as timed out.")
    max_retries: int = Field(
        3, ge=0, le=20, description="Retries of a request after a 429, a 5xx, a timeout or a lost connection."
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{v!r} is not an http(s) URL; e.g. {DEFAULT_BASE_URL}")
        return v.strip().rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or not v.replace("_", "").isalnum()):
            raise ValueError(f"{v!r} is not an environment variable name (write the name, e.g. LLM_API_KEY, not the key)")
        return v

    def api_key(self) -> str:
        """The key to send: the named environment variable's value. Raises ConfigError when it is unset."""
        if self.api_key_env is None:
            return NO_KEY
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(
                f"llm.api_key_env names {self.api_key_env}, but that environment variable is not set; "
                f"export {self.api_key_env}=<key> or set api_key_env: null for a server without keys"
            )
        return key

    def output_key(self) -> dict[str, str]:
        """What decides the answers (the cache key and step fingerprints use it); the rest only changes speed."""
        return {"base_url": self.base_url, "model": self.model}


class Sampling(BaseModel):
    """Sampling parameters sent with every request; part of the request cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature (0: greedy).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(512, ge=1, description="Most tokens generated per answer; an answer cut there is "
                            "`finish_reason: length`.")
    stop: list[str] | None = Field(None, description="Stop sequences, or null.")
