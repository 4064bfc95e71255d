"""Write a Llama-architecture transformers model as one GGUF file that llama.cpp and GPT4All load.

What llama.cpp's ``convert_hf_to_gguf.py`` does for a Llama, with the ``gguf`` package it ships as gguf-py
(that script itself is not on PyPI):

- hyperparameters under ``llama.*`` (context, widths, heads, RoPE base, RMS-norm epsilon);
- tensor names from gguf's HF-to-GGUF name map (``model.layers.0.self_attn.q_proj.weight`` ->
  ``blk.0.attn_q.weight``);
- the Q and K projections permuted back to the interleaved RoPE layout llama.cpp uses (transformers'
  conversion script permuted Meta's weights for its rotate-half RoPE; ``LlamaModel.permute`` in
  convert_hf_to_gguf undoes it, and transformers' GGUF loader permutes them again on load);
- the tokenizer: ``gpt2`` (byte-level BPE: tokens, types, merges, pre-tokenizer ``gpt-2``) or ``llama``
  (sentencepiece-style BPE with byte fallback: tokens, scores, types), special token ids, whether BOS/EOS
  are added, and the chat template the model was trained with (``tokenizer.chat_template``);
- 2-D weights as F16, or quantised with gguf's numpy quantisers to Q8_0 / Q4_0 (blocks of 32 values
  along a row); 1-D tensors (norms) stay F32 as in llama.cpp. A weight whose rows are not a multiple of
  the block size falls back to F16, as convert_hf_to_gguf does, and the result says which. With Q4_0 the
  output projection is Q8_0, since llama-quantize also keeps it at higher precision (it uses Q6_K, which
  gguf-py cannot write).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import ConfigError, MissingResourceError, check_output_file

QUANT_TYPES = ("f32", "f16", "q8_0", "q4_0")
_BYTE_TOKEN = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise MissingResourceError("GGUF export needs the gguf package: pip install 'curate[gguf]'") from None
    return gguf


def gguf_available() -> None:
    """Raise MissingResourceError now (before a long training run) when the gguf package is missing."""
    _gguf()


def check_quant_type(qtype: str) -> str:
    q = qtype.strip().lower()
    if q not in QUANT_TYPES:
        raise ConfigError(f"--gguf {qtype!r}: unknown type; choose one of {', '.join(QUANT_TYPES)}")
    return q


def check_architecture(config: Any) -> None:
    """Only plain Llama models: other architectures need tensors and keys this writer does not produce."""
    mt = getattr(config, "model_type", None)
    if mt != "llama":
        raise ConfigError(
            f"GGUF export supports Llama-architecture models (model_type llama, e.g. LLaMA, Llama 2, TinyLlama); "
            f"this model is {mt!r}: use llama.cpp's convert_hf_to_gguf.py on the merged folder"
        )
    rope = _rope(config)
    if rope[1] not in (None, "default"):
        raise ConfigError(
            f"GGUF export: RoPE scaling {rope[1]!r} is not supported here (plain RoPE only); use llama.cpp's "
            "convert_hf_to_gguf.py on the merged folder"
        )
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ConfigError("GGUF export: Llama with attention or MLP biases is not supported here")


def _rope(config: Any) -> tuple[float, str | None]:
    params = getattr(config, "rope_parameters", None) or {}
    scaling = getattr(config, "rope_scaling", None) or {}
    theta = params.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type")
    return float(theta), kind


def permute_qk(w: Any, n_head: int, n_head_kv: int) -> Any:
    """convert_hf_to_gguf's ``LlamaModel.permute``: rotate-half RoPE rows back to interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# --- tokenizer -------------------------------------------------------------------------------------


@dataclass
class Vocab:
    model: str  # tokenizer.ggml.model: gpt2 | llama
    pre: str | None  # tokenizer.ggml.pre
    tokens: list[str]
    types: list[int]
    scores: list[float] | None
    merges: list[str]
    special: dict[str, int]  # bos/eos/unk/pad/eot -> id
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool | None


def _types_of(json_part: Any) -> list[str]:
    """Component type names of a tokenizer.json part (a Sequence's members, or the part itself)."""
    if not isinstance(json_part, dict):
        return []
    if json_part.get("type") == "Sequence":
        members = json_part.get("pretokenizers") or json_part.get("decoders") or json_part.get("normalizers") or []
        return [str(m.get("type")) for m in members if isinstance(m, dict)]
    return [str(json_part.get("type"))]


