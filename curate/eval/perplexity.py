"""Held-out loss and perplexity of a base model and its adapters, on assistant tokens only.

GPT4All's technical report compares models by "ground truth perplexity" on held-out data; here the loss
is the token-weighted mean cross-entropy over the assistant tokens of every turn, masked exactly as in
training (``curate.train.data.encode``: the same template, the same spans, the same truncation), so the
figure of an adapter after training equals what ``curate finetune`` logs as eval loss.

All models are scored on the same token sequences: one tokenizer (they must share the vocabulary) and
one chat template. With ``--template auto`` the template is the one the adapters were trained with
(saved with each adapter); adapters trained with different templates are refused unless a template
is named, since their losses would be over different tokens.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import ConfigError, CurateError
from curate.eval.data import EvalSet
from curate.train.data import IGNORE, Conversation, Encoded, Example, collate, encode, split_files
from curate.train.models import (
    ModelPath,
    adapter_base,
    attach_adapter,
    check_vocab,
    load_model,
    load_tokenizer,
    pick_device,
    torch_dtype,
)
from curate.train.templates import default_template

Log = Callable[[str], None]
TEMPLATE_CHOICES = ("auto", "model", "chatml", "alpaca", "vicuna")
BASE = "base"
BOOTSTRAP = 1000


@dataclass
class Score:
    name: str
    kind: str  # base | adapter | model
    path: str
    loss: float
    perplexity: float
    tokens: int
    conversations: int
    ppl_ci95: tuple[float, float]  # bootstrap over conversations
    seconds: float
    per_conv: list[tuple[float, int]] = field(default_factory=list, repr=False)  # (loss sum, tokens)
    # eval conversations found in the adapter's training split (None: its training data is unknown or gone)
    seen_in_training: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("per_conv")
        d["ppl_ci95"] = list(self.ppl_ci95)
        return d


@dataclass
class PerplexityResult:
    eval_set: str
    template: str  # where the template came from
    conversations: int  # scored
    no_assistant: int  # conversations without an assistant turn: nothing to score
    dropped: dict[str, int]
    truncated: int
    scores: list[Score]
    lower_loss_share: dict[str, float]  # "a < b": share of conversations where a's loss is lower
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "eval_set": self.eval_set, "template": self.template, "conversations": self.conversations,
            "no_assistant": self.no_assistant, "dropped": self.dropped, "truncated": self.truncated,
            "models": [s.to_json() for s in self.scores], "lower_loss_share": self.lower_loss_share,
            "notes": self.notes,
        }

    def table(self) -> str:
        """Plain-text lines for the terminal."""
        base = next((s for s in self.scores if s.kind == BASE), None)
        width = max(len(s.name) for s in self.scores)
        lines = [(f"perplexity on {self.eval_set}: {self.conversations} conversations, "
                 f"{self.scores[0].tokens:,} assistant tokens, template {self.template}")]
        for s in self.scores:
            rel = f"  ({s.perplexity / base.perplexity - 1:+.1%} vs base)" if base and s is not base else ""
            lines.append(f"  {s.name:<{width}}  loss {s.loss:.4f}  perplexity {s.perplexity:10.3f}  "
                         f"[{s.ppl_ci95[0]:.3f}, {s.ppl_ci95[1]:.3f}]{rel}")
        return "\n".join(lines)


def _mean_ppl(loss_sum: float, tokens: int) -> float:
    return math.exp(min(loss_sum / max(tokens, 1), 50.0))


def conv_losses(model: Any, examples: Sequence[Example], pad_id: int, device: str, batch_size: int) -> list[tuple[float, int]]:
    """Summed cross-entropy and supervised-token count of each example (in the given order)."""
    import torch
    import torch.nn.functional as F

    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))  # less padding
    model.eval()
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            batch = collate([[examples[i]] for i in idx], pad_id, False)
            labels = batch.pop("labels").to(device)
            logits = model(**{n: v.to(device) for n, v in batch.items()}, use_cache=False).logits
            shift = logits[:, :-1, :].float()
            target = labels[:, 1:]
            ce = F.cross_entropy(shift.reshape(-1, shift.size(-1)), target.reshape(-1), ignore_index=IGNORE,
                                 reduction="none").view(target.shape)
            sums = ce.sum(dim=1).tolist()
            counts = (target != IGNORE).sum(dim=1).tolist()
            for j, i in enumerate(idx):
                out[i] = (float(sums[j]), int(counts[j]))
    return out


def bootstrap_ci(per_conv: Sequence[tuple[float, int]], n: int = BOOTSTRAP, seed: int = 13) -> tuple[float, float]:
    """95% interval of the token-weighted perplexity, resampling conversations."""
    import numpy as np

    losses = np.array([x for x, _ in per_conv], dtype=np.float64)
    tokens = np.array([t for _, t in per_conv], dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_conv), size=(n, len(per_conv)))
    means = losses[picks].sum(axis=1) / np.maximum(tokens[picks].sum(axis=1), 1)
    lo, hi = np.exp(np.minimum(np.quantile(means, [0.025, 0.975]), 50.0))
    return float(lo), float(hi)


def choose_template(choice: str, ref_tokenizer: Any, base_tokenizer: Any | None,
                    adapter_tokenizers: dict[str, Any]) -> tuple[str, str]:
    """``(template, label)`` for ``--template``; see the module docstring."""
    if choice not in TEMPLATE_CHOICES:
        raise ConfigError(f"--template {choice!r}: choose one of {', '.join(TEMPLATE_CHOICES)}")
    if choice in ("chatml", "alpaca", "vicuna"):
        return default_template(choice, ref_tokenizer), choice
    if choice == "model":
        own = getattr(base_tokenizer, "chat_template", None) if base_tokenizer is not None else None
        if not own:
            raise ConfigError("--template model: the base model's tokenizer has no chat template; use auto or name one")
        return str(own), "the base model's own"
    found: dict[str, list[str]] = {}
    for name, tok in adapter_tokenizers.items():
        t = getattr(tok, "chat_template", None)
        if t:
            found.setdefault(str(t), []).append(name)
    if len(found) > 1:
        groups = "; ".join(", ".join(names) for names in found.values())
        raise ConfigError(
            f"the adapters were trained with different chat templates ({groups}); their losses would be over "
            "different tokens: pass --template chatml|alpaca|vicuna to score all with one"
        )
    if found:
        template, names = next(iter(found.items()))
        return template, f"as trained (saved with adapter {names[0]})"
    own = getattr(base_tokenizer, "chat_template", None) if base_tokenizer is not None else None
    if own:
        return str(own), "the base model's own"
    return default_template("chatml", ref_tokenizer), "chatml (neither the base nor an adapter has one)"


def conv_key(turns: Sequence[Mapping[str, Any]]) -> str:
    """A conversation's identity by content (role and text of every turn), whatever its id in a file."""
    blob = json.dumps([[t["role"], t["content"]] for t in turns], ensure_ascii=False)
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def training_keys(adapter_dir: Path) -> tuple[set[str], str] | None:
    """Content keys of the conversations the adapter trained on, from the dataset its ``metrics.json`` names.

    None when the adapter is not a ``curate finetune`` output or its dataset is no longer there.
    """
    import pyarrow.parquet as pq

    metrics = adapter_dir.parent / "metrics.json"
    try:
        m = json.loads(metrics.read_text(encoding="utf-8"))
        ds, split = str(m["dataset_dir"]), str(m.get("train_split") or "train")
        files = split_files(ds, split)
    except (OSError, ValueError, KeyError, TypeError, CurateError):
        return None
    seen: set[str] = set()
    for f in files:
        for msgs in pq.read_table(f, columns=["messages"]).column("messages").to_pylist():
            seen.add(conv_key(msgs or []))
    return seen, f"{ds} ({split} split)"


