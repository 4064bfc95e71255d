"""GPU memory estimate from the model's config.json, run before any weights are loaded.

The estimate is deliberately simple and slightly pessimistic, so a config it accepts leaves headroom:

* weights: every parameter at the base dtype's size; with 4-bit, linear weights cost 0.5 byte plus the
  quantisation constants (fp32 absmax per 64 weights, or ~1/64 byte with double quantisation), while
  embeddings, lm_head and norms stay 16-bit (bitsandbytes does not quantise them);
* LoRA: ``r * (in + out)`` per adapted linear, 16 bytes each (fp32 weight, grad, Adam m and v);
* activations per layer and token: ``(8*hidden + 4*intermediate)`` elements kept for backward (norm
  inputs, q/k/v, attention output, the SwiGLU gate/up/product; SDPA keeps no seq^2 scores, eager
  attention adds ``2 * heads * seq`` more). With gradient checkpointing only each layer's input is kept,
  plus one layer recomputed at a time;
* logits: ``micro_batch * seq * vocab`` at the compute dtype plus an fp32 copy and its gradient for the
  loss; with Llama 3's 128K vocabulary this is the largest single activation;
* 1 GiB for the CUDA context and kernels, and 5% for allocator fragmentation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curate.errors import ConfigError, MissingResourceError
from curate.train.config import FinetuneConfig

GIB = 1024**3
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tie_embeddings: bool = False

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ModelShape:
        try:
            return cls(
                hidden=int(cfg["hidden_size"]),
                intermediate=int(cfg["intermediate_size"]),
                layers=int(cfg["num_hidden_layers"]),
                heads=int(cfg["num_attention_heads"]),
                kv_heads=int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]),
                vocab=int(cfg["vocab_size"]),
                tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            )
        except KeyError as e:
            raise ConfigError(
                f"model config has no {e.args[0]!r}: the memory estimate supports Llama-family configs; "
                "set --set hardware.check_memory=false to skip it"
            ) from None

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear in one decoder layer, by Llama module name."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        return {
            "q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
        }

    def linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.linear_shapes().values())

    def other_params(self) -> int:
        emb = self.vocab * self.hidden
        return emb * (1 if self.tie_embeddings else 2) + (2 * self.layers + 1) * self.hidden

    def n_params(self) -> int:
        return self.linear_params() + self.other_params()

    def lora_params(self, r: int, targets: list[str]) -> int:
        shapes = self.linear_shapes()
        return self.layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in targets if t in shapes)


# Shapes used by the docs, the tests and bench/finetune.py (from the published config.json files).
LLAMA2_7B = ModelShape(hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32, vocab=32000)
LLAMA3_8B = ModelShape(hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, vocab=128256)


@dataclass
class MemoryEstimate:
    parts: dict[str, float]  # bytes by part
    budget_gb: float | None = None
    suggestions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def total_gb(self) -> float:
        return self.total / GIB

    @property
    def fits(self) -> bool:
        return self.budget_gb is None or self.total_gb <= self.budget_gb

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in self.parts.items())
        budget = f" of {self.budget_gb:.1f} GiB" if self.budget_gb is not None else " (no GPU budget known)"
        return f"memory estimate {self.total_gb:.1f} GiB{budget} ({parts} GiB)"


def estimate(shape: ModelShape, cfg: FinetuneConfig) -> MemoryEstimate:
    """Peak training memory in bytes, by part (see the module docstring for the formulas)."""
    t, d = cfg.train, cfg.data
    wbytes = _DTYPE_BYTES[cfg.torch_dtype_name()]
    if cfg.quantization.load_in_4bit:
        const = 1 / 64 + 4 / (64 * 256) if cfg.quantization.double_quant else 4 / 64
        weights = shape.linear_params() * (0.5 + const) + shape.other_params() * 2
    else:
        weights = shape.n_params() * wbytes
    lora = shape.lora_params(cfg.lora.r, cfg.lora.target_modules) * 16
    act = 2 if (t.bf16 or wbytes == 2) else 4
    tokens = t.micro_batch_size * d.max_seq_len
    per_layer = tokens * (8 * shape.hidden + 4 * shape.intermediate) * act
    if cfg.model.attn_implementation == "eager":
        per_layer += t.micro_batch_size * shape.heads * d.max_seq_len**2 * act * 2
    if t.gradient_checkpointing:
        activations = shape.layers * tokens * shape.hidden * act + per_layer
    else:
        activations = shape.layers * per_layer
    logits = tokens * shape.vocab * (act + 8)
    parts = {"weights": weights, "lora+adam": lora, "activations": activations, "logits": logits}
    parts["overhead"] = GIB + 0.05 * sum(parts.values())
    return MemoryEstimate(parts)


def _with(cfg: FinetuneConfig, **changes: Any) -> FinetuneConfig:
    raw = cfg.model_dump()
    for key, value in changes.items():
        section, name = key.split("__")
        raw[section][name] = value
    return FinetuneConfig.model_validate(raw)


def _candidates(cfg: FinetuneConfig) -> list[tuple[str, FinetuneConfig]]:
    """Single changes that lower memory, each as (``--set`` text, changed config)."""
    out: list[tuple[str, FinetuneConfig]] = []
    t = cfg.train
    if not t.gradient_checkpointing:
        out.append(("train.gradient_checkpointing=true", _with(cfg, train__gradient_checkpointing=True)))
    if cfg.model.attn_implementation == "eager":
        out.append(("model.attn_implementation=sdpa", _with(cfg, model__attn_implementation="sdpa")))
    if cfg.torch_dtype_name() == "float32":
        out.append(("model.dtype=bfloat16", _with(cfg, model__dtype="bfloat16")))
    if not cfg.quantization.load_in_4bit:
        text = "quantization.load_in_4bit=true" + (" model.dtype=bfloat16" if cfg.model.dtype == "float32" else "")
        dtype = "bfloat16" if cfg.model.dtype == "float32" else cfg.model.dtype
        out.append((text, _with(cfg, quantization__load_in_4bit=True, model__dtype=dtype)))
    mb, accum = t.micro_batch_size, t.grad_accum_steps
    while mb > 1:
        mb //= 2
        accum *= 2
        out.append(
            (
                f"train.micro_batch_size={mb} train.grad_accum_steps={accum}",
                _with(cfg, train__micro_batch_size=mb, train__grad_accum_steps=accum),
            )
        )
    seq = cfg.data.max_seq_len
    while seq > 512:
        seq //= 2
        out.append((f"data.max_seq_len={seq}", _with(cfg, data__max_seq_len=seq)))
    return out


def check_fits(shape: ModelShape, cfg: FinetuneConfig, budget_gb: float | None) -> MemoryEstimate:
    """Estimate and refuse a config that cannot fit ``budget_gb``, listing changes that would fit."""
    est = replace(estimate(shape, cfg), budget_gb=budget_gb)
    if est.fits or budget_gb is None:
        return est
    single = []
    for text, alt in _candidates(cfg):
        alt_gb = estimate(shape, alt).total_gb
        if alt_gb <= budget_gb:
            single.append(f"{_as_flags(text)} ({alt_gb:.1f} GiB)")
    if not single:  # combine the changes in order until it fits; later values of a key replace earlier ones
        changes: dict[str, str] = {}
        for text, _ in _candidates(cfg):
            for kv in text.split():
                key, _, val = kv.partition("=")
                changes[key] = val
            cur = _with(cfg, **{k.replace(".", "__"): _parse(v) for k, v in changes.items()})
            gb = estimate(shape, cur).total_gb
            if gb <= budget_gb:
                single.append(f"{_as_flags(' '.join(f'{k}={v}' for k, v in changes.items()))} ({gb:.1f} GiB)")
                break
    est.suggestions = single
    how = (
        "; changes that fit: " + "; ".join(single[:4])
        if single
        else "; no change of checkpointing, dtype, 4-bit, micro-batch or sequence length fits: use a smaller model "
        "or a larger GPU"
    )
    raise ConfigError(
        f"{est.summary()}: this config does not fit hardware.gpu_memory_gb={budget_gb:.1f}{how} "
        "(or --set hardware.check_memory=false to try anyway)"
    )


def _as_flags(text: str) -> str:
    return " ".join(f"--set {kv}" for kv in text.split())


def _parse(val: str) -> Any:
    import yaml

    return yaml.safe_load(val)


def read_model_config(name_or_path: str) -> dict[str, Any]:
    """config.json of a local folder or a Hub model (fetches only that small file). No weights are read."""
    local = Path(name_or_path)
    if local.is_dir():
        cfg_file = local / "config.json"
        if not cfg_file.is_file():
            raise MissingResourceError(f"base model folder {local} has no config.json; is it a transformers model?")
        return dict(json.loads(cfg_file.read_text(encoding="utf-8")))
    try:
        from transformers import AutoConfig

        return dict(AutoConfig.from_pretrained(name_or_path).to_dict())
    except (OSError, ValueError) as e:
        raise MissingResourceError(
            f"base model {name_or_path!r} not found: it is not a local folder, and the Hub could not provide it "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Pass --base-model PATH to a "
            "local model folder, or run online once so the Hub cache has it"
        ) from None


def detect_budget_gb(cfg: FinetuneConfig) -> float | None:
    """``hardware.gpu_memory_gb``, else the CUDA device's total memory, else None (CPU: no GPU check)."""
    if cfg.hardware.gpu_memory_gb is not None:
        return cfg.hardware.gpu_memory_gb
    if cfg.hardware.device == "cpu":
        return None
    import torch

    if torch.cuda.is_available():
        return float(torch.cuda.get_device_properties(0).total_memory) / GIB
    return None
