"""``curate chat MODEL``: a terminal chat with a local model folder, an adapter, or a GGUF file.

A model or adapter folder runs with transformers and its chat template (the one saved with a
``curate finetune`` adapter is the one it was trained with). A ``.gguf`` file runs in GPT4All's own
llama.cpp backend (the ``gpt4all`` Python bindings), with the chat template stored in the file rendered
here, so the model sees the same text as in training. Lines are read from stdin, so a pipe works:
``printf 'Hi\\n/exit\\n' | curate chat out/ft/model-q8_0.gguf``. ``/reset`` forgets the conversation,
``/exit`` (or end of input) quits.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Protocol

from curate.errors import ConfigError, MissingResourceError

_GEN_TAG = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


class ChatModel(Protocol):
    label: str

    def reply(self, turns: list[dict[str, str]]) -> str: ...


class TransformersChat:
    def __init__(self, path: str, base: str | None, template: str | None, max_new_tokens: int, temperature: float,
                 device: str = "auto", dtype: str = "auto") -> None:
        from curate.train.models import load_merged, pick_device, torch_dtype
        from curate.train.templates import default_template

        self.device = pick_device(device)
        self.model, self.tok, self.label = load_merged(path, base, torch_dtype(dtype, self.device), self.device)
        own = getattr(self.tok, "chat_template", None)
        self.template = default_template(template, self.tok) if template else (own or default_template("chatml", self.tok))
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def reply(self, turns: list[dict[str, str]]) -> str:
        import torch

        from curate.eval.answers import render_prompt, stop_ids

        text = render_prompt(self.tok, self.template, turns)
        batch = self.tok(text, add_special_tokens=False, return_tensors="pt").to(self.device)
        sample = self.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                **batch, max_new_tokens=self.max_new_tokens, do_sample=sample,
                temperature=self.temperature if sample else None, top_p=0.95 if sample else None,
                eos_token_id=stop_ids(self.tok), pad_token_id=self.tok.pad_token_id,
            )
        return str(self.tok.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)).strip()


def render_template(template: str, turns: list[dict[str, str]], bos: str, eos: str) -> str:
    """Render a Hugging Face chat template with jinja2 as transformers does (sandboxed, trimmed blocks).

    ``{% generation %}`` markers only tag assistant text for training masks, so they are dropped here.
    """
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(_GEN_TAG.sub("", template)).render(
            messages=turns, add_generation_prompt=True, bos_token=bos, eos_token=eos
        )
    except TemplateError as e:
        raise ConfigError(f"the model's chat template cannot render this conversation: {e}") from None


def open_gpt4all(path: Path, n_ctx: int = 2048) -> Any:
    """Load a GGUF file with GPT4All's own loader (CPU). Raises MissingResourceError / ConfigError."""
    try:
        from gpt4all import GPT4All
    except ImportError:
        raise MissingResourceError("a GGUF file runs in the gpt4all bindings: pip install 'curate[gguf]'") from None
    try:
        g = GPT4All(model_name=path.name, model_path=str(path.parent), allow_download=False, device="cpu", n_ctx=n_ctx)
    except (OSError, RuntimeError, ValueError) as e:
        raise ConfigError(f"{path}: gpt4all cannot load it ({e})") from None
    # GPT4All() ignores a failed load; a model that did not load cannot tokenise
    if not g.model.model or not _gpt4all_loaded(g):
        raise ConfigError(f"{path}: gpt4all's llama.cpp could not load it (unsupported architecture or vocabulary)")
    return g


def _gpt4all_loaded(g: Any) -> bool:
    from gpt4all._pyllmodel import llmodel

    return bool(llmodel.llmodel_isModelLoaded(g.model.model))