def vocab_of(tokenizer: Any, n_vocab: int) -> Vocab:
    """The GGUF tokenizer metadata of a fast (tokenizers) tokenizer; ``n_vocab`` = the model's embedding rows."""
    gguf = _gguf()
    TT = gguf.TokenType
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("GGUF export needs a fast (tokenizer.json) tokenizer; save one with transformers first")
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise ConfigError(
            f"GGUF export supports BPE tokenizers (byte-level or sentencepiece-style); this one is {model.get('type')!r}"
        )
    pre_types = _types_of(data.get("pre_tokenizer"))
    dec_types = _types_of(data.get("decoder"))
    byte_level = "ByteLevel" in dec_types
    spm = bool(model.get("byte_fallback")) and not byte_level
    if byte_level:
        pre = data.get("pre_tokenizer") or {}
        if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex", True):
            raise ConfigError(
                f"GGUF export: byte-level tokenizer with pre-tokenizer {pre_types}; only GPT-2's (ByteLevel with "
                "its own regex, no prefix space) is mapped to a llama.cpp pre-tokenizer here"
            )
        kind, pre_name = "gpt2", "gpt-2"
    elif spm:
        kind, pre_name = "llama", None
    else:
        raise ConfigError(
            f"GGUF export: tokenizer with pre-tokenizer {pre_types} and decoder {dec_types} is neither byte-level "
            "BPE nor sentencepiece-style BPE with byte fallback"
        )
    if len(tokenizer) > n_vocab:
        raise ConfigError(f"GGUF export: the tokenizer has {len(tokenizer)} tokens but the model only {n_vocab} rows")
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = {int(i): t for i, t in tokenizer.added_tokens_decoder.items()}
    unk_id = tokenizer.unk_token_id
    tokens: list[str] = []
    types: list[int] = []
    scores: list[float] = []
    for i in range(n_vocab):
        tok = by_id.get(i)
        if tok is None:  # embedding rows past the tokenizer (padded vocab), as convert_hf_to_gguf names them
            tokens.append(f"[PAD{i}]")
            types.append(int(TT.UNUSED))
            scores.append(-1000.0)
            continue
        tokens.append(tok)
        if i in added:
            types.append(int(TT.CONTROL if added[i].special else TT.USER_DEFINED))
            scores.append(0.0)
        elif i == unk_id:
            types.append(int(TT.UNKNOWN))
            scores.append(0.0)
        elif spm and _BYTE_TOKEN.match(tok):
            types.append(int(TT.BYTE))
            scores.append(0.0)
        else:
            types.append(int(TT.NORMAL))
            # sentencepiece BPE scores fall with the piece's rank; llama.cpp only compares them
            scores.append(-float(i))
    merges: list[str] = []
    for m in model.get("merges") or []:
        pair = m.split(" ", 1) if isinstance(m, str) else list(m)
        # gguf-py encodes a space inside a merge part as U+0120 + 256, as llama.cpp expects
        merges.append(" ".join("".join(chr(ord(c) + 256) if c == " " else c for c in part) for part in pair))
    special = {
        k: int(v)
        for k, v in {
            "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
            "unk": tokenizer.unk_token_id, "pad": tokenizer.pad_token_id,
        }.items()
        if v is not None
    }
    vocab = tokenizer.get_vocab()
    if "<|im_end|>" in vocab:  # ChatML's end of turn: llama.cpp stops on it (end-of-generation token)
        special["eot"] = int(vocab["<|im_end|>"])
    probe = tokenizer("a")["input_ids"]
    add_bos = bool(probe) and tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id
    add_eos = bool(probe) and tokenizer.eos_token_id is not None and probe[-1] == tokenizer.eos_token_id
    space_prefix = None
    if spm:
        norm = json.dumps(data.get("normalizer")) + json.dumps(data.get("pre_tokenizer"))
        space_prefix = '"Prepend"' in norm or '"prepend_scheme": "first"' in norm or '"prepend_scheme": "always"' in norm
    return Vocab(kind, pre_name, tokens, types, scores if spm else None, merges if not spm else [],
                 special, add_bos, add_eos, space_prefix)


# --- writer ----------------------------------------------------------------------------------------


@dataclass
class GGUFResult:
    path: Path
    qtype: str
    bytes: int
    n_params: int
    tensor_types: dict[str, int]  # ggml type -> tensors
    fallback: list[str] = field(default_factory=list)  # tensors kept at F16 (rows not a multiple of 32)
    tokenizer_model: str = ""
    chat_template: bool = False

    def summary(self) -> str:
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.tensor_types.items()))
        line = (f"wrote {self.path} ({self.bytes / 1e6:.2f} MB, {self.qtype}, {self.n_params:,} params; "
                f"tensors: {types}; tokenizer {self.tokenizer_model}"
                f"{', chat template inside' if self.chat_template else ', no chat template'})")
        if self.fallback:
            line += (f"\nnote: {len(self.fallback)} tensors kept at F16 because their rows are not a multiple of "
                     f"32 ({', '.join(self.fallback[:4])}{', ...' if len(self.fallback) > 4 else ''})")
        return line


