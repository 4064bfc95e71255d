"""The LoRA training loop: a plain torch loop, so every step on a CPU or one GPU is easy to follow.

Order of a run (``prepare`` then ``train``): dataset shards exist -> device/bf16/4-bit are possible ->
memory estimate from config.json (no weights loaded) -> tokenizer + chat template -> tokenise and
``--check`` -> load the base -> LoRA -> train with eval each epoch -> adapter, metrics, optional merge.

Loss is summed over supervised tokens of all micro-batches of an optimizer step and divided by their
count, so gradient accumulation weights every assistant token equally. Data order is a function of
(seed, epoch) and the step counter, so ``--resume`` restores adapter, optimizer, scheduler and RNG state
and continues exactly where the checkpoint left off.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curate.errors import ConfigError, MissingResourceError
from curate.train.check import run_check
from curate.train.config import RESUME_MUTABLE, FinetuneConfig, flat
from curate.train.data import (
    IGNORE,
    Conversation,
    Encoded,
    collate,
    encode,
    load_split,
    pack_units,
    split_files,
)
from curate.train.memory import MemoryEstimate, ModelShape, check_fits, detect_budget_gb, read_model_config
from curate.train.templates import resolve_template

Log = Callable[[str], None]


@dataclass
class Prepared:
    """Everything decided before the model is loaded."""

    cfg: FinetuneConfig
    dataset_dir: Path
    device: str
    tokenizer: Any
    template: str
    template_label: str
    train: Encoded
    eval: Encoded | None
    memory: MemoryEstimate
    report: str
    convs: list[Conversation] = field(default_factory=list)


def resolve_device(cfg: FinetuneConfig) -> str:
    """Pick the device and refuse settings it cannot run (bf16 or 4-bit on a CPU, missing bitsandbytes)."""
    import torch

    want = cfg.hardware.device
    has_cuda = torch.cuda.is_available()
    if want == "cuda" and not has_cuda:
        raise ConfigError("hardware.device=cuda but no CUDA GPU is visible; use --set hardware.device=auto")
    device = "cuda" if (want != "cpu" and has_cuda) else "cpu"
    if cfg.train.bf16:
        if device == "cpu":
            raise ConfigError(
                "train.bf16=true needs a CUDA GPU with bf16 (A100, H100, RTX 30xx or newer); on a CPU pass "
                "--set train.bf16=false"
            )
        if not torch.cuda.is_bf16_supported():
            raise ConfigError("train.bf16=true but this GPU has no bf16 support; pass --set train.bf16=false")
    if cfg.quantization.load_in_4bit:
        if device == "cpu":
            raise ConfigError(
                "quantization.load_in_4bit=true (QLoRA) needs a CUDA GPU: bitsandbytes 4-bit kernels do not run "
                "on a CPU; pass --set quantization.load_in_4bit=false"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise MissingResourceError(
                "quantization.load_in_4bit=true needs bitsandbytes: pip install 'curate[qlora]'"
            ) from None
    return device


def load_tokenizer(name_or_path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise MissingResourceError(f"base model {name_or_path!r}: cannot load its tokenizer ({e})") from None
    if not getattr(tok, "is_fast", False):
        raise ConfigError(
            f"base model {name_or_path!r} has only a slow tokenizer; assistant masks need character offsets "
            "from a fast (tokenizers) tokenizer: convert it with transformers and save it next to the model"
        )
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # pad positions are masked out of attention and loss
    return tok


def prepare(dataset_dir: str | Path, cfg: FinetuneConfig, log: Log = print) -> Prepared:
    """Validate everything that can fail before the (slow, large) model load. Raises CheckError on --check failures."""
    root = Path(dataset_dir)
    split_files(root, cfg.data.train_split)
    if cfg.data.eval_split is not None:
        split_files(root, cfg.data.eval_split)
    device = resolve_device(cfg)
    shape_cfg = read_model_config(cfg.model.name_or_path)
    if cfg.output.gguf:  # refuse before training what the GGUF writer cannot take
        from types import SimpleNamespace

        from curate.train.gguf import check_architecture, gguf_available

        gguf_available()
        check_architecture(SimpleNamespace(**shape_cfg))
    if cfg.hardware.check_memory:
        mem = check_fits(ModelShape.from_config(shape_cfg), cfg, detect_budget_gb(cfg))
    else:
        mem = MemoryEstimate({})
    if mem.parts:
        log(mem.summary())
    tok = load_tokenizer(cfg.model.name_or_path)
    template, label = resolve_template(cfg.model.chat_template, cfg.model.default_template, tok)
    convs = load_split(root, cfg.data.train_split, limit=cfg.data.max_convs)
    d = cfg.data
    enc = encode(convs, tok, template, d.max_seq_len, d.over_length, keep_rendered=cfg.check.show)
    report = run_check(enc, convs, tok, label, d.max_dropped_frac, cfg.check.show, d.train_split)
    ev = None
    if d.eval_split is not None:
        ev_convs = load_split(root, d.eval_split, limit=cfg.train.max_eval_convs)
        ev = encode(ev_convs, tok, template, d.max_seq_len, d.over_length)
        report += "\n" + run_check(ev, ev_convs, tok, label, d.max_dropped_frac, 0, d.eval_split)
    return Prepared(cfg, root, device, tok, template, label, enc, ev, mem, report, convs)


# --- model ----------------------------------------------------------------------------------------


def load_base(cfg: FinetuneConfig, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "dtype": getattr(torch, cfg.torch_dtype_name()),
        "attn_implementation": cfg.model.attn_implementation,
    }
    if cfg.quantization.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type=cfg.quantization.quant_type,
            bnb_4bit_use_double_quant=cfg.quantization.double_quant,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": 0}
    elif device == "cuda":
        kwargs["device_map"] = {"": 0}  # load straight onto the GPU, not through host memory first
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.model.name_or_path, **kwargs)
    except OSError as e:
        raise MissingResourceError(f"base model {cfg.model.name_or_path!r}: cannot load its weights ({e})") from None
    if device == "cpu":
        model.to(device)  # type: ignore[arg-type]
    return model


def add_lora(model: Any, cfg: FinetuneConfig) -> Any:
    """Wrap the base in LoRA adapters on ``lora.target_modules``; the base stays frozen."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    linear_names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    if cfg.quantization.load_in_4bit:
        import bitsandbytes as bnb

        linear_names |= {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    missing = [t for t in cfg.lora.target_modules if t not in linear_names]
    if missing:
        raise ConfigError(
            f"lora.target_modules: {missing} are not linear layers of this model; it has: "
            f"{', '.join(sorted(linear_names))}"
        )
    gc_kwargs = {"use_reentrant": False}
    if cfg.quantization.load_in_4bit:
        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=cfg.train.gradient_checkpointing, gradient_checkpointing_kwargs=gc_kwargs
        )
    elif cfg.train.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers 5 name; 4.x has only the old one
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=gc_kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
    model.config.use_cache = False
    lcfg = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft calls transformers' renamed `is_gradient_checkpointing`; the notice is for peft, not our users
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lcfg)


