from __future__ import annotations

from pathlib import Path

import pytest

from curate.errors import ConfigError
from curate.train.config import FinetuneConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_a100_yaml_is_the_builtin_defaults() -> None:
    assert load_config(ROOT / "pipelines/finetune/lora-a100.yaml") == FinetuneConfig()


def test_qlora_yaml_validates_to_4bit_with_global_batch_32() -> None:
    cfg = load_config(ROOT / "pipelines/finetune/lora-24gb-qlora.yaml")
    assert cfg.quantization.load_in_4bit and cfg.torch_dtype_name() == "bfloat16"
    assert cfg.train.global_batch_size == 32


def test_unknown_keys_are_reported_with_their_location(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("lora:\n  rank: 8\ntrain:\n  learning_rat: 1e-4\nextra_section: {}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "lora.rank: unknown key" in msg
    assert "train.learning_rat: unknown key; did you mean 'learning_rate'?" in msg
    assert "extra_section: unknown key" in msg
    assert str(p) in msg


def test_wrong_type_and_bad_set_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"train\.micro_batch_size: .*\(got 'many'\)"):
        load_config(None, ["train.micro_batch_size=many"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["train.learning_rate"])
    with pytest.raises(ConfigError, match="--set data.max_seq_len: .data. is a value, not a section"):
        load_config(None, ["data=3", "data.max_seq_len=5"])


def test_set_values_are_yaml_and_named_flags_win() -> None:
    cfg = load_config(
        None,
        ["lora.target_modules=[q_proj,v_proj]", "train.learning_rate=1e-4", "train.max_steps=5"],
        {"train.max_steps": 30, "model.name_or_path": "1e5"},
    )
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.train.learning_rate == pytest.approx(1e-4)
    assert cfg.train.max_steps == 30
    assert cfg.model.name_or_path == "1e5"  # a named flag is never YAML-parsed into a number


def test_4bit_with_float32_base_is_refused() -> None:
    with pytest.raises(ConfigError, match="load_in_4bit needs a 16-bit compute dtype"):
        load_config(None, ["quantization.load_in_4bit=true", "model.dtype=float32"])
