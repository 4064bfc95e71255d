"""The run directory's layout: the one place that names every folder and file of a run.

```
runs/<name>/                        a recipe's folder (RecipeLayout)
  latest -> <ts>                    the newest real (non-trial) run
  labels.sqlite                     labels, shared by every run of the recipe
  llm_cache.sqlite                  LLM request cache, shared by every run of the recipe
  <ts>/                             one run (RunLayout)
    spec.yaml  report.json  report.md  report.html  manifest.json  run.lock
    00_ingest/kept.parquet  00_ingest/sources.json  00_ingest/done.json
    NN_<step_id>/kept.parquet       after each step, plus the step's artifacts (ARTIFACTS below)
    NN_<step_id>/done.json          fingerprint + step report; present only when the step finished
    NN_<step_id>/export/            a trial run's writer output (never the recipe's path)
    ledger/NN_<step_id>.parquet     removed records: LEDGER_SCHEMA
    quarantine/NN_<step_id>.jsonl   records that could not be processed: QUARANTINE_FIELDS
```

Under ``executor.kind: ray`` a step's output is sharded (SHARD names the shards, in input order):
``NN_<step_id>/kept.parquet/`` is then a folder of ``part-00000.parquet``... (a Parquet dataset, as
Spark, Dask and Ray Data write them; ``pl.scan_parquet`` reads the folder in shard order), the ledger
and quarantine are ``ledger/NN_<step_id>.part-00000.parquet`` and ``quarantine/NN_<step_id>.part-00000.jsonl``
(so ``ledger_files()`` and ``quarantine_files()`` list them unchanged), ``NN_<step_id>/shards/part-00000.json``
holds each shard's counts (SHARD_COUNTS_SHAPE), and ``NN_<step_id>/work/`` is a distributed step's
scratch space, removed when the step finishes. Readers that need files rather than a scan use
:meth:`StepFolder.kept_files`.

The runner writes through :class:`RunLayout`; steps (through ``StepContext``), the export, the report,
the browser and the benchmarks read through it (or through :class:`curate.rundir.RunDir`, which adds
readers on top). Nothing else spells a file name of a run. ``manifest.json`` records the
:data:`LAYOUT_VERSION` that wrote the run, so a reader can say which layout an old run has.

This module imports nothing of curate but the schema: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curate.schema import CONVERSATION

# 1: runs written before the layout was versioned (no "layout" key in manifest.json); same names as 2.
# 2: manifest.json carries "layout".
LAYOUT_VERSION = 2
OLDEST_READABLE = 1


# -------------------------------------------------------------------------------------- artifacts


@dataclass(frozen=True, eq=False)
class Artifact:
    """A file a step writes into its own step folder, found by later steps and readers by name.

    Each artifact is declared once, below; they compare and hash by identity, so they can key a dict.

    ``schema`` is the Parquet schema (the columns every writer must write, in this order) where the
    artifact is a table; ``shape`` documents the JSON shape or array layout otherwise. ``producer`` names the
    recipe step that writes it, for messages when it is missing.
    """

    name: str
    what: str
    producer: str
    schema: Mapping[str, pl.DataType] | None = None
    shape: str = ""

    def missing_note(self) -> str:
        """The sentence a reader shows when a run has no such artifact."""
        return f"This run has no `{self.name}`. Add {self.producer} to the recipe and run it again."

    def empty(self) -> pl.DataFrame:
        """An empty table with this artifact's schema (only for Parquet artifacts)."""
        if self.schema is None:
            raise TypeError(f"{self.name} is not a table")
        return pl.DataFrame(schema=dict(self.schema))


_EMBED = "`embed.sentence_transformer` (embeddings and FAISS index)"
_DEDUP = "a dedup step (`dedup.exact`, `dedup.minhash` or `dedup.semantic`)"
_MAP = "a map step (analysis map: 2-D layout, clusters and topics), e.g. `score.map`"

EMBEDDINGS = Artifact("embeddings.npy", "the embedding matrix", _EMBED,
                      shape="float32 (n, d) .npy, unit-norm rows, row-aligned with EMBEDDING_IDS; memory-mapped")
EMBEDDING_IDS = Artifact("embedding_ids.parquet", "record id of each row of EMBEDDINGS", _EMBED,
                         schema={"id": pl.Utf8()})
INDEX = Artifact("index.faiss", "inner-product FAISS index over the embeddings", _EMBED,
                 shape="faiss.write_index file; row i is INDEX_IDS row i")
INDEX_IDS = Artifact("index_ids.parquet", "record id of each row of INDEX", _EMBED, schema={"id": pl.Utf8()})
EMBEDDING_INFO = Artifact("embedding.json", "how the embeddings were made", _EMBED,
                          shape='{"model": str, "device": str, "dim": int, "text": str, "count": int, '
                                '"index": {"kind", "count", "dim", "nlist", "nprobe", "recall_at_10", "gpu", '
                                '"seconds"} | null, ...}')
