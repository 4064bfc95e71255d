"""The fine-tune config: one validated pydantic model, loaded from YAML, overridable from the command line.

Unknown keys are errors that name their location (``lora.rank: unknown key; did you mean 'r'?``), so a
misspelt setting never trains silently with a default. The defaults are the A100 80 GB / 7-8B recipe
(``pipelines/finetune/lora-a100.yaml``); docs/finetune.md explains each choice beside GPT4All's.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curate.errors import ConfigError

TemplateName = Literal["alpaca", "vicuna", "chatml"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Strict):
    name_or_path: str = Field(
        "meta-llama/Llama-3.1-8B",
        description="Base model: a local folder (offline) or a Hub name (needs network the first time).",
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Dtype of the frozen base weights; auto = bfloat16 when train.bf16 else float32."
    )
    attn_implementation: Literal["sdpa", "eager"] = Field(
        "sdpa", description="Attention kernel; sdpa is memory-efficient (no seq^2 activation)."
    )
    chat_template: Literal["auto", "model", "alpaca", "vicuna", "chatml"] = Field(
        "auto",
        description="auto: the model's own template when it has one, else `default_template`; "
        "model: require the model's own; or force a named default.",
    )
    default_template: TemplateName = Field("chatml", description="Template used when the model has none.")


class LoraSettings(_Strict):
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA alpha; the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Linear module names that get adapters (Llama naming).",
    )


class QuantizationConfig(_Strict):
    load_in_4bit: bool = Field(False, description="QLoRA: load the frozen base in 4-bit (bitsandbytes, CUDA).")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (nf4 from the QLoRA paper).")
    double_quant: bool = Field(True, description="Quantise the quantisation constants too (~0.37 bit/param saved).")


class DataConfig(_Strict):
    train_split: str = Field("train", description="Split name of data/<split>-*-of-*.parquet to train on.")
    eval_split: str | None = Field(
        "validation", description="Split evaluated each epoch; null skips evaluation."
    )
    max_seq_len: int = Field(2048, ge=16, description="Tokens per training sequence.")
    packing: bool = Field(
        False,
        description="Pack several conversations into one sequence; attention stays within each "
        "conversation (position ids restart, so transformers builds a block-diagonal mask).",
    )
    over_length: Literal["drop_turns", "drop", "fail"] = Field(
        "drop_turns",
        description="A conversation longer than max_seq_len: drop_turns keeps the leading whole turns "
        "up to the last assistant turn that fits; drop removes it; fail stops (--check reports it).",
    )
    max_dropped_frac: float = Field(
        0.05, ge=0.0, le=1.0, description="Fail when more than this fraction of conversations is dropped."
    )
    max_convs: int | None = Field(None, gt=0, description="Use only the first N training conversations.")


class TrainSettings(_Strict):
    epochs: float = Field(3.0, gt=0, description="Passes over the training split (may be fractional).")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps (overrides epochs).")
    micro_batch_size: int = Field(8, gt=0, description="Sequences per forward pass.")
    grad_accum_steps: int = Field(4, gt=0, description="Micro-batches per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warm-up.")
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="Fraction of steps with linear warm-up.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay on the LoRA weights.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    bf16: bool = Field(True, description="bf16 autocast (needs a CUDA GPU with bf16, e.g. A100).")
    gradient_checkpointing: bool = Field(True, description="Recompute layer activations in backward.")
    seed: int = Field(13, description="Seeds LoRA init, data order and dropout.")
    logging_steps: int = Field(10, gt=0, description="Write a metrics line every N steps.")
    save_steps: int = Field(200, gt=0, description="Write a resumable checkpoint every N steps.")
    save_total_limit: int = Field(2, gt=0, description="Checkpoints kept (oldest removed first).")
    eval_batch_size: int | None = Field(None, gt=0, description="Eval micro-batch; null = micro_batch_size.")
    max_eval_convs: int | None = Field(None, gt=0, description="Evaluate on at most N validation conversations.")
    progress: bool = Field(True, description="Show a tqdm progress bar.")

    @property
    def global_batch_size(self) -> int:
        return self.micro_batch_size * self.grad_accum_steps


class HardwareConfig(_Strict):
    device: Literal["auto", "cuda", "cpu"] = Field("auto", description="auto = cuda when available.")
    gpu_memory_gb: float | None = Field(
        None, gt=0, description="Memory budget for the estimate; null = the detected CUDA device's memory."
    )
    check_memory: bool = Field(True, description="Refuse a config whose memory estimate does not fit.")


class CheckConfig(_Strict):
    show: int = Field(3, ge=0, description="Conversations rendered with supervised spans marked [[...]].")


class OutputConfig(_Strict):
    dir: str = Field("finetune-out", description="Output folder: adapter/, metrics.json, metrics.jsonl, checkpoints/.")
    merge: bool = Field(False, description="Also write merged full weights to <dir>/merged.")
    gguf: Literal["f32", "f16", "q8_0", "q4_0"] | None = Field(
        None, description="Also write <dir>/model-<type>.gguf from the merged weights (Llama only; implies merge)."
    )


class FinetuneConfig(_Strict):
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    quantization: QuantizationConfig = Field(default_factory=QuantizationConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainSettings = Field(default_factory=TrainSettings)
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    check: CheckConfig = Field(default_factory=CheckConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _coherent(self) -> FinetuneConfig:
        if self.quantization.load_in_4bit and self.model.dtype == "float32":
            raise ValueError(
                "quantization.load_in_4bit needs a 16-bit compute dtype; set model.dtype=bfloat16 (or auto)"
            )
        return self

    def torch_dtype_name(self) -> str:
        """Dtype of the frozen base weights after resolving ``auto``."""
        if self.model.dtype != "auto":
            return self.model.dtype
        return "bfloat16" if (self.train.bf16 or self.quantization.load_in_4bit) else "float32"


# Keys a resumed run may change: they do not alter what the checkpoint's optimizer state means.
RESUME_MUTABLE = {
    "train.max_steps", "train.epochs", "train.logging_steps", "train.save_steps", "train.save_total_limit",
    "train.progress", "train.eval_batch_size", "output.merge", "output.gguf", "output.dir", "check.show",
    "hardware.device", "hardware.gpu_memory_gb", "hardware.check_memory",
}


def _loc(parts: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _fields_at(parts: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = FinetuneConfig
    for p in parts:
        field = model.model_fields.get(str(p))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _problems(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = _loc(loc)
        if e["type"] == "extra_forbidden":
            options = _fields_at(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(f"{where}: unknown key{hint} (allowed here: {', '.join(options)})")
        else:
            msg = e["msg"]
            if e["type"] != "value_error" and "input" in e:
                msg += f" (got {e['input']!r})"
            out.append(f"{where}: {msg}")
    return out


def validate_config(raw: dict[str, Any], origin: str = "config") -> FinetuneConfig:
    """Validate a config mapping; every problem is reported with its key path. Raises ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return FinetuneConfig.model_validate(raw)
    except ValidationError as e:
        lines = "\n  ".join(_problems(e))
        raise ConfigError(f"{origin}: invalid fine-tune config:\n  {lines}") from None