def token_loss_sum(model: Any, batch: dict[str, Any], device: str, bf16: bool) -> tuple[Any, int]:
    """Summed cross-entropy over supervised tokens of a batch, and their count."""
    import torch
    import torch.nn.functional as F

    labels = batch["labels"].to(device)
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    with torch.autocast(device_type="cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(**inputs, use_cache=False).logits
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    loss = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return loss, int((shift_labels != IGNORE).sum())


def evaluate(model: Any, enc: Encoded, prep: Prepared) -> dict[str, float]:
    """Token-weighted loss and perplexity over the evaluation split."""
    import torch

    cfg = prep.cfg
    bs = cfg.train.eval_batch_size or cfg.train.micro_batch_size
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for k in range(0, len(enc.examples), bs):
            rows = [[ex] for ex in enc.examples[k : k + bs]]
            loss, n = token_loss_sum(model, collate(rows, prep.tokenizer.pad_token_id, False), prep.device, cfg.train.bf16)
            total += float(loss)
            count += n
    model.train()
    mean = total / max(count, 1)
    return {"eval_loss": mean, "perplexity": math.exp(min(mean, 50.0)), "eval_tokens": count}


# --- checkpoints ----------------------------------------------------------------------------------


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    done = sorted(p for p in ckpt_dir.glob("step-*") if (p / "state.json").is_file()) if ckpt_dir.is_dir() else []
    return done[-1] if done else None


def save_checkpoint(model: Any, opt: Any, sched: Any, step: int, cfg: FinetuneConfig, ckpt_dir: Path) -> Path:
    """Write adapter + optimizer + scheduler + RNG under a temporary name, then rename (never half-written)."""
    import torch

    final = ckpt_dir / f"step-{step:07d}"
    tmp = ckpt_dir / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    torch.save(sched.state_dict(), tmp / "scheduler.pt")
    rng = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
    }
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "config": flat(cfg)}, indent=1), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    kept = sorted(p for p in ckpt_dir.glob("step-*") if (p / "state.json").is_file())
    for old in kept[: -cfg.train.save_total_limit]:
        shutil.rmtree(old)
    return final


