"""Deterministic, source-stratified train/validation/test splits.

Each record gets ``u = blake2b(seed, id)`` mapped to [0, 1): the same run and seed give the same
split on any machine, and adding records never moves existing ones between sources' orders. Every
source is split in the same proportions (per-source quotas, rounded so the global sizes are exact):
a small source is never left out of validation by chance.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from curate.errors import ConfigError

SPLIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
REST = "rest"
# A fraction is a float in (0, 1]; a count is a non-negative int; "rest" takes what is left.
SplitSize = float | int | str


@dataclass(frozen=True)
class SplitSpec:
    """Split names with their sizes, in output order."""

    parts: tuple[tuple[str, SplitSize], ...]

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.parts]

    def as_text(self) -> str:
        return ",".join(f"{n}={v}" for n, v in self.parts)


def _size(name: str, raw: Any) -> SplitSize:
    if isinstance(raw, bool):
        raise ConfigError(f"split {name!r}: size {raw!r} is neither a fraction, a count nor 'rest'")
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text == REST:
            return REST
        try:
            raw = float(text) if any(c in text for c in ".e") else int(text)
        except ValueError:
            raise ConfigError(
                f"split {name!r}: size {raw!r} is neither a fraction (0.1), a count (500) nor 'rest'"
            ) from None
    if isinstance(raw, int):
        if raw < 0:
            raise ConfigError(f"split {name!r}: count {raw} must be >= 0")
        return raw
    if isinstance(raw, float):
        if not (0.0 < raw <= 1.0) or math.isnan(raw):
            raise ConfigError(f"split {name!r}: fraction {raw} must be in (0, 1]; write counts as integers")
        return raw
    raise ConfigError(f"split {name!r}: size {raw!r} is neither a fraction, a count nor 'rest'")


def parse_splits(value: str | Mapping[str, Any]) -> SplitSpec:
    """``"train=0.9,validation=0.1"``, ``"train=rest,test=500"`` or a mapping -> SplitSpec."""
    if isinstance(value, str):
        items: list[tuple[str, Any]] = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            name, sep, size = part.partition("=")
            if not sep:
                raise ConfigError(f"--splits {value!r}: write NAME=SIZE pairs, e.g. train=0.9,validation=0.1")
            items.append((name.strip(), size.strip()))
    else:
        items = list(value.items())
    if not items:
        raise ConfigError("no splits given; e.g. train=0.9,validation=0.1")
    parts: list[tuple[str, SplitSize]] = []
    seen: set[str] = set()
    for name, raw in items:
        if not SPLIT_NAME.match(str(name)):
            raise ConfigError(f"split name {name!r}: use letters, digits and '_' (e.g. train, validation, test)")
        if name in seen:
            raise ConfigError(f"split {name!r} is given twice")
        seen.add(name)
        parts.append((str(name), _size(str(name), raw)))
    sizes = [v for _, v in parts]
    if sum(v == REST for v in sizes) > 1:
        raise ConfigError("only one split may be 'rest'")
    fracs = [v for v in sizes if isinstance(v, float)]
    counts = [v for v in sizes if isinstance(v, int)]
    if REST not in sizes:
        if counts and fracs:
            raise ConfigError("splits mix fractions and counts; give one split as 'rest', e.g. train=rest,test=500")
        if fracs and abs(sum(fracs) - 1.0) > 1e-6:
            raise ConfigError(f"split fractions sum to {sum(fracs):.6g}, not 1; fix them or give one split as 'rest'")
    elif sum(fracs) > 1.0 + 1e-9:
        raise ConfigError(f"split fractions sum to {sum(fracs):.6g} > 1")
    return SplitSpec(tuple(parts))


def _largest_remainder(ideal: list[float], total: int) -> list[int]:
    """Integers with the given total, each the floor or ceiling of its ideal (ties to the earliest)."""
    base = [math.floor(x) for x in ideal]
    short = total - sum(base)
    order = sorted(range(len(ideal)), key=lambda i: (-(ideal[i] - base[i]), i))
    for i in order[: max(short, 0)]:
        base[i] += 1
    return base


def split_targets(spec: SplitSpec, n: int) -> dict[str, int]:
    """Exact number of records per split for a set of ``n``. Raises ConfigError when impossible."""
    fixed = {name: v for name, v in spec.parts if isinstance(v, int)}
    fracs = {name: v for name, v in spec.parts if isinstance(v, float)}
    rest = [name for name, v in spec.parts if v == REST]
    if sum(fixed.values()) > n:
        raise ConfigError(f"split counts {fixed} add up to {sum(fixed.values())}, more than the {n} records")
    out: dict[str, int] = dict(fixed)
    if rest:
        for name, f in fracs.items():
            out[name] = math.floor(f * n + 1e-9)
        left = n - sum(out.values())
        if left < 0:
            raise ConfigError(f"splits {spec.as_text()} need more than the {n} records")
        out[rest[0]] = left
    elif fracs:
        names = list(fracs)
        for name, k in zip(names, _largest_remainder([fracs[x] * n for x in names], n), strict=True):
            out[name] = k
    elif sum(fixed.values()) != n:
        raise ConfigError(
            f"split counts add up to {sum(fixed.values())} but the set has {n} records; give one split as 'rest'"
        )
    return {name: out[name] for name in spec.names}


def source_quotas(per_source: Mapping[str, int], targets: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Split each source in the global proportions; row sums are the sources, column sums the targets.

    Splits are filled in order; each takes ``floor``/``ceil`` of its ideal share of every source
    (largest remainder), capped by what the source still has. The last split takes what remains,
    so both margins are exact and no source is off by more than the number of splits.
    """
    n = sum(per_source.values())
    sources = sorted(per_source)
    left = {s: per_source[s] for s in sources}
    quotas: dict[str, dict[str, int]] = {s: {} for s in sources}
    names = list(targets)
    for j, name in enumerate(names):
        if j == len(names) - 1:
            for s in sources:
                quotas[s][name] = left[s]
                left[s] = 0
            break
        want = targets[name]
        ideal = [per_source[s] * want / n if n else 0.0 for s in sources]
        got = [min(math.floor(x), left[s]) for x, s in zip(ideal, sources, strict=True)]
        short = want - sum(got)
        order = sorted(range(len(sources)), key=lambda i: (-(ideal[i] - math.floor(ideal[i])), sources[i]))
        for i in order:  # round up the largest remainders first
            if short <= 0:
                break
            if ideal[i] > got[i] and got[i] < left[sources[i]]:
                got[i] += 1
                short -= 1
        for i in order:  # caps left a shortfall: take it from any source with room
            while short > 0 and got[i] < left[sources[i]]:
                got[i] += 1
                short -= 1
        for i, s in enumerate(sources):
            quotas[s][name] = got[i]
            left[s] -= got[i]
    return quotas