def apply_sets(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set section.key=value`` overrides; values are parsed as YAML (``[q_proj,v_proj]``, ``1e-4``)."""
    raw = copy.deepcopy(raw)
    for ov in overrides:
        key, sep, text = ov.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {ov!r}: expected key=value, e.g. --set train.learning_rate=1e-4")
        value = yaml.safe_load(text) if text else ""
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
            node = nxt
        node[parts[-1]] = value
    return raw


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, named: dict[str, Any] | None = None
) -> FinetuneConfig:
    """Read a YAML config (or the built-in defaults when ``path`` is None), then apply ``--set`` overrides,
    then the named flags (``{"train.max_steps": 30}``, values taken as given, never YAML-parsed)."""
    raw: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found (e.g. --config pipelines/finetune/lora-a100.yaml)")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        origin = str(p)
    if overrides:
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level")
        raw = apply_sets(raw, overrides)
        origin += " + --set"
    for key, value in (named or {}).items():
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level")
        section, name = key.split(".")
        node = raw.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{origin}: {section} must be a mapping")
        node[name] = value
    return validate_config(raw, origin)


def flat(cfg: FinetuneConfig) -> dict[str, Any]:
    """``{"train.learning_rate": 2e-4, ...}``: for resume comparison and the metrics file."""
    out: dict[str, Any] = {}
    for section, values in cfg.model_dump(mode="json").items():
        for k, v in values.items():
            out[f"{section}.{k}"] = v
    return out