def _resume_state(ckpt: Path, cfg: FinetuneConfig) -> dict[str, Any]:
    state = dict(json.loads((ckpt / "state.json").read_text(encoding="utf-8")))
    now = flat(cfg)
    diffs = [
        f"{k}: checkpoint {v!r}, now {now.get(k)!r}"
        for k, v in state["config"].items()
        if k not in RESUME_MUTABLE and now.get(k) != v
    ]
    if diffs:
        raise ConfigError(
            f"--resume: {ckpt} was written with different settings; resume with the same ones or use another "
            "--output:\n  " + "\n  ".join(diffs)
        )
    return state


def _load_checkpoint(model: Any, opt: Any, sched: Any, ckpt: Path) -> None:
    import torch
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    set_peft_model_state_dict(model, load_peft_weights(str(ckpt)))
    opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=False))
    sched.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))
    rng = torch.load(ckpt / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])


# --- training -------------------------------------------------------------------------------------


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(n))
    rng.shuffle(order)
    return order


@dataclass
class TrainResult:
    metrics: dict[str, Any]  # as written to <output>/metrics.json
    model: Any  # the trained PeftModel (None after --merge, which frees it first)


def train(prep: Prepared, resume: bool = False, log: Log = print) -> TrainResult:
    """Train the adapter, write adapter/, metrics.json and checkpoints; optionally merge."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    cfg, t = prep.cfg, prep.cfg.train
    out = Path(cfg.output.dir)
    ckpt_dir = out / "checkpoints"
    latest = latest_checkpoint(ckpt_dir)
    if resume and latest is None:
        raise MissingResourceError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
    if not resume and latest is not None:
        raise ConfigError(
            f"{out} already holds checkpoints (latest {latest.name}); pass --resume to continue that run, "
            "or choose another --output"
        )
    if resume and latest is not None:
        _resume_state(latest, cfg)

    torch.manual_seed(t.seed)
    random.seed(t.seed)
    model = add_lora(load_base(cfg, prep.device), cfg)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    examples = prep.train.examples
    lengths = [len(e.input_ids) for e in examples]
    units = pack_units(lengths, _epoch_order(len(examples), t.seed, -1), cfg.data.max_seq_len, cfg.data.packing)
    per_step = t.micro_batch_size * t.grad_accum_steps
    steps_per_epoch = max(1, math.ceil(len(units) / per_step))
    total = t.max_steps or max(1, math.ceil(t.epochs * steps_per_epoch))
    opt = torch.optim.AdamW(trainable, lr=t.learning_rate, weight_decay=t.weight_decay)
    sched = get_scheduler(
        t.lr_scheduler, opt, num_warmup_steps=round(t.warmup_ratio * total), num_training_steps=total
    )
    step = 0
    if resume and latest is not None:
        _load_checkpoint(model, opt, sched, latest)
        step = int(json.loads((latest / "state.json").read_text(encoding="utf-8"))["step"])
        log(f"resuming from {latest} at step {step} of {total}")

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    n_trainable = sum(p.numel() for p in trainable)
    log(
        f"training {cfg.model.name_or_path} + LoRA r={cfg.lora.r} ({n_trainable:,} trainable params) on {prep.device}: "
        f"{len(examples)} sequences in {len(units)} rows, {steps_per_epoch} steps/epoch, {total} steps"
    )
    metrics_log = (out / "metrics.jsonl").open("a", encoding="utf-8")
    history: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []

    def emit(rec: dict[str, Any]) -> None:
        metrics_log.write(json.dumps(rec) + "\n")
        metrics_log.flush()

    pad = prep.tokenizer.pad_token_id
    train_tokens = 0
    train_seconds = 0.0
    bar = tqdm(total=total, initial=step, disable=not t.progress, desc="finetune", unit="step")
    try:
        while step < total:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            order = _epoch_order(len(units), t.seed, epoch)
            picked = order[in_epoch * per_step : (in_epoch + 1) * per_step]
            chunks = [picked[k : k + t.micro_batch_size] for k in range(0, len(picked), t.micro_batch_size)]
            rows = [[[examples[i] for i in units[u]] for u in chunk] for chunk in chunks]
            batches = [collate(r, pad, cfg.data.packing) for r in rows]
            n_sup = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
            tic = time.perf_counter()
            step_loss = 0.0
            step_tokens = sum(len(ex.input_ids) for r in rows for row in r for ex in row)
            for batch in batches:
                loss, _ = token_loss_sum(model, batch, prep.device, t.bf16)
                (loss / n_sup).backward()
                step_loss += float(loss.detach())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, t.max_grad_norm))
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if prep.device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - tic
            train_seconds += dt
            train_tokens += step_tokens
            step += 1
            rec = {
                "type": "train", "step": step, "epoch": round(step / steps_per_epoch, 4),
                "loss": step_loss / n_sup, "lr": sched.get_last_lr()[0], "grad_norm": grad_norm,
                "tokens": step_tokens, "tokens_per_s": step_tokens / dt if dt > 0 else None,
            }
            history.append(rec)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.4f}")
            if step % t.logging_steps == 0 or step == total or step == 1:
                emit(rec)
            if step % t.save_steps == 0 or step == total:
                save_checkpoint(model, opt, sched, step, cfg, ckpt_dir)
            if prep.eval is not None and (step % steps_per_epoch == 0 or step == total):
                ev = {"type": "eval", "step": step, "epoch": round(step / steps_per_epoch, 4), **evaluate(model, prep.eval, prep)}
                evals.append(ev)
                emit(ev)
                log(f"step {step}: eval loss {ev['eval_loss']:.4f}, perplexity {ev['perplexity']:.2f}")
    finally:
        bar.close()
        metrics_log.close()

    adapter_dir = out / "adapter"
    model.save_pretrained(adapter_dir)
    prep.tokenizer.chat_template = prep.template
    prep.tokenizer.save_pretrained(adapter_dir)
    metrics: dict[str, Any] = {
        "output_dir": str(out),
        "dataset_dir": str(prep.dataset_dir.resolve()),  # curate eval checks its eval set against this train split
        "train_split": cfg.data.train_split,
        "base_model": cfg.model.name_or_path,
        "device": prep.device,
        "template": prep.template_label,
        "steps": step,
        "steps_per_epoch": steps_per_epoch,
        "epochs": round(step / steps_per_epoch, 4),
        "resumed_from": str(latest) if resume and latest is not None else None,
        "trainable_params": n_trainable,
        "train_sequences": len(examples),
        "train_supervised_tokens": prep.train.n_supervised,
        "dropped": dict(prep.train.dropped),
        "train_loss_first": history[0]["loss"] if history else None,
        "train_loss_last": history[-1]["loss"] if history else None,
        "tokens_per_s": train_tokens / train_seconds if train_seconds > 0 else None,
        "eval": evals,
        "eval_loss": evals[-1]["eval_loss"] if evals else None,
        "perplexity": evals[-1]["perplexity"] if evals else None,
        "memory_estimate_gb": round(prep.memory.total_gb, 2) if prep.memory.parts else None,
    }
    if prep.device == "cuda":
        metrics["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    log(f"adapter written to {adapter_dir}")
    if cfg.output.merge or cfg.output.gguf:
        del model, opt
        model = None
        merged = merge_adapter(cfg.model.name_or_path, adapter_dir, out / "merged", cfg)
        log(f"merged weights written to {merged}")
        if cfg.output.gguf:
            metrics["gguf"] = write_merged_gguf(merged, out / f"model-{cfg.output.gguf}.gguf", cfg.output.gguf, log)
            (out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    return TrainResult(metrics, model)


def write_merged_gguf(merged_dir: Path, path: Path, qtype: str, log: Log = print) -> dict[str, Any]:
    """The merged folder as one GGUF file (curate.train.gguf); returns what metrics.json records of it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curate.train.gguf import write_gguf

    # the saved dtype (bf16 after a GPU run): write_gguf converts one tensor at a time
    model = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype="auto")
    result = write_gguf(model, AutoTokenizer.from_pretrained(str(merged_dir)), path, qtype, name=path.parent.name)
    log(result.summary())
    return {"path": str(result.path), "type": qtype, "bytes": result.bytes, "tensor_types": result.tensor_types,
            "f16_fallback": result.fallback}


def merge_adapter(base: str, adapter_dir: Path, out_dir: Path, cfg: FinetuneConfig) -> Path:
    """Reload the base unquantised (16-bit for QLoRA), fold the adapter in and save ready-to-serve weights."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, "bfloat16" if cfg.quantization.load_in_4bit else cfg.torch_dtype_name())
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(out_dir)
    return out_dir