def split_key(record_id: str, seed: int) -> float:
    """Uniform in [0, 1) from the id and the seed; stable across machines and Python versions."""
    digest = hashlib.blake2b(f"{seed}\x1f{record_id}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_splits(ids: pl.DataFrame, spec: SplitSpec, seed: int) -> pl.DataFrame:
    """``ids`` (columns id, source) -> ``[id, source, split, split_key]``, ordered by split then key."""
    n = ids.height
    keyed = ids.select("id", "source").with_columns(
        pl.Series("split_key", [split_key(i, seed) for i in ids["id"].to_list()], dtype=pl.Float64)
    )
    keyed = keyed.sort(["source", "split_key", "id"])
    counts = dict(keyed.group_by("source").len().iter_rows())
    quotas = source_quotas(counts, split_targets(spec, n))
    labels: list[str] = []
    for s in sorted(counts):
        for name in spec.names:
            labels.extend([name] * quotas[s][name])
    keyed = keyed.with_columns(pl.Series("split", labels, dtype=pl.Utf8))
    order = {name: i for i, name in enumerate(spec.names)}
    return keyed.with_columns(pl.col("split").replace_strict(order, return_dtype=pl.Int32).alias("_o")).sort(
        ["_o", "split_key", "id"]
    ).drop("_o")
