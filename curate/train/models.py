"""Find and load the models that eval, chat and export-model take: a model folder, an adapter, a GGUF file.

A path on the command line can be a full model folder (``config.json``), a LoRA adapter folder
(``adapter_config.json``), a ``curate finetune`` output folder (its ``adapter/`` is used) or a ``.gguf``
file. Every way this can go wrong (missing folder, adapter that does not fit its base, tokenizer of another
vocabulary) is a one-line CurateError, never a traceback.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from curate.errors import ConfigError, MissingResourceError

Kind = Literal["model", "adapter", "gguf"]


@dataclass(frozen=True)
class ModelPath:
    """A resolved model argument: what it is and where it lies."""

    kind: Kind
    path: Path

    @property
    def label(self) -> str:
        return f"{self.kind} {self.path}"


def resolve(path: str | Path, what: str = "model") -> ModelPath:
    """Classify ``path``; raises MissingResourceError naming what was expected when it is none of them."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return ModelPath("gguf", p)
        raise ConfigError(f"{what} {p}: a file that is not .gguf; give a model folder, an adapter folder or a .gguf file")
    if not p.is_dir():
        raise MissingResourceError(f"{what} {p}: not found (expected a model folder, an adapter folder or a .gguf file)")
    if (p / "adapter_config.json").is_file():
        return ModelPath("adapter", p)
    if (p / "adapter" / "adapter_config.json").is_file():  # a `curate finetune` output folder
        return ModelPath("adapter", p / "adapter")
    if (p / "config.json").is_file():
        return ModelPath("model", p)
    raise MissingResourceError(
        f"{what} {p}: no config.json (model) or adapter_config.json (LoRA adapter) in it; for a finetune "
        "output folder give the folder that holds adapter/"
    )


def adapter_base(adapter_dir: Path) -> str:
    """The base model an adapter was trained on, as recorded in its adapter_config.json."""
    try:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"adapter {adapter_dir}: unreadable adapter_config.json ({e})") from None
    base = cfg.get("base_model_name_or_path") if isinstance(cfg, dict) else None
    if not base:
        raise ConfigError(f"adapter {adapter_dir}: adapter_config.json names no base model; pass --base")
    return str(base)


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA GPU is visible; use --device auto or cpu")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def torch_dtype(name: str, device: str) -> Any:
    """``auto``: bfloat16 on a GPU, float32 on a CPU (bf16 matmuls are slow on most CPUs)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    if name not in ("float32", "float16", "bfloat16"):
        raise ConfigError(f"--dtype {name!r}: choose auto, float32, float16 or bfloat16")
    return getattr(torch, name)


def load_tokenizer(path: str | Path, what: str = "model") -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as e:
        raise MissingResourceError(f"{what} {path}: cannot load its tokenizer ({_first_line(e)})") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, dtype: Any, device: str, what: str = "model") -> Any:
    """A causal LM from a local folder (or a Hub name, which needs the network the first time)."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    except (OSError, ValueError) as e:
        raise MissingResourceError(f"{what} {path}: cannot load its weights ({_first_line(e)})") from None
    model.to(device)  # type: ignore[arg-type]
    model.eval()  # type: ignore[no-untyped-call]
    return model


def check_vocab(model: Any, tokenizer: Any, what: str) -> None:
    """The tokenizer's ids must index the model's embedding rows; another vocabulary is a mismatch."""
    rows = int(model.get_input_embeddings().weight.shape[0])
    if len(tokenizer) > rows:
        raise ConfigError(
            f"{what}: its tokenizer has {len(tokenizer)} tokens but the model has {rows} embedding rows; "
            "the adapter was trained on another base (pass the --base it was trained on)"
        )


def attach_adapter(model: Any, adapter_dir: Path, name: str, base_label: str) -> Any:
    """Wrap ``model`` in the adapter (or add it as another named adapter); mismatches are ConfigErrors."""
    from peft import PeftModel

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            if isinstance(model, PeftModel):
                model.load_adapter(str(adapter_dir), adapter_name=name)
                return model
            return PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=name)
    except (RuntimeError, ValueError, KeyError) as e:
        raise ConfigError(
            f"adapter {adapter_dir} does not fit base {base_label}: {_first_line(e)}; pass the --base it was "
            f"trained on ({_recorded_base(adapter_dir)})"
        ) from None


def load_merged(path: str | Path, base: str | None = None, dtype: Any = None, device: str = "cpu") -> tuple[Any, Any, str]:
    """A full model for inference or export: a model folder as is, an adapter merged into its base.

    Returns ``(model, tokenizer, label)``; the tokenizer of an adapter is the one saved with it (it carries
    the chat template it was trained with).
    """
    import torch

    ref = resolve(path)
    dtype = dtype or torch.float32
    if ref.kind == "gguf":
        raise ConfigError(f"{ref.path}: a GGUF file, but a transformers model folder or adapter is needed here")
    if ref.kind == "model":
        tok = load_tokenizer(ref.path)
        model = load_model(ref.path, dtype, device)
        check_vocab(model, tok, f"model {ref.path}")
        return model, tok, str(ref.path)
    base_path = base or adapter_base(ref.path)
    model = load_model(base_path, dtype, device, what="base model")
    tok = load_tokenizer(ref.path, what="adapter")
    check_vocab(model, tok, f"adapter {ref.path}")
    peft = attach_adapter(model, ref.path, "default", base_path)
    merged = peft.merge_and_unload()
    merged.eval()
    return merged, tok, f"{base_path} + {ref.path}"


def _recorded_base(adapter_dir: Path) -> str:
    try:
        return f"its adapter_config.json names {adapter_base(adapter_dir)}"
    except ConfigError:
        return "its adapter_config.json names none"


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    # torch's load_state_dict errors start with a header line; the first size mismatch says what differs
    for line in lines:
        if "size mismatch" in line:
            return line[:300].rstrip(".")
    return lines[0][:300].rstrip(".") if lines else type(e).__name__