GROUPS = Artifact("groups.parquet", "duplicate groups of a dedup step: every member, its survivor", _DEDUP,
                  schema={"group_id": pl.Int64(), "survivor": pl.Utf8(), "member": pl.Utf8(),
                          "similarity": pl.Float64(), "removed": pl.Boolean(), "step": pl.Utf8()})
DIVERSITY = Artifact("diversity.json", "diversity figures per source and subset", "`score.diversity`",
                     shape='{"metrics": [...], "clusters": int, "embeddings": bool, "samples": {...}, '
                           '"overall": {metric: float}, "per_source": {source: {metric: float}}, '
                           '"per_subset": {"source/subset": {metric: float}}}')
MAP = Artifact("map.parquet", "2-D map of the embeddings with clusters and topics", _MAP,
               schema={"id": pl.Utf8(), "x": pl.Float64(), "y": pl.Float64(), "cluster": pl.Int32(),
                       "topic": pl.Utf8(), "source": pl.Utf8()})
MAP_REMOVED = Artifact("map_removed.parquet", "where removed records sit on the map: near what they duplicate, or "
                       "by their embedding", _MAP,
                       schema={"id": pl.Utf8(), "x": pl.Float64(), "y": pl.Float64(), "cluster": pl.Int32(),
                               "topic": pl.Utf8(), "placed": pl.Utf8()})
MAP_INFO = Artifact("map.json", "how the map was made: fitted or reused from the previous run, points placed, "
                    "clusters matched", _MAP,
                    shape='{"layout": "fitted" | "reused", "previous_run": str | null, "why_fitted": str | null, '
                          '"points": int, "reused_points": int, "placed_points": int, "cluster_ids": '
                          '"new" | "carried" | "matched", "clusters_matched": int, "removed_placed": '
                          '{"embedding": int, "duplicate_of": int}, "removed_unplaced": int, "params": {...}}')
CLUSTERS = Artifact("clusters.json", "the map's clusters, largest first", _MAP,
                    shape='[{"cluster": int, "topic": str, "size": int, "sample_prompts": [str]}]')
VERBS = Artifact("verbs.json", "instruction verbs and their objects", _MAP,
                 shape='{"rows": [{"verb": str, "count": int, "objects": [{"object": str, "count": int}]}], ...}')
SOURCE_DECISIONS = Artifact("source_decisions.json", "which sources filter.source dropped and why",
                            "`filter.source` with `drop_if`",
                            shape='{"scope": str, "match": str, "rule": {...}, "groups": {group: {"drop": bool, '
                                  '"conditions": {...}, "figures": {...}}}}')
SOURCE_STATS = Artifact("sources.json", "per-source read counts of the ingest", "the ingest (always)",
                        shape='{source_id: {"format", "files", "read", "ingested", "quarantined", '
                              '"by_reason": {reason: int}, "skipped"?: {...}}}')
TRAIN_CHECK = Artifact("check.txt", "the rendered training text of a few records, checked before training",
                       "`train.lora`", shape="plain text")
TRIAL_EXPORT = Artifact("export", "a trial run's writer output (a folder)", "a `write.*` step in a trial run",
                        shape="an export folder (see curate.export)")

ARTIFACTS: tuple[Artifact, ...] = (EMBEDDINGS, EMBEDDING_IDS, INDEX, INDEX_IDS, EMBEDDING_INFO, GROUPS, DIVERSITY,
                                   MAP, MAP_REMOVED, MAP_INFO, CLUSTERS, VERBS, SOURCE_DECISIONS, SOURCE_STATS,
                                   TRAIN_CHECK, TRIAL_EXPORT)


def artifact_named(name: str) -> Artifact:
    """The declared artifact with this file name. Raises KeyError naming the known ones."""
    for a in ARTIFACTS:
        if a.name == name:
            return a
    raise KeyError(f"no run artifact is called {name!r}; known: {', '.join(a.name for a in ARTIFACTS)}")


# ------------------------------------------------------------------------------- files and schemas

SPEC = "spec.yaml"  # the recipe with every default filled in (Plan.resolved())
REPORT = "report.json"  # REPORT_SHAPE; written when the run ends
REPORT_MD = "report.md"
REPORT_HTML = "report.html"  # `curate report`
MANIFEST = "manifest.json"  # MANIFEST_SHAPE; written when the run starts
LOCK = "run.lock"
KEPT = "kept.parquet"
DONE = "done.json"  # DONE_SHAPE
LEDGER_DIR = "ledger"
QUARANTINE_DIR = "quarantine"
INGEST = "00_ingest"
INGEST_ID = "ingest"  # the step id the ingest reports under
LATEST = "latest"
LABELS_DB = "labels.sqlite"
LLM_CACHE_DB = "llm_cache.sqlite"

