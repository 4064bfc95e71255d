"""Answers to compare: generated locally with transformers (greedy), or read from a JSONL file.

An answer file has one ``{"id": ..., "answer": "..."}`` per line; ``curate eval`` writes the answers it
generates in that form (``answers/<name>.jsonl``, with the prompt turns), so a second eval can reuse them
with ``--answers NAME=FILE`` instead of generating again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.errors import ConfigError, MissingResourceError
from curate.eval.data import Prompt
from curate.train.data import DatasetError


def stop_ids(tokenizer: Any) -> list[int]:
    """EOS, and ChatML's ``<|im_end|>`` when the vocabulary has it: where an answer ends."""
    ids = [int(tokenizer.eos_token_id)] if tokenizer.eos_token_id is not None else []
    im_end = tokenizer.get_vocab().get("<|im_end|>")
    if im_end is not None and im_end not in ids:
        ids.append(int(im_end))
    return ids


def render_prompt(tokenizer: Any, template: str, turns: Sequence[dict[str, str]]) -> str:
    return str(tokenizer.apply_chat_template(list(turns), chat_template=template, tokenize=False,
                                             add_generation_prompt=True))


def generate(
    model: Any, tokenizer: Any, template: str, prompts: Sequence[Prompt], *, max_new_tokens: int = 256,
    batch_size: int = 8, device: str = "cpu",
) -> list[str]:
    """Greedy answers, batched with left padding; the template's text is rendered exactly as in training."""
    import torch

    texts = [render_prompt(tokenizer, template, p.turns) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    answers: list[str] = []
    try:
        for k in range(0, len(texts), batch_size):
            batch = tokenizer(texts[k : k + batch_size], add_special_tokens=False, padding=True, return_tensors="pt")
            batch = {n: v.to(device) for n, v in batch.items()}
            with torch.no_grad():
                out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                     eos_token_id=stop_ids(tokenizer), pad_token_id=tokenizer.pad_token_id)
            new = out[:, batch["input_ids"].shape[1] :]
            answers += [str(tokenizer.decode(row, skip_special_tokens=True)).strip() for row in new]
    finally:
        tokenizer.padding_side = side
    return answers


def write_answers(path: Path, prompts: Sequence[Prompt], answers: Sequence[str], model: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for p, a in zip(prompts, answers):
            fh.write(json.dumps({"id": p.id, "model": model, "prompt": p.turns, "answer": a}, ensure_ascii=False) + "\n")


def read_answers(path: str | Path, prompts: Sequence[Prompt]) -> list[str]:
    """Answers for ``prompts`` by id; a prompt with no answer in the file is an error that counts them."""
    p = Path(path)
    if not p.is_file():
        raise MissingResourceError(f"answer file {p}: not found (one {{\"id\", \"answer\"}} object per line)")
    found: dict[str, str] = {}
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{p} line {n}: not valid JSON ({e})") from None
            if not (isinstance(obj, dict) and "id" in obj and isinstance(obj.get("answer"), str)):
                raise DatasetError(f"{p} line {n}: expected {{\"id\": ..., \"answer\": \"...\"}}")
            found[str(obj["id"])] = obj["answer"]
    missing = [q.id for q in prompts if q.id not in found]
    if missing:
        raise ConfigError(
            f"answer file {p} has no answer for {len(missing)} of {len(prompts)} prompts (first: {missing[0]!r}); "
            "answers are matched to prompts by id"
        )
    return [found[q.id] for q in prompts]
