"""GGUF round trip on a tiny Llama trained with LoRA: write, read back with gguf, load with transformers' GGUF
loader (logits), load and generate in GPT4All's own bindings; refusals of what the writer cannot take."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from curate.cli import main
from curate.errors import ConfigError
from curate.train.gguf import check_architecture, compare_with_transformers, read_metadata, write_gguf
from curate.train.models import load_merged

from ._models import one_thread

HAS_GPT4ALL = importlib.util.find_spec("gpt4all") is not None
PROMPT = [{"role": "user", "content": "What colour is the sky?"}]


@pytest.fixture(scope="module")
def merged(tiny32_run: dict[str, Any]) -> tuple[Any, Any]:
    with one_thread():
        model, tok, _ = load_merged(tiny32_run["out"])
    return model, tok


def prompt_ids(tok: Any) -> Any:
    text = tok.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    return tok(text + "The sky is blue.", add_special_tokens=False, return_tensors="pt")["input_ids"]


def test_finetune_gguf_writes_a_q8_0_file_with_tokenizer_and_template(tiny32_run: dict[str, Any], merged: Any) -> None:
    path = tiny32_run["out"] / "model-q8_0.gguf"
    assert tiny32_run["metrics"]["gguf"]["path"] == str(path) and (tiny32_run["out"] / "merged" / "config.json").is_file()
    meta = read_metadata(path)
    _, tok = merged
    assert meta["general.architecture"] == "llama" and meta["general.file_type"] == 7  # MOSTLY_Q8_0
    assert meta["llama.embedding_length"] == 64 and meta["llama.feed_forward_length"] == 192
    assert meta["llama.attention.head_count"] == 4 and meta["llama.rope.dimension_count"] == 16
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert meta["tokenizer.ggml.tokens"] == len(tok) == meta["llama.vocab_size"]
    assert meta["tokenizer.ggml.merges"] > 0
    assert meta["tokenizer.ggml.bos_token_id"] == tok.bos_token_id and meta["tokenizer.ggml.eos_token_id"] == tok.eos_token_id
    assert meta["tokenizer.chat_template"] == tok.chat_template and "<|im_start|>" in tok.chat_template
    # 2-D weights quantised, norms kept F32; no output.weight is skipped (the tiny model is untied)
    assert meta["_tensor_types"] == {"Q8_0": 16, "F32": 5}


def test_f32_round_trip_through_transformers_is_exact(merged: Any, tmp_path: Path) -> None:
    """The Q/K permutation written for llama.cpp is undone by transformers' loader: identical logits."""
    model, tok = merged
    r = write_gguf(model, tok, tmp_path / "m.gguf", "f32")
    cmp = compare_with_transformers(r.path, model, prompt_ids(tok))
    assert cmp["max_abs_diff"] < 1e-4 and cmp["top1_agreement"] == 1.0


def test_f16_and_quantised_logits_stay_close(merged: Any, tiny32_run: dict[str, Any], tmp_path: Path) -> None:
    model, tok = merged
    ids = prompt_ids(tok)
    f16 = write_gguf(model, tok, tmp_path / "f16.gguf", "f16")
    q4 = write_gguf(model, tok, tmp_path / "q4.gguf", "q4_0")
    q8 = tiny32_run["out"] / "model-q8_0.gguf"
    c16 = compare_with_transformers(f16.path, model, ids)
    c8 = compare_with_transformers(q8, model, ids)
    c4 = compare_with_transformers(q4.path, model, ids)
    scale = c16["max_abs_logit"]
    assert c16["max_abs_diff"] < 0.01 * scale and c16["top1_agreement"] == 1.0
    assert c8["max_abs_diff"] < 0.1 * scale and c8["top1_agreement"] >= 0.85
    assert c4["max_abs_diff"] < 0.8 * scale and c4["top1_agreement"] >= 0.6
    assert c16["max_abs_diff"] < c8["max_abs_diff"] < c4["max_abs_diff"]
    assert q4.tensor_types == {"Q4_0": 15, "Q8_0": 1, "F32": 5}  # output.weight kept at Q8_0
    assert f16.bytes > q8.stat().st_size > q4.bytes


def test_rows_not_a_multiple_of_32_fall_back_to_f16(tiny_model: Path, tmp_path: Path) -> None:
    """The default tiny model's MLP is 172 wide: its down projections cannot be Q8_0 blocks."""
    model, tok, _ = load_merged(tiny_model)
    r = write_gguf(model, tok, tmp_path / "t.gguf", "q8_0")
    assert r.fallback == ["blk.0.ffn_down.weight", "blk.1.ffn_down.weight"]
    assert r.tensor_types == {"Q8_0": 14, "F16": 2, "F32": 5}
    assert "kept at F16" in r.summary()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_GPT4ALL, reason="the gpt4all bindings are not installed (pip install 'curate[gguf]')")
def test_gpt4all_loads_the_file_and_answers_like_transformers(tiny32_run: dict[str, Any], merged: Any) -> None:
    from curate.train.chat import GGUFChat, TransformersChat

    q8 = tiny32_run["out"] / "model-q8_0.gguf"
    chat = GGUFChat(q8, max_new_tokens=12, temperature=0.0)
    assert chat.g.backend == "cpu"
    hf = TransformersChat(str(tiny32_run["out"]), None, None, max_new_tokens=12, temperature=0.0, device="cpu")
    for q, a in [("What colour is the sky?", "The sky is blue."), ("What do cats say?", "Cats say meow.")]:
        turns = [{"role": "user", "content": q}]
        assert chat.reply(turns) == hf.reply(turns) == a