LEDGER_EXTRA: dict[str, pl.DataType] = {
    "step": pl.Utf8(),
    "reason": pl.Utf8(),
    "duplicate_of": pl.Utf8(),
    "similarity": pl.Float64(),
}
LEDGER_SCHEMA: dict[str, pl.DataType] = {**CONVERSATION, **LEDGER_EXTRA}  # every ledger file, in this order
# kept.parquet: the CONVERSATION columns, then `<step_id>.<metric>` score columns added by steps.
KEPT_SCHEMA: dict[str, pl.DataType] = dict(CONVERSATION)
# One JSON object per line of quarantine/NN_<step_id>.jsonl. The ingest's entries have no "id" (the record
# never parsed) and add "raw" (the unparsed input) and "line".
QUARANTINE_FIELDS = ("step", "id", "source", "file", "record", "reason", "error")
INGEST_QUARANTINE_FIELDS = ("step", "source", "file", "record", "reason", "error", "raw", "line")
DONE_SHAPE = '{"fingerprint": str, "report": StepReport.to_json()}'
SHARD = "part-{:05d}"  # shard i of a sharded step output (executor.kind: ray)
SHARD_GLOB = "part-*"
SHARD_COUNTS = "shards"  # NN_<step_id>/shards/<SHARD>.json
WORK = "work"  # NN_<step_id>/work/: a distributed step's scratch files
SHARD_DECISIONS = "decisions"  # NN_<step_id>/work/decisions/: a distributed step's per-shard decisions
SHARD_SCORES = "scores"  # NN_<step_id>/work/scores/: a distributed scorer's per-shard score columns
SHARD_COUNTS_SHAPE = ('{"shard": int, "n_in": int, "n_out": int, "rejected": {reason: int}, "quarantined": {type: int}, '
                      '"flagged": {reason: int}, "flag_examples": {reason: [id]}, "extra": {key: float}, '
                      '"overridden": int}')
MANIFEST_SHAPE = ('{"layout": int, "curate": str, "python": str, "platform": str, "recipe": str, '
                  '"recipe_hash": str, "started": iso8601, "argv": [str], "packages": {name: version}, '
                  '"inputs": [{"source", "path", "bytes"?, "sha256"?}]}')
REPORT_SHAPE = ('{"name", "run_dir", "recipe_hash", "started", "seconds", "dry_run", "limit", '
                '"steps": [StepReport.to_json()], "sources": {id: {..., "kept": int, "removed": {"step:reason": int}}}, '
                '"totals": {"read", "added", "kept", "removed", "quarantined"}, "diversity"?: DIVERSITY}')


def parquet_files(path: Path) -> list[Path]:
    """The files of a kept table: ``path`` itself, or the shards of a sharded ``kept.parquet/`` folder, in order."""
    return sorted(path.glob(SHARD_GLOB + ".parquet")) if path.is_dir() else [path]


def is_step_folder_name(name: str) -> bool:
    """``NN_<step_id>`` (``00_ingest`` included)."""
    return len(name) > 3 and name[:2].isdigit() and name[2] == "_"


# ------------------------------------------------------------------------------------ the folders


@dataclass(frozen=True)
class StepFolder:
    """One ``NN_<step_id>`` folder of a run, with the ledger and quarantine files that belong to it."""

    run: RunLayout
    name: str

    @property
    def path(self) -> Path:
        return self.run.root / self.name

    @property
    def index(self) -> int:
        return int(self.name[:2])

    @property
    def step_id(self) -> str:
        return self.name[3:]

    @property
    def kept(self) -> Path:
        return self.path / KEPT

    @property
    def done(self) -> Path:
        return self.path / DONE

    def kept_files(self) -> list[Path]:
        """The Parquet files of the kept rows, in order: ``kept.parquet``, or its shards when it is a folder."""
        return parquet_files(self.kept)

    def kept_shard(self, i: int) -> Path:
        return self.kept / f"{SHARD.format(i)}.parquet"

    def ledger_shard(self, i: int) -> Path:
        return self.run.ledger_dir / f"{self.name}.{SHARD.format(i)}.parquet"

    def quarantine_shard(self, i: int) -> Path:
        return self.run.quarantine_dir / f"{self.name}.{SHARD.format(i)}.jsonl"

    def shard_counts(self, i: int) -> Path:
        return self.path / SHARD_COUNTS / f"{SHARD.format(i)}.json"

    @property
    def work(self) -> Path:
        return self.path / WORK

    def shard_decisions(self, i: int) -> Path:
        """A distributed step's decisions about shard ``i``'s records (scratch: booked into the shard)."""
        return self.work / SHARD_DECISIONS / f"{SHARD.format(i)}.parquet"

    def shard_scores(self, i: int) -> Path:
        """A distributed scorer's score columns for shard ``i`` (scratch: booked into the kept shard)."""
        return self.work / SHARD_SCORES / f"{SHARD.format(i)}.parquet"

    def ledger_paths(self) -> list[Path]:
        """This step's ledger files on disk: the single file and/or its shards."""
        return self._with_shards(self.ledger, self.run.ledger_dir, ".parquet")

    def quarantine_paths(self) -> list[Path]:
        """This step's quarantine files on disk: the single file and/or its shards."""
        return self._with_shards(self.quarantine, self.run.quarantine_dir, ".jsonl")

    def _with_shards(self, single: Path, folder: Path, suffix: str) -> list[Path]:
        shards = sorted(folder.glob(f"{self.name}.{SHARD_GLOB}{suffix}")) if folder.is_dir() else []
        return ([single] if single.exists() else []) + shards

    @property
    def ledger(self) -> Path:
        return self.run.ledger_dir / f"{self.name}.parquet"

    @property
    def quarantine(self) -> Path:
        return self.run.quarantine_dir / f"{self.name}.jsonl"

    def file(self, artifact: Artifact) -> Path:
        """Where this step writes ``artifact``."""
        return self.path / artifact.name

    def has(self, artifact: Artifact) -> bool:
        return self.file(artifact).exists()