def gpt4all_complete(g: Any, prompt: str, max_tokens: int, temperature: float = 0.0, stop: tuple[str, ...] = ()) -> str:
    """Generate after ``prompt`` (special tokens in it parsed as such), stopping at EOS or any of ``stop``."""
    pieces: list[str] = []

    def on_token(_token_id: int, text: str) -> bool:
        pieces.append(text)
        joined = "".join(pieces)
        return not any(s and s in joined for s in stop)

    g.model.prompt_model(
        prompt, "%1", on_token, n_predict=max_tokens, temp=temperature, top_k=1 if temperature <= 0 else 40,
        top_p=0.95, repeat_penalty=1.0, reset_context=True, special=True,
    )
    text = "".join(pieces)
    cut = min((text.find(s) for s in stop if s and s in text), default=len(text))
    return text[:cut].strip()


class GGUFChat:
    def __init__(self, path: Path, max_new_tokens: int, temperature: float, n_ctx: int = 2048) -> None:
        from curate.train.gguf import read_metadata

        meta = read_metadata(path)
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(
                f"{path} has no chat template (tokenizer.chat_template); export it with curate export-model, which "
                "stores the template an adapter was trained with (--template NAME for a model without one)"
            )
        self.template = str(template)
        gguf_tokens = _token_list(path)
        self.bos = gguf_tokens[int(meta["tokenizer.ggml.bos_token_id"])] if "tokenizer.ggml.bos_token_id" in meta else ""
        self.eos = gguf_tokens[int(meta["tokenizer.ggml.eos_token_id"])] if "tokenizer.ggml.eos_token_id" in meta else ""
        self.add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False))
        self.stop = tuple(s for s in (self.eos, "<|im_end|>" if "<|im_end|>" in gguf_tokens else "") if s)
        self.g = open_gpt4all(path, n_ctx)
        self.label = f"{path} (gpt4all {self.g.backend})"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def reply(self, turns: list[dict[str, str]]) -> str:
        prompt = render_template(self.template, turns, self.bos, self.eos)
        if self.add_bos and self.bos and prompt.startswith(self.bos):
            prompt = prompt[len(self.bos) :]  # llama.cpp adds BOS itself; do not send it twice
        return gpt4all_complete(self.g, prompt, self.max_new_tokens, self.temperature, self.stop)


def _token_list(path: Path) -> list[str]:
    import gguf

    field = gguf.GGUFReader(str(path)).fields.get("tokenizer.ggml.tokens")
    return list(field.contents()) if field is not None else []


def open_chat(model: str, base: str | None = None, template: str | None = None, max_new_tokens: int = 256,
              temperature: float = 0.7, device: str = "auto") -> ChatModel:
    from curate.train.models import resolve

    ref = resolve(model)
    if ref.kind == "gguf":
        if base or template:
            raise ConfigError("--base and --template apply to model and adapter folders, not to a GGUF file")
        return GGUFChat(ref.path, max_new_tokens, temperature)
    return TransformersChat(str(ref.path), base, template, max_new_tokens, temperature, device)


def chat_loop(chat: ChatModel, lines: Any, out: Any, system: str | None = None, interactive: bool = False) -> int:
    """Answer each input line; returns the number of answers given."""
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    start = list(history)
    n = 0
    if interactive:
        print(f"chatting with {chat.label}; /reset forgets, /exit quits", file=sys.stderr)
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = lines.readline()
        if not line:
            break
        text = line.rstrip("\n").strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            history = list(start)
            continue
        history.append({"role": "user", "content": text})
        answer = chat.reply(history)
        history.append({"role": "assistant", "content": answer})
        print(answer, file=out, flush=True)
        n += 1
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder, LoRA adapter folder, `curate finetune` output folder, or .gguf file")
    parser.add_argument("--base", help="base model for an adapter (default: the one its adapter_config.json names)")
    parser.add_argument("--template", choices=("chatml", "alpaca", "vicuna"),
                        help="chat template for a folder whose tokenizer has none (default chatml)")
    parser.add_argument("--system", help="system message that opens the conversation")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.7, help="0 = greedy")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="for model folders")


def run(args: argparse.Namespace) -> int:
    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, got {args.temperature}")
    chat = open_chat(args.model, args.base, args.template, args.max_new_tokens, args.temperature, args.device)
    chat_loop(chat, sys.stdin, sys.stdout, args.system, interactive=sys.stdin.isatty())
    return 0