def test_export_model_command_and_its_check(tiny32_run: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "m.gguf"
    args = ["export-model", str(tiny32_run["out"]), "--gguf", "f16", "-o", str(out)]
    assert main(args + (["--check"] if HAS_GPT4ALL else [])) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "f16" in text and out.is_file()
    assert "top-1 agreement 100.0%" in text
    if HAS_GPT4ALL:
        assert "greedy answer 'The sky is blue.' (same as transformers'" in text


def test_bad_input_gives_one_line_errors(tiny32_run: dict[str, Any], tiny_model: Path, tmp_path: Path,
                                         capsys: Any) -> None:
    out = str(tmp_path / "x.gguf")
    cases = [
        (["export-model", str(tiny32_run["out"]), "--gguf", "q5_k", "-o", out], "unknown type"),
        (["export-model", str(tmp_path / "missing"), "--gguf", "f16", "-o", out], "not found"),
        (["export-model", str(tiny32_run["out"]), "--gguf", "f16", "-o", str(tmp_path / "x.bin")], "ending in .gguf"),
        # an adapter on all linear layers of a 192-wide MLP does not fit the 172-wide default tiny model
        (["export-model", str(tiny32_run["out"]), "--base", str(tiny_model), "--gguf", "f16", "-o", out], "does not fit base"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' loading bar, if any
        assert err.startswith("error: ") and words in err and "Traceback" not in err, err
    assert not Path(out).exists()


def test_unsupported_architecture_is_refused(tiny32_run: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=600)).save_pretrained(folder)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny32_run["model"] / f, folder / f)
    assert main(["export-model", str(folder), "--gguf", "q8_0", "-o", str(tmp_path / "g.gguf")]) == 2
    assert "supports Llama-architecture models" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="RoPE scaling"):
        check_architecture(_Cfg(model_type="llama", rope_scaling={"rope_type": "llama3"}))


def test_finetune_refuses_gguf_for_another_architecture_before_training(tmp_path: Path, tiny32_run: dict[str, Any]) -> None:
    from curate.train.config import FinetuneConfig
    from curate.train.trainer import prepare

    folder = tmp_path / "m"
    shutil.copytree(tiny32_run["model"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "mistral"}))
    c = FinetuneConfig.model_validate({"model": {"name_or_path": str(folder)}, "train": {"bf16": False},
                                       "hardware": {"device": "cpu"}, "output": {"gguf": "q8_0"}})
    with pytest.raises(ConfigError, match="GGUF export supports Llama"):
        prepare(tiny32_run["export"], c)


class _Cfg:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def spm_llama(folder: Path) -> Path:
    """A LLaMA-style tokenizer (sentencepiece-like BPE with byte fallback, space prefix, BOS added) and a tiny Llama
    with grouped-query attention (2 KV heads for 4 query heads), so K's permutation uses the KV head count."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(["The sky is blue. What colour is the sky? Cats say meow. Two plus two is four."] * 20,
                            trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
                      initializer_range=0.1)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_sentencepiece_style_vocab_and_grouped_kv_heads(tmp_path: Path) -> None:
    model, tok, _ = load_merged(spm_llama(tmp_path / "spm"))
    r = write_gguf(model, tok, tmp_path / "spm.gguf", "f32", chat_template="{{ messages[0]['content'] }}")
    meta = read_metadata(r.path)
    assert meta["tokenizer.ggml.model"] == "llama" and "tokenizer.ggml.pre" not in meta
    assert meta["tokenizer.ggml.scores"] == meta["tokenizer.ggml.tokens"] == len(tok)
    assert meta["tokenizer.ggml.add_bos_token"] is True and meta["tokenizer.ggml.add_space_prefix"] is True
    assert meta["llama.attention.head_count_kv"] == 2
    ids = tok("Cats say meow. Two plus two is four.", return_tensors="pt")["input_ids"]
    cmp = compare_with_transformers(r.path, model, ids)
    assert cmp["max_abs_diff"] < 1e-4 and cmp["top1_agreement"] == 1.0
    if not HAS_GPT4ALL:
        return
    import torch

    from curate.train.chat import open_gpt4all

    g = open_gpt4all(r.path, n_ctx=256)
    lengths = []
    for prompt in ("Two plus two", "meow meow", "is four. The"):
        got: list[int] = []
        g.model.prompt_model(prompt, "%1", lambda i, s, got=got: got.append(i) or True, n_predict=8, temp=0.0, top_k=1,
                             repeat_penalty=1.0, reset_context=True, special=True)
        ids = tok(prompt, return_tensors="pt")["input_ids"]  # BOS added, as llama.cpp adds it
        with torch.no_grad():
            want = model.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=2, pad_token_id=2)
        want_ids = [i for i in want[0, ids.shape[1]:].tolist() if i != 2]
        # gpt4all reports a byte token >= 0x80 only once its UTF-8 character is complete
        high = {tok.convert_tokens_to_ids(f"<0x{b:02X}>") for b in range(0x80, 0x100)}
        assert [i for i in got if i not in high] == [i for i in want_ids if i not in high], prompt
        lengths.append(len(got))
    assert max(lengths) >= 4  # llama.cpp tokenised the prompts as transformers did and ran the same model
