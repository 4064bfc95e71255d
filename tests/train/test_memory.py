from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.errors import ConfigError, MissingResourceError
from curate.train.config import FinetuneConfig, load_config
from curate.train.memory import LLAMA2_7B, LLAMA3_8B, ModelShape, check_fits, estimate, read_model_config


def test_shape_counts_llama2_7b_parameters() -> None:
    # Llama-2-7B has 6.74B parameters (published figure).
    assert LLAMA2_7B.n_params() == pytest.approx(6.74e9, rel=0.005)
    assert LLAMA3_8B.n_params() == pytest.approx(8.03e9, rel=0.005)


def test_refuses_7b_fp32_seq8192_without_checkpointing_on_24gb() -> None:
    cfg = load_config(None, ["model.dtype=float32", "data.max_seq_len=8192", "train.gradient_checkpointing=false"])
    with pytest.raises(ConfigError) as e:
        check_fits(LLAMA2_7B, cfg, 24.0)
    msg = str(e.value)
    assert "does not fit hardware.gpu_memory_gb=24.0" in msg
    assert "--set train.gradient_checkpointing=true" in msg and "quantization.load_in_4bit=true" in msg


def test_accepts_default_config_on_80gb_and_qlora_on_24gb() -> None:
    assert check_fits(LLAMA3_8B, FinetuneConfig(), 80.0).fits
    assert check_fits(LLAMA2_7B, FinetuneConfig(), 80.0).fits
    qlora = load_config(Path(__file__).resolve().parents[2] / "pipelines/finetune/lora-24gb-qlora.yaml")
    est = check_fits(LLAMA3_8B, qlora, 24.0)
    assert est.total_gb < 24.0
    # the default (16-bit) config itself would not fit 24 GB
    with pytest.raises(ConfigError):
        check_fits(LLAMA3_8B, FinetuneConfig(), 24.0)


def test_checkpointing_and_4bit_lower_the_estimate_where_expected() -> None:
    base = FinetuneConfig()
    no_ckpt = load_config(None, ["train.gradient_checkpointing=false"])
    q4 = load_config(None, ["quantization.load_in_4bit=true"])
    e, n, q = estimate(LLAMA3_8B, base), estimate(LLAMA3_8B, no_ckpt), estimate(LLAMA3_8B, q4)
    assert n.parts["activations"] > 10 * e.parts["activations"]
    assert q.parts["weights"] < 0.4 * e.parts["weights"]
    assert q.parts["lora+adam"] == e.parts["lora+adam"]
    with pytest.raises(ConfigError, match=r"--set train.gradient_checkpointing=true \("):
        check_fits(LLAMA3_8B, no_ckpt, 80.0)


def test_reads_config_json_of_a_local_folder_and_names_a_missing_model(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(
        json.dumps({"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
                    "num_attention_heads": 4, "vocab_size": 600})
    )
    shape = ModelShape.from_config(read_model_config(str(tmp_path / "m")))
    assert shape.kv_heads == 4 and shape.layers == 2
    with pytest.raises(MissingResourceError, match="not found.*--base-model"):
        read_model_config("no-such-org/no-such-model-xyz")
    with pytest.raises(ConfigError, match="intermediate_size"):
        ModelShape.from_config({"hidden_size": 1})
