"""One eval: perplexity of the base and its adapters, then (with a judge) a pairwise comparison, then the report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.eval.answers import generate, read_answers, write_answers
from curate.eval.data import Prompt, load_eval_set, prompts_from
from curate.eval.pairwise import PairResult, Tally, judge_pairs, tally
from curate.eval.perplexity import BASE, PerplexityResult, choose_template, score_models
from curate.eval.report import markdown, write_report
from curate.train.models import (
    ModelPath,
    attach_adapter,
    check_vocab,
    load_model,
    load_tokenizer,
    pick_device,
    resolve,
    torch_dtype,
)

Log = Callable[[str], None]


@dataclass
class JudgeOptions:
    base_url: str
    model: str
    api_key_env: str | None = None
    max_concurrency: int = 4
    timeout_s: float = 120.0
    max_tokens: int = 512
    cache_path: str | None = None  # None: <output>/llm_cache.sqlite
    use_cache: bool = True


@dataclass
class EvalOptions:
    output: Path
    base: str | None = None
    entries: list[tuple[str, ModelPath]] = field(default_factory=list)  # adapters and model folders, by name
    data: str | None = None  # perplexity eval set
    split: str = "validation"
    max_convs: int | None = None
    template: str = "auto"
    max_seq_len: int = 2048
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    judge: JudgeOptions | None = None
    pair: tuple[str, str] | None = None
    prompts: str | None = None  # prompt set (default: data)
    max_prompts: int = 80
    answers: dict[str, str] = field(default_factory=dict)  # model name -> answer JSONL
    max_new_tokens: int = 256
    perplexity: bool = True
    held_out_only: bool = False
    seed: int = 13


@dataclass
class EvalResult:
    perplexity: PerplexityResult | None
    pairwise: Tally | None
    json_path: Path
    md_path: Path


def parse_named(values: Sequence[str], option: str, kind: str) -> list[tuple[str, ModelPath]]:
    """``NAME=PATH`` pairs of ``--adapter`` / ``--model``; a bare PATH is named after its folder."""
    out: list[tuple[str, ModelPath]] = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep:
            name, path = "", v
        ref = resolve(path, what=option.lstrip("-"))
        if ref.kind != kind:
            raise ConfigError(f"{option} {v}: {ref.path} is a {ref.kind}, not a{'n' if kind == 'adapter' else ''} {kind}")
        name = name.strip() or (ref.path.parent.name if ref.path.name == "adapter" else ref.path.name)
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"{option} {v}: name {name!r} must be letters, digits, '-', '_' or '.'")
        out.append((name, ref))
    return out


def check_options(o: EvalOptions) -> None:
    """Everything that can be refused before a model is loaded."""
    if o.output.exists() and not o.output.is_dir():
        raise ConfigError(f"--output {o.output}: is a file; give a folder for eval.json and eval.md")
    names = ([BASE] if o.base else []) + [n for n, _ in o.entries]
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique ({BASE!r} is the base model's): {', '.join(names)}")
    do_ppl = o.perplexity and o.data is not None
    if not do_ppl and o.judge is None:
        raise ConfigError("nothing to do: give --data for perplexity and/or --judge-model for a pairwise comparison")
    if any(r.kind == "adapter" for _, r in o.entries) and not o.base:
        raise ConfigError("--adapter needs --base (the model the adapters were trained on)")
    if o.judge is not None:
        known = set(names) | set(o.answers)
        pair = o.pair or _default_pair(names)
        missing = [n for n in pair if n not in known]
        if missing:
            raise ConfigError(f"--pair {','.join(pair)}: {', '.join(missing)} is neither a model (--base, --adapter, "
                              "--model) nor has --answers NAME=FILE")
        if pair[0] == pair[1]:
            raise ConfigError("--pair needs two different models")
        o.pair = pair
        if (o.prompts or o.data) is None:
            raise ConfigError("the pairwise comparison needs prompts: --prompts PATH (or --data)")
    unknown_answers = [n for n in o.answers if o.judge is None or n not in (o.pair or ())]
    if unknown_answers:
        raise ConfigError(f"--answers {', '.join(unknown_answers)}: answers are only read for the two models of --pair "
                          "(with --judge-model)")


def _default_pair(names: list[str]) -> tuple[str, str]:
    others = [n for n in names if n != BASE]
    if len(others) == 2:
        return others[0], others[1]
    if len(names) == 2:
        return names[0], names[1]
    raise ConfigError(f"--pair A,B: name the two models to compare (have: {', '.join(names) or 'none'})")


def run_eval(o: EvalOptions, log: Log = print) -> EvalResult:
    check_options(o)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    client = None
    if o.judge is not None:
        client = _open_judge(o)  # before any slow work: an endpoint that is down fails at once
    try:
        ppl = None
        if o.perplexity and o.data is not None:
            evalset = load_eval_set(o.data, o.split, o.max_convs)
            ppl = score_models(evalset, o.base, o.entries, template=o.template, max_seq_len=o.max_seq_len,
                               batch_size=o.batch_size, device=o.device, dtype=o.dtype,
                               held_out_only=o.held_out_only, log=log)
            log(ppl.table())
        pair_tally = None
        judge_info: dict[str, Any] | None = None
        results: list[PairResult] = []
        examples: list[tuple[str, str, str, PairResult]] = []
        if client is not None and o.judge is not None and o.pair is not None:
            src = o.prompts or o.data
            assert src is not None
            prompts, no_user = prompts_from(load_eval_set(src, o.split).convs, o.max_prompts)
            a_name, b_name = o.pair
            answers, how = _answers(o, prompts, log)
            from curate.llm.config import Sampling

            t0 = time.perf_counter()
            results = judge_pairs(client, Sampling(temperature=0.0, top_p=1.0, max_tokens=o.judge.max_tokens),
                                  prompts, answers[a_name], answers[b_name])
            pair_tally = tally(a_name, b_name, results)
            log(pair_tally.line() + f" ({time.perf_counter() - t0:.1f} s, {client.stats.cache_hits} from cache)")
            judge_info = {"base_url": o.judge.base_url, "model": o.judge.model, "prompts": src,
                          "prompts_without_user_turn": no_user, "answers": how,
                          "requests": client.stats.requests, "cache_hits": client.stats.cache_hits}
            for k, r in enumerate(results[:5]):  # results follow the prompts' order
                examples.append((prompts[k].question, answers[a_name][k], answers[b_name][k], r))
            with (o.output / "pairwise.jsonl").open("w", encoding="utf-8") as fh:
                for r in results:
                    fh.write(json.dumps(r.__dict__, ensure_ascii=False) + "\n")
    finally:
        if client is not None:
            client.close()
    data: dict[str, Any] = {
        "created": started,
        "base": o.base,
        "models": {n: {"kind": r.kind, "path": str(r.path)} for n, r in o.entries},
        "perplexity": ppl.to_json() if ppl else None,
        "pairwise": ({**pair_tally.to_json(), "judge": judge_info} if pair_tally else None),
    }
    j, m = write_report(o.output, data, markdown(ppl, pair_tally, judge_info, examples))
    log(f"report: {j} and {m}")
    return EvalResult(ppl, pair_tally, j, m)


def _open_judge(o: EvalOptions) -> Any:
    from pydantic import ValidationError

    from curate.llm.client import LLMClient
    from curate.llm.config import LLMConfig

    assert o.judge is not None
    j = o.judge
    try:
        cfg = LLMConfig(base_url=j.base_url, model=j.model, api_key_env=j.api_key_env,
                        max_concurrency=j.max_concurrency, timeout_s=j.timeout_s)
    except ValidationError as e:
        raise ConfigError(f"judge endpoint: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None
    o.output.mkdir(parents=True, exist_ok=True)
    cache = (Path(j.cache_path) if j.cache_path else o.output / "llm_cache.sqlite") if j.use_cache else None
    client = LLMClient(cfg, cache_path=cache, seed=o.seed, desc="judge")
    try:
        client.check()
    except BaseException:
        client.close()
        raise
    return client


def _answers(o: EvalOptions, prompts: list[Prompt], log: Log) -> tuple[dict[str, list[str]], str]:
    """Answers of both models of the pair: from --answers files, else generated (and saved for reuse)."""
    assert o.pair is not None
    out: dict[str, list[str]] = {}
    how: list[str] = []
    todo = []
    for name in o.pair:
        if name in o.answers:
            out[name] = read_answers(o.answers[name], prompts)
            how.append(f"{name} from {o.answers[name]}")
        else:
            todo.append(name)
    if not todo:
        return out, "; ".join(how)
    dev = pick_device(o.device)
    dt = torch_dtype(o.dtype, dev)
    refs = dict(o.entries)
    base_tok = load_tokenizer(o.base, what="base model") if o.base else None
    adapter_toks = {n: load_tokenizer(r.path, what="adapter") for n, r in o.entries if r.kind == "adapter"}
    ref_tok = next(iter(adapter_toks.values()), base_tok)
    base_model = None
    for name in todo:
        t0 = time.perf_counter()
        ref = refs.get(name)
        if ref is not None and ref.kind == "model":
            tok = load_tokenizer(ref.path)
            tmpl, _ = choose_template(o.template if o.template != "auto" else "auto", tok, tok, {})
            model = load_model(ref.path, dt, dev)
            check_vocab(model, tok, f"model {ref.path}")
        else:
            assert o.base is not None and ref_tok is not None
            tok = ref_tok
            tmpl, _ = choose_template(o.template, ref_tok, base_tok, adapter_toks)
            if base_model is None:
                base_model = load_model(o.base, dt, dev, what="base model")
                check_vocab(base_model, tok, f"base model {o.base}")
            model = base_model
            if ref is not None:
                model = base_model = attach_adapter(base_model, ref.path, name, o.base)
                model.set_adapter(name)
        if name == BASE and hasattr(model, "disable_adapter"):
            with model.disable_adapter():
                texts = generate(model, tok, tmpl, prompts, max_new_tokens=o.max_new_tokens,
                                 batch_size=o.batch_size, device=dev)
        else:
            texts = generate(model, tok, tmpl, prompts, max_new_tokens=o.max_new_tokens, batch_size=o.batch_size,
                             device=dev)
        out[name] = texts
        path = o.output / "answers" / f"{name}.jsonl"
        write_answers(path, prompts, texts, name)
        how.append(f"{name} generated greedily (at most {o.max_new_tokens} new tokens), saved in {path}")
        log(f"  {name}: {len(texts)} answers in {time.perf_counter() - t0:.1f} s")
    return out, "; ".join(how)