@dataclass(frozen=True)
class RecipeLayout:
    """``runs/<name>/``: the runs of one recipe and what they share."""

    root: Path

    @property
    def latest(self) -> Path:
        return self.root / LATEST

    @property
    def labels(self) -> Path:
        return self.root / LABELS_DB

    @property
    def llm_cache(self) -> Path:
        return self.root / LLM_CACHE_DB


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run directory. Pure path arithmetic, except :meth:`step_folders`, which lists.

    >>> lay = RunLayout(Path("runs/mini/20240101-000000"))
    >>> lay.step(3, "filter_length").kept
    PosixPath('runs/mini/20240101-000000/03_filter_length/kept.parquet')
    """

    root: Path

    @property
    def recipe(self) -> RecipeLayout:
        """The recipe's folder, ``runs/<name>/``, holding ``latest``, labels and the LLM cache."""
        return RecipeLayout(self.root.parent)

    # run-level files
    @property
    def spec(self) -> Path:
        return self.root / SPEC

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def report_md(self) -> Path:
        return self.root / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def ledger_dir(self) -> Path:
        return self.root / LEDGER_DIR

    @property
    def quarantine_dir(self) -> Path:
        return self.root / QUARANTINE_DIR

    # step folders
    @property
    def ingest(self) -> StepFolder:
        return StepFolder(self, INGEST)

    def step(self, i: int, step_id: str) -> StepFolder:
        """The folder of the ``i``-th step of the recipe (1-based; 0 is the ingest)."""
        return StepFolder(self, INGEST if i == 0 else f"{i:02d}_{step_id}")

    def folder(self, path_or_name: Path | str) -> StepFolder:
        """The step folder at ``path_or_name`` (a path inside this run, or a ``NN_<step_id>`` name)."""
        name = Path(path_or_name).name
        if not is_step_folder_name(name):
            raise ValueError(f"{path_or_name}: not a step folder (NN_<step_id>)")
        return StepFolder(self, name)

    def step_folders(self) -> list[StepFolder]:
        """Every ``NN_<step_id>`` folder on disk, in order (the ingest first)."""
        if not self.root.is_dir():
            return []
        return [StepFolder(self, d.name) for d in sorted(self.root.iterdir())
                if d.is_dir() and is_step_folder_name(d.name)]

    def step_named(self, step_id: str) -> StepFolder:
        """The folder on disk of the step with this id (``00_ingest`` for ``ingest``). Raises KeyError."""
        for f in self.step_folders():
            if f.step_id == step_id:
                return f
        raise KeyError(f"{self.root}: no folder of a step {step_id!r}")

    def ledger_files(self) -> list[Path]:
        return sorted(self.ledger_dir.glob("*.parquet")) if self.ledger_dir.is_dir() else []

    def quarantine_files(self) -> list[Path]:
        return sorted(self.quarantine_dir.glob("*.jsonl")) if self.quarantine_dir.is_dir() else []

    def find(self, artifact: Artifact, before: StepFolder | None = None) -> Path | None:
        """The newest ``artifact`` in any step folder (only those before ``before``, when given)."""
        hits = [f.file(artifact) for f in self.step_folders()
                if (before is None or f.name < before.name) and f.has(artifact)]
        return hits[-1] if hits else None

    def find_all(self, artifact: Artifact) -> Iterator[Path]:
        """``artifact`` of every step folder that has one, in step order (e.g. every dedup's groups)."""
        return (f.file(artifact) for f in self.step_folders() if f.has(artifact))
