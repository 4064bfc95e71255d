"""Recipe YAML -> validated plan. All validation happens here, before any data is read.

Errors name their YAML location, e.g. ``steps[2].params.treshold: unknown parameter``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curate.errors import ConfigError
from curate.pipeline.yamlload import MAX_BYTES, YAMLLoadError, load_yaml
from curate.steps.base import Step
from curate.steps.registry import RegistryError, get_step


class SpecError(ConfigError):
    """A recipe is invalid; the message lists every problem with its YAML location."""

    def __init__(self, problems: list[str], origin: str = "recipe") -> None:
        self.problems = problems
        super().__init__(f"{origin}: " + ("\n  " if len(problems) > 1 else "") + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Source id; becomes the `source` column.")
    format: str = Field(description="Reader to use: `read.<format>` (see `curate steps read`).")
    path: str | list[str] = Field(description="File, glob, folder or list of them; or hub:ORG/NAME.")
    params: dict[str, Any] = Field(default_factory=dict, description="Reader parameters.")
    subset: str | None = Field(None, description="Subset name for every record of this source.")


class StepSpec(_Strict):
    use: str = Field(description="Registered step key, e.g. filter.length.")
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_]+$", description="Unique step id; defaults to `use`.")
    params: dict[str, Any] = Field(default_factory=dict)


class LimitsSpec(_Strict):
    max_quarantine_frac: float = Field(0.01, ge=0, le=1, description="Fail a step that quarantines more.")


class ExecutorSpec(_Strict):
    kind: Literal["local", "ray"] = "local"
    workers: int = Field(2, ge=1, description="Processes for per-record Python steps (local executor).")
    batch_size: int = Field(20_000, ge=1, description="Rows per batch.")
    address: str | None = Field(
        None, description="kind ray: the cluster to join (auto, HOST:PORT or ray://HOST:10001); none starts a "
        "local one. The run directory must be on a filesystem every node sees.")
    shard_rows: int = Field(
        100_000, ge=1, description="kind ray: records per shard; a source file with more is read as record ranges "
        "of about this size, and each step's output keeps the shards of its input.")


class PipelineSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    description: str | None = None
    sources: list[SourceSpec] = Field(min_length=1)
    steps: list[StepSpec] = Field(default_factory=list)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, v: list[SourceSpec]) -> list[SourceSpec]:
        seen: set[str] = set()
        for s in v:
            if s.id in seen:
                raise ValueError(f"duplicate source id {s.id!r}")
            seen.add(s.id)
        return v


@dataclass
class Plan:
    """The validated recipe: configured readers and steps, independent of where they run."""

    spec: PipelineSpec
    readers: list[tuple[SourceSpec, Step]]
    steps: list[Step]
    origin: str = "recipe"

    def resolved(self) -> dict[str, Any]:
        """The recipe with every default filled in (saved as spec.yaml in the run directory)."""
        d = self.spec.model_dump(mode="json")
        for src, (_, reader) in zip(d["sources"], self.readers, strict=True):
            src["params"] = reader.params.model_dump(mode="json")
        for st, step in zip(d["steps"], self.steps, strict=True):
            st["id"] = step.id
            st["params"] = step.params.model_dump(mode="json")
        return d

    def recipe_hash(self) -> str:
        blob = json.dumps(self.resolved(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _pydantic_problems(err: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for e in err.errors():
        loc = _loc(tuple(e["loc"]))
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "(top level)")
        if e["type"] == "extra_forbidden":
            msg = "unknown parameter" if ".params" in where else "unknown key"
        elif e["type"] == "missing":
            msg = "required but missing"
        else:
            msg = e["msg"]
            if "input" in e and e["type"] not in ("value_error",):
                msg += f" (got {e['input']!r})"
        problems.append(f"{where}: {msg}")
    return problems


def _suggest(name: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def build_plan(raw: dict[str, Any], origin: str = "recipe") -> Plan:
    """Validate a recipe dict completely and build its readers and steps. Raises SpecError."""
    if not isinstance(raw, dict):
        raise SpecError([f"(top level): expected a mapping, got {type(raw).__name__}"], origin)
    try:
        spec = PipelineSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_pydantic_problems(e), origin) from None
    problems: list[str] = []
    readers: list[tuple[SourceSpec, Step]] = []
    for i, src in enumerate(spec.sources):
        try:
            cls = get_step(f"read.{src.format}")
        except RegistryError as e:
            problems.append(f"sources[{i}].format: {e}")
            continue
        try:
            params = cls.Params.model_validate(src.params)
            readers.append((src, cls(params, step_id=f"read_{src.id}", seed=spec.seed)))
        except ValidationError as e:
            problems.extend(_annotate_params(_pydantic_problems(e, f"sources[{i}].params"), cls))
    steps: list[Step] = []
    seen: dict[str, int] = {}
    for i, st in enumerate(spec.steps):
        step_id = st.id or st.use
        if step_id in seen:
            problems.append(
                f"steps[{i}].id: duplicate step id {step_id!r} (also steps[{seen[step_id]}]); "
                "give one of them an `id:`"
            )
        seen.setdefault(step_id, i)
        try:
            cls = get_step(st.use)
        except RegistryError as e:
            problems.append(f"steps[{i}].use: {e}")
            continue
        if cls.kind == "read":
            problems.append(f"steps[{i}].use: {st.use!r} is a reader; list it under `sources:`")
            continue
        try:
            params = cls.Params.model_validate(st.params)
        except ValidationError as e:
            problems.extend(_annotate_params(_pydantic_problems(e, f"steps[{i}].params"), cls))
            continue
        steps.append(cls(params, step_id=step_id.replace(".", "_"), seed=spec.seed))
    if not problems:
        problems = order_problems(steps)
    if problems:
        raise SpecError(problems, origin)
    return Plan(spec=spec, readers=readers, steps=steps, origin=origin)


def order_problems(steps: list[Step]) -> list[str]:
    """Steps that need a run artifact (``Step.needed()``) no earlier step provides, one problem per step.

    ``steps`` are aligned with the recipe's ``steps:`` list, so each problem names its YAML location.
    """
    provided: dict[str, str] = {}  # artifact name -> id of the last step before that provides it
    problems = []
    for i, step in enumerate(steps):
        missing = [a for a in step.needed() if a.name not in provided]
        if missing:
            later = [f"{s.key} (steps[{j}])" for j, s in enumerate(steps) if j > i
                     and any(a in s.provides for a in missing)]
            fix = (f"move {later[0]} before it" if later else
                   f"add {missing[0].producer} before it")
            problems.append(
                f"steps[{i}].use: {step.key} ({step.id}) needs {', '.join(a.name for a in missing)}, which no "
                f"earlier step writes; {fix}"
            )
        for a in step.provides:
            provided[a.name] = step.id
    return problems


def _annotate_params(problems: list[str], cls: type[Step]) -> list[str]:
    fields = list(cls.Params.model_fields)
    out = []
    for p in problems:
        if p.endswith("unknown parameter"):
            name = p.split(":", 1)[0].rsplit(".", 1)[-1]
            p += _suggest(name, fields) + f" ({cls.key} takes: {', '.join(fields) or 'no parameters'})"
        out.append(p)
    return out


def apply_overrides(raw: Any, overrides: list[str]) -> Any:
    """Apply ``--set key=value`` overrides. ``sources.<id>.x`` and ``steps.<id>.x`` address by id.

    Values are parsed as YAML (``--set seed=3``, ``--set steps.filter_language.params.keep=[en,fr]``) with
    the recipe loader: plain values only, bounded size. Every problem names the ``--set`` argument.
    """
    raw = copy.deepcopy(raw)
    for ov in overrides:
        if "=" not in ov:
            raise SpecError([f"--set {ov!r}: expected key=value"], "command line")
        key, _, text = ov.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise SpecError([f"--set {ov!r}: the key is empty or has an empty part; write e.g. seed=3"],
                            "command line")
        try:
            value = load_yaml(text, f"--set {ov!r}") if text else ""
        except YAMLLoadError as e:
            raise SpecError([e.problem], e.origin) from None
        if not isinstance(raw, dict):
            raise SpecError([f"--set {key}: the recipe is not a mapping, so there is nothing to set"],
                            "command line")
        node: Any = raw
        j = 0
        while j < len(parts) - 1:
            if isinstance(node, list):
                node, j = _by_id(node, parts, j)
                continue
            if not isinstance(node, dict):
                raise SpecError([_not_a_mapping(key, parts[:j], node)], "command line")
            part = parts[j]
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
            j += 1
        if isinstance(node, list) or j != len(parts) - 1:
            raise SpecError([f"--set {key}: cannot replace a whole list entry"], "command line")
        if not isinstance(node, dict):
            raise SpecError([_not_a_mapping(key, parts[:j], node)], "command line")
        node[parts[-1]] = value
    return raw


def _not_a_mapping(key: str, path: list[str], node: Any) -> str:
    where = ".".join(path) or "(top level)"
    return (f"--set {key}: {where} is {node!r:.40}, not a mapping, so nothing can be set inside it; "
            f"set {where} itself instead")


def _by_id(items: list[Any], parts: list[str], j: int) -> tuple[Any, int]:
    """Find the list entry named by parts[j:k] (ids may contain dots, e.g. filter.length); return it and k."""

    def names(it: dict[str, Any]) -> set[str]:
        ident = it.get("id") or it.get("use")
        return {str(ident), str(ident).replace(".", "_")} if ident else set()

    for k in range(len(parts) - 1, j, -1):
        cand = ".".join(parts[j:k])
        for it in items:
            if isinstance(it, dict) and cand in names(it):
                return it, k
    if parts[j].isdigit() and int(parts[j]) < len(items):
        return items[int(parts[j])], j + 1
    ids = [str(it.get("id") or it.get("use")) for it in items if isinstance(it, dict)]
    where = ".".join(parts[: j + 1])
    raise SpecError([f"--set {where}: no entry with id {parts[j]!r} (have: {', '.join(ids)})"], "command line")


def read_yaml_file(path: str | Path) -> Any:
    """A recipe-sized YAML file, read with the recipe loader. Raises SpecError naming the file and line."""
    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a recipe file" if p.is_dir() else "recipe file not found"
        raise SpecError([f"{what}; check the path (recipes live in pipelines/)"], str(p))
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise SpecError([f"{size:,} bytes, more than a recipe holds (limit {MAX_BYTES:,}); is this a data file?"],
                        str(p))
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([f"not UTF-8 text (byte {e.start}); a recipe is a YAML file"], str(p)) from None
    try:
        return load_yaml(text, str(p))
    except YAMLLoadError as e:
        raise SpecError([e.problem], e.origin) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Plan:
    p = Path(path)
    raw = read_yaml_file(p)
    if overrides:
        raw = apply_overrides(raw, overrides)
    return build_plan(raw, origin=str(p))


def preflight(plan: Plan, *, check_writers: bool = True) -> None:
    """What a run would fail on that the recipe text alone cannot show: missing source files and output
    folders a write step would refuse. ``curate validate`` and the start of ``curate run`` both call it.

    Raises SpecError listing every problem with its recipe location.
    """
    from curate.ingest.base import InputError, expand_paths
    from curate.steps.write.base import Writer

    problems: list[str] = []
    for i, src in enumerate(plan.spec.sources):
        paths = src.path if isinstance(src.path, list) else [src.path]
        for j, path in enumerate(paths):
            if str(path).startswith("hub:"):
                continue
            loc = f"sources[{i}].path" + (f"[{j}]" if isinstance(src.path, list) else "")
            try:
                expand_paths([str(path)])
            except InputError as e:
                problems.append(f"{loc} (source {src.id}): {e}")
    if check_writers:
        for i, step in enumerate(plan.steps):
            if isinstance(step, Writer):
                try:
                    step.check_target()
                except ConfigError as e:
                    problems.append(f"steps[{i}].params.path ({step.id}): {e}")
    if problems:
        raise SpecError(problems, plan.origin)