def write_gguf(
    model: Any, tokenizer: Any, out_path: str | Path, qtype: str = "f16", name: str | None = None,
    chat_template: str | None = None,
) -> GGUFResult:
    """Write ``model`` (a Llama ``*ForCausalLM``, adapters already merged) and its tokenizer to one GGUF file.

    The file is written under a temporary name and renamed, so a failed export leaves no half file.
    """
    import numpy as np
    import torch

    gguf = _gguf()
    qtype = check_quant_type(qtype)
    out = check_output_file(out_path, "-o")
    cfg = model.config
    check_architecture(cfg)
    n_head = int(cfg.num_attention_heads)
    n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_head)
    hidden = int(cfg.hidden_size)
    head_dim = int(getattr(cfg, "head_dim", None) or hidden // n_head)
    n_layers = int(cfg.num_hidden_layers)
    n_vocab = int(model.get_input_embeddings().weight.shape[0])
    vocab = vocab_of(tokenizer, n_vocab)
    template = chat_template if chat_template is not None else getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")

    GT = gguf.GGMLQuantizationType
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[qtype]
    main_type = {"f32": GT.F32, "f16": GT.F16, "q8_0": GT.Q8_0, "q4_0": GT.Q4_0}[qtype]
    block = gguf.GGML_QUANT_SIZES[main_type][0]
    tied = bool(getattr(cfg, "tie_word_embeddings", False))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    w = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    w.add_name(name or out.stem)
    w.add_file_type(int(ftype))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_vocab_size(n_vocab)
    w.add_context_length(int(cfg.max_position_embeddings))
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(int(cfg.intermediate_size))
    w.add_block_count(n_layers)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    if head_dim * n_head != hidden:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(_rope(cfg)[0])
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))

    w.add_tokenizer_model(vocab.model)
    if vocab.pre:
        w.add_tokenizer_pre(vocab.pre)
    w.add_token_list(vocab.tokens)
    w.add_token_types(vocab.types)
    if vocab.scores is not None:
        w.add_token_scores(vocab.scores)
    if vocab.merges:
        w.add_token_merges(vocab.merges)
    for kind, tid in vocab.special.items():
        getattr(w, f"add_{kind}_token_id")(tid)
    w.add_add_bos_token(vocab.add_bos)
    w.add_add_eos_token(vocab.add_eos)
    if vocab.add_space_prefix is not None:
        w.add_add_space_prefix(vocab.add_space_prefix)
    if template:
        w.add_chat_template(str(template))

    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    kinds: Counter[str] = Counter()
    fallback: list[str] = []
    n_params = 0
    for hf_name, tensor in model.state_dict().items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        gname = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gname is None:
            raise ConfigError(f"GGUF export: tensor {hf_name} has no llama GGUF name; is this a plain Llama?")
        data = tensor.detach().to(torch.float32).cpu().numpy()
        if hf_name.endswith("self_attn.q_proj.weight"):
            data = permute_qk(data, n_head, n_head)
        elif hf_name.endswith("self_attn.k_proj.weight"):
            data = permute_qk(data, n_head, n_kv)
        n_params += int(data.size)
        want = GT.F32 if data.ndim == 1 else main_type
        if want in (GT.Q8_0, GT.Q4_0):
            if gname == "output.weight" and want == GT.Q4_0:
                want = GT.Q8_0
            if data.shape[-1] % block:
                fallback.append(gname)
                want = GT.F16
        if want == GT.F32:
            w.add_tensor(gname, np.ascontiguousarray(data, dtype=np.float32))
        elif want == GT.F16:
            w.add_tensor(gname, np.ascontiguousarray(data, dtype=np.float16))
        else:
            w.add_tensor(gname, gguf.quants.quantize(np.ascontiguousarray(data), want), raw_dtype=want)
        kinds[want.name] += 1
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return GGUFResult(out, qtype, out.stat().st_size, n_params, dict(kinds), fallback, vocab.model, bool(template))


# --- reading back ----------------------------------------------------------------------------------


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Scalar and string metadata of a GGUF file (arrays as their length), and tensor types by count."""
    gguf = _gguf()
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable GGUF file ({e})") from None
    meta: dict[str, Any] = {}
    for key, f in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
            meta[key] = len(f.data)
        else:
            value = f.contents()
            meta[key] = value
    types: Counter[str] = Counter(t.tensor_type.name for t in reader.tensors)
    meta["_tensor_types"] = dict(types)
    meta["_tensors"] = len(reader.tensors)
    return meta


def chat_template_of(path: str | Path) -> str | None:
    template = read_metadata(path).get("tokenizer.chat_template")
    return str(template) if template else None


def compare_with_transformers(gguf_path: str | Path, model: Any, input_ids: Any) -> dict[str, float]:
    """Load the file with transformers' GGUF loader and compare its logits with ``model``'s on ``input_ids``.

    Returns the largest absolute logit difference, the largest logit magnitude (for scale) and the share of
    positions whose top-1 token agrees.
    """
    import torch
    from transformers import AutoModelForCausalLM

    p = Path(gguf_path)
    loaded = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=torch.float32)
    loaded.eval()  # type: ignore[no-untyped-call]
    model.eval()
    with torch.no_grad():
        ref = model(input_ids=input_ids).logits.float()
        got = loaded(input_ids=input_ids).logits.float()
    return {
        "max_abs_diff": float((ref - got).abs().max()),
        "max_abs_logit": float(ref.abs().max()),
        "top1_agreement": float((ref.argmax(-1) == got.argmax(-1)).float().mean()),
        "positions": int(ref.shape[0] * ref.shape[1]),
    }
