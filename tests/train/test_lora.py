"""A real (tiny, locally built) Llama trained with LoRA on CPU: weights, loss, eval, reload/merge, resume, CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from curate.cli import main
from curate.errors import ConfigError, MissingResourceError
from curate.train.trainer import TrainResult, prepare, resolve_device, train


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def trained(tiny_model: Path, tiny_export: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    from curate.train.config import FinetuneConfig

    cfg = FinetuneConfig.model_validate({
        "model": {"name_or_path": str(tiny_model)},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "o_proj", "up_proj"]},
        "data": {"max_seq_len": 256, "packing": True},
        "train": {"bf16": False, "gradient_checkpointing": True, "micro_batch_size": 2, "grad_accum_steps": 2,
                  "learning_rate": 2e-2, "warmup_ratio": 0.0, "max_steps": 24, "epochs": 1, "logging_steps": 4,
                  "save_steps": 100, "progress": False},
        "hardware": {"device": "cpu"},
        "output": {"dir": str(tmp_path_factory.mktemp("run") / "out")},
    })
    return train(prepare(tiny_export, cfg, log=quiet), log=quiet)


def test_adapter_changes_and_base_does_not(trained: TrainResult, tiny_model: Path) -> None:
    import torch
    from safetensors.torch import load_file

    base = load_file(str(tiny_model / "model.safetensors"))
    now = {k: v for k, v in trained.model.named_parameters()}
    lora_b = [v for k, v in now.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: any change shows
    frozen = {k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in now.items() if "lora_" not in k}
    assert set(frozen) == set(base)
    for name, value in frozen.items():
        assert not value.requires_grad
        assert torch.equal(value, base[name]), name


def test_loss_falls_and_eval_is_logged(trained: TrainResult) -> None:
    m = trained.metrics
    assert m["train_loss_last"] < 0.6 * m["train_loss_first"]
    assert m["eval"] and m["eval"][-1]["step"] == 24 and m["perplexity"] == pytest.approx(2.718281828 ** m["eval_loss"])
    assert m["eval"][-1]["eval_loss"] < m["eval"][0]["eval_loss"]


def test_outputs_metrics_log_and_adapter_reload_merge_generate(trained: TrainResult, tiny_model: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = Path(trained.metrics["output_dir"]) / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    lines = [json.loads(x) for x in (adapter.parent / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["type"] == "train"] == [1, 4, 8, 12, 16, 20, 24]
    assert json.loads((adapter.parent / "metrics.json").read_text())["steps"] == 24

    tok = AutoTokenizer.from_pretrained(str(adapter))
    assert "<|im_start|>" in tok.chat_template  # the template trained with travels with the adapter
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": "What colour is the sky?"}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        adapted = model(**prompt).logits
        merged = model.merge_and_unload()
        torch.testing.assert_close(merged(**prompt).logits, adapted, atol=1e-4, rtol=1e-4)
        gen = merged.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert gen.shape[1] > prompt["input_ids"].shape[1]


def test_resume_continues_from_the_checkpoint_exactly(cfg_for: Callable[..., Any], tiny_export: Path) -> None:
    import torch
    from safetensors.torch import load_file

    common = {"train__lr_scheduler": "constant", "train__save_steps": 2, "lora__dropout": 0.1, "data__eval_split": None}
    straight = cfg_for(train__max_steps=6, **common)
    straight.output.dir += "-straight"
    train(prepare(tiny_export, straight, log=quiet), log=quiet)

    first = cfg_for(train__max_steps=4, **common)
    train(prepare(tiny_export, first, log=quiet), log=quiet)
    with pytest.raises(ConfigError, match="already holds checkpoints.*--resume"):
        train(prepare(tiny_export, first, log=quiet), log=quiet)
    changed = cfg_for(train__max_steps=6, **{**common, "train__learning_rate": 0.5})
    with pytest.raises(ConfigError, match="train.learning_rate: checkpoint 0.01, now 0.5"):
        train(prepare(tiny_export, changed, log=quiet), resume=True, log=quiet)

    second = cfg_for(train__max_steps=6, **common)
    res = train(prepare(tiny_export, second, log=quiet), resume=True, log=quiet)
    assert res.metrics["resumed_from"].endswith("step-0000004") and res.metrics["steps"] == 6
    out = Path(second.output.dir)
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the log continues; no step is repeated
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000004", "step-0000006"]
    a = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(Path(straight.output.dir) / "adapter" / "adapter_model.safetensors"))
    for k in a:  # same weights as an uninterrupted run: optimizer, scheduler, data order and RNG restored
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


def test_resume_without_checkpoint_is_refused(cfg_for: Callable[..., Any], tiny_export: Path) -> None:
    with pytest.raises(MissingResourceError, match="no checkpoint"):
        train(prepare(tiny_export, cfg_for(), log=quiet), resume=True, log=quiet)


def test_bf16_and_4bit_on_cpu_are_refused_with_the_fix(cfg_for: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="--set train.bf16=false"):
        resolve_device(cfg_for(train__bf16=True))
    with pytest.raises(ConfigError, match="QLoRA.*needs a CUDA GPU"):
        resolve_device(cfg_for(quantization__load_in_4bit=True, model__dtype="bfloat16"))


def test_cli_check_and_user_errors(tiny_model: Path, tiny_export: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = ["finetune", str(tiny_export), "--base-model", str(tiny_model), "--output", str(tmp_path / "o"),
            "--set", "train.bf16=false", "--set", "data.max_seq_len=256", "--set", "hardware.device=cpu"]
    assert main([*base, "--check"]) == 0
    out = capsys.readouterr().out
    assert "[[The sky is blue.</s>]]" in out and "check passed" in out
    assert not (tmp_path / "o").exists()  # --check never trains

    assert main([*base, "--set", "data.over_length=fail", "--set", "data.max_seq_len=40", "--check"]) == 2
    assert "is cut by truncation" in capsys.readouterr().err
    # the same check guards a training run: it stops before any model is loaded or file written
    assert main([*base, "--set", "data.over_length=fail", "--set", "data.max_seq_len=40"]) == 2
    assert "is cut by truncation" in capsys.readouterr().err and not (tmp_path / "o").exists()
    cpu = ["--set", "train.bf16=false"]
    assert main(["finetune", str(tiny_export), "--base-model", str(tmp_path / "missing"), *cpu]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["finetune", str(tiny_export), "--set", "lora.rank=4"]) == 2
    assert "lora.rank: unknown key" in capsys.readouterr().err
    assert main(["finetune", str(tmp_path / "no-export"), "--base-model", str(tiny_model), *cpu]) == 2
    assert "curate export" in capsys.readouterr().err


def test_cli_trains_and_merges(tiny_model: Path, tiny_export: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    rc = main(["finetune", str(tiny_export), "--base-model", str(tiny_model), "--output", str(tmp_path / "o"),
               "--max-steps", "3", "--merge", "--set", "train.bf16=false", "--set", "train.progress=false",
               "--set", "train.micro_batch_size=4", "--set", "data.max_seq_len=256", "--set", "hardware.device=cpu"])
    assert rc == 0
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "o" / "merged"))
    assert not any("lora" in k for k in merged.state_dict())
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["steps"] == 3