def encode_eval(convs: list[Conversation], tokenizer: Any, template: str, max_seq_len: int, label: str) -> tuple[Encoded, int]:
    """Encode with the training masks; conversations without an assistant turn are counted, not scored."""
    scorable = [c for c in convs if any(t["role"] == "assistant" for t in c.turns)]
    no_assistant = len(convs) - len(scorable)
    if not scorable:
        raise ConfigError(
            f"eval set {label} has no assistant tokens to score: none of its {len(convs)} conversations has an "
            "assistant turn"
        )
    enc = encode(scorable, tokenizer, template, max_seq_len, "drop_turns")
    if enc.problems:
        shown = "; ".join(enc.problems[:3])
        more = f" (and {len(enc.problems) - 3} more)" if len(enc.problems) > 3 else ""
        raise ConfigError(f"eval set {label}: the chat template does not fit it: {shown}{more}")
    if not enc.examples:
        raise ConfigError(
            f"eval set {label} has no assistant tokens to score within --max-seq-len {max_seq_len} "
            f"(dropped: {enc.dropped})"
        )
    return enc, no_assistant


def score_models(
    evalset: EvalSet,
    base: str | None,
    entries: Sequence[tuple[str, ModelPath]],
    *,
    template: str = "auto",
    max_seq_len: int = 2048,
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "auto",
    held_out_only: bool = False,
    log: Log = print,
) -> PerplexityResult:
    """Score ``base`` (when given) and each named adapter or model folder on ``evalset``.

    Each adapter's training split (named in its ``metrics.json``) is checked for the eval conversations;
    ``held_out_only`` leaves out every conversation some adapter trained on, so the comparison is fair.
    """
    import time

    names = [n for n, _ in entries]
    if base is not None:
        names.insert(0, BASE)
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique (and {BASE!r} is the base model's): {names}")
    if not names:
        raise ConfigError("nothing to score: pass --base and/or --adapter NAME=DIR / --model NAME=DIR")
    adapters = [(n, r) for n, r in entries if r.kind == "adapter"]
    if adapters and base is None:
        raise ConfigError("--adapter needs --base (the model the adapters were trained on)")
    for n, r in entries:
        if r.kind == "gguf":
            raise ConfigError(f"{n}={r.path}: perplexity needs a transformers model or adapter, not a GGUF file")

    dev = pick_device(device)
    dt = torch_dtype(dtype, dev)
    base_tok = load_tokenizer(base, what="base model") if base is not None else None
    toks = {n: load_tokenizer(r.path, what=r.kind) for n, r in entries}
    adapter_toks = {n: toks[n] for n, _ in adapters}
    ref_name = adapters[0][0] if adapters else (BASE if base is not None else entries[0][0])
    ref_tok: Any = toks.get(ref_name, base_tok)
    for n, tok in [(BASE, base_tok), *toks.items()]:
        if tok is not None and tok.get_vocab() != ref_tok.get_vocab():
            raise ConfigError(
                f"{n}'s tokenizer differs from {ref_name}'s; perplexities over different tokens are not comparable "
                "(an adapter must be scored with the base it was trained on)"
            )
    tmpl, tmpl_label = choose_template(template, ref_tok, base_tok, adapter_toks)
    notes: list[str] = []
    trained = {n: training_keys(r.path) for n, r in adapters}
    convs = evalset.convs
    if held_out_only:
        unknown = [n for n, t in trained.items() if t is None]
        if unknown:
            raise ConfigError(
                f"--held-out-only: the training data of {', '.join(unknown)} is unknown (not a curate finetune output, "
                "or its dataset folder moved), so the eval set cannot be checked against it"
            )
        seen_any = set().union(*(t[0] for t in trained.values() if t is not None))
        convs = [c for c in convs if conv_key(c.turns) not in seen_any]
        if len(convs) < len(evalset.convs):
            notes.append(f"{len(evalset.convs) - len(convs)} eval conversations some adapter trained on were left "
                         "out (--held-out-only)")
        if not convs:
            raise ConfigError(f"--held-out-only: every conversation of {evalset.label} is in some adapter's training data")
    enc, no_assistant = encode_eval(convs, ref_tok, tmpl, max_seq_len, evalset.label)
    kept_ids = {e.id for e in enc.examples}
    scored_keys = [conv_key(c.turns) for c in convs if c.id in kept_ids]
    if no_assistant:
        notes.append(f"{no_assistant} conversations have no assistant turn and were not scored")
    truncated = sum(1 for e in enc.examples if e.truncated)
    if truncated:
        notes.append(f"{truncated} conversations were cut to --max-seq-len {max_seq_len} at a turn boundary")
    log(f"scoring {len(enc.examples)} conversations ({enc.n_supervised:,} assistant tokens) with template {tmpl_label}")
    pad = ref_tok.pad_token_id
    scores: list[Score] = []

    def scored(name: str, kind: str, path: str, model: Any) -> Score:
        t0 = time.perf_counter()
        per = conv_losses(model, enc.examples, pad, dev, batch_size)
        loss_sum = sum(x for x, _ in per)
        tokens = sum(t for _, t in per)
        s = Score(name, kind, path, loss_sum / max(tokens, 1), _mean_ppl(loss_sum, tokens), tokens, len(per),
                  bootstrap_ci(per), round(time.perf_counter() - t0, 2), per)
        log(f"  {name}: loss {s.loss:.4f}, perplexity {s.perplexity:.3f}")
        return s

    if base is not None:
        model = load_model(base, dt, dev, what="base model")
        check_vocab(model, ref_tok, f"base model {base}")
        scores.append(scored(BASE, BASE, base, model))
        for n, r in adapters:
            recorded = adapter_base(r.path)
            if _norm(recorded) != _norm(base):
                notes.append(f"adapter {n} records base {recorded}, scored on --base {base}")
            model = attach_adapter(model, r.path, n, base)
            model.set_adapter(n)
            s = scored(n, "adapter", str(r.path), model)
            known = trained[n]
            if known is not None:
                s.seen_in_training = sum(1 for k in scored_keys if k in known[0])
                if s.seen_in_training:
                    notes.append(f"adapter {n} was trained on {s.seen_in_training} of the {len(scored_keys)} scored "
                                 f"conversations (they are in {known[1]}), so its figure is optimistic: pass "
                                 "--held-out-only to score only what no adapter trained on")
            scores.append(s)
        del model
    for n, r in entries:
        if r.kind == "model":
            model = load_model(r.path, dt, dev)
            check_vocab(model, ref_tok, f"model {r.path}")
            scores.append(scored(n, "model", str(r.path), model))
            del model
    shares: dict[str, float] = {}
    for i, a in enumerate(scores):
        for b in scores[i + 1 :]:
            # a difference below 1e-6 nats per token is float noise (an adapter and its merged copy), not a win
            lower = sum(1 for (la, ta), (lb, tb) in zip(a.per_conv, b.per_conv)
                        if la / max(ta, 1) < lb / max(tb, 1) - 1e-6)
            shares[f"{a.name} < {b.name}"] = round(lower / len(a.per_conv), 4)
    return PerplexityResult(evalset.label, tmpl_label, len(enc.examples), no_assistant, dict(enc.dropped), truncated,
                            scores, shares, notes)


def _norm(path: str) -> str:
    p = Path(path)
    return str(p.resolve()) if p.exists() else path
