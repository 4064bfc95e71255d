"""Export the kept records of a run: split, convert, write atomically, describe in a card.

One function, :func:`export_records`, serves both ``curate export RUN_DIR OUT_DIR`` (through
:func:`export_run`, which reads a finished run directory) and the ``write.hub_dataset`` step
(which passes the records and the step reports it gets from the runner).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from curate.errors import ConfigError, CurateError
from curate.export import formats
from curate.export.atomic import MANIFEST, atomic_output_dir, check_target, pause_for_tests, written_files
from curate.export.card import CardInput, build_card
from curate.export.hub import (
    DEFAULT_SHARD_ROWS,
    HubTarget,
    KeepScores,
    ShardWriter,
    SplitFiles,
    arrow_schema,
    features_yaml,
    hub_frame,
    language_column,
    score_columns,
    to_arrow,
)
from curate.export.licenses import summarize
from curate.export.splits import SplitSpec, assign_splits, parse_splits
from curate.layout import REPORT
from curate.rundir import RunDir, RunDirError
from curate.schema import COLUMNS, SchemaError, validate_record

EXPORT_VERSION = 2  # 2: export.json lists every file it wrote (``files``), so overwrite can prove it
BATCH_ROWS = 16_384  # records read, validated and converted at a time by the hub export


@dataclass
class ExportOptions:
    """How to export; the CLI flags and the step's params both end up here."""

    fmt: str = "hub"
    template: str | None = None
    splits: SplitSpec = field(default_factory=lambda: parse_splits("train=1.0"))
    shard_rows: int = DEFAULT_SHARD_ROWS
    seed: int | None = None  # None: the run's seed
    overwrite: bool = False
    keep_scores: KeepScores = "all"
    alpaca_multiturn: formats.AlpacaMultiturn = "history"
    licenses: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Reject contradictory options before any data is read. Raises ConfigError."""
        if self.fmt not in formats.FORMATS:
            raise ConfigError(f"unknown format {self.fmt!r}; choose one of {', '.join(formats.FORMATS)}")
        if self.fmt == "text":
            if self.template not in formats.TEMPLATES:
                raise ConfigError(f"--format text needs --template, one of {', '.join(formats.TEMPLATES)}")
        elif self.template is not None:
            raise ConfigError("--template applies only to --format text")
        if self.shard_rows < 1:
            raise ConfigError(f"--shard-rows must be >= 1, got {self.shard_rows}")
        if self.alpaca_multiturn not in ("history", "skip"):
            raise ConfigError(f"--alpaca-multiturn must be history or skip, got {self.alpaca_multiturn!r}")


@dataclass
class RunInfo:
    """What the card needs to know about the run (report.json's parts and the resolved spec)."""

    name: str
    spec: Mapping[str, Any]
    steps: Sequence[Mapping[str, Any]] = ()
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    totals: Mapping[str, Any] | None = None
    diversity: Mapping[str, Any] | None = None
    run_dir: str | None = None
    trial: str | None = None  # the run only tried the recipe (e.g. "--limit 100"): not the whole curated set

    @classmethod
    def from_run_dir(cls, rd: RunDir) -> RunInfo:
        report = rd.report()
        if not report:
            raise RunDirError(
                f"{rd.path}: no {REPORT}, so the run did not finish; resume or re-run it before exporting"
            )
        spec = rd.spec()
        return cls(
            name=str(report.get("name") or spec.get("name") or rd.path.name),
            spec=spec,
            steps=report.get("steps", []),
            sources=report.get("sources", {}),
            totals=report.get("totals"),
            diversity=report.get("diversity"),
            run_dir=str(rd.path),
            trial=f"--limit {report['limit']}" if report.get("limit") else None,
        )


@dataclass
class ExportResult:
    out_dir: Path
    fmt: str
    splits: list[SplitFiles]
    skipped: dict[str, int]
    n_kept: int
    url: str | None = None
    no_assistant: int = 0  # exported conversations without an assistant turn (nothing to train on)

    @property
    def n_exported(self) -> int:
        return sum(s.rows for s in self.splits)

    def summary(self) -> str:
        parts = ", ".join(f"{s.name} {s.rows:,}" for s in self.splits)
        line = f"exported {self.n_exported:,} of {self.n_kept:,} kept conversations as {self.fmt} to {self.out_dir} ({parts})"
        if self.skipped:
            reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]))
            line += f"\nskipped {sum(self.skipped.values()):,} that {self.fmt} cannot hold ({reasons}); see skipped.jsonl"
        if self.no_assistant:
            line += f"\nwarning: {no_assistant_note(self.no_assistant)}"
        if self.url:
            line += f"\npushed to {self.url}"
        return line


def no_assistant_note(n: int) -> str:
    """The one sentence about exported conversations without an assistant turn (summary, card)."""
    return (f"{n:,} exported conversation(s) have no assistant turn, so a trainer has no response to learn "
            "from; they are kept as curated (listed as no_assistant_turn in export.json). Remove them with "
            "a filter in the recipe if the set is for supervised fine-tuning.")


def has_assistant(turns: Sequence[Mapping[str, Any]]) -> bool:
    return any(t.get("role") == "assistant" for t in turns)


def _no_assistant_count(frame: pl.DataFrame) -> int:
    roles = pl.col("turns").list.eval(pl.element().struct.field("role") == "assistant").list.any()
    return int(frame.select((~roles.fill_null(False)).sum()).item())


def check_columns(columns: Sequence[str]) -> None:
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise CurateError(f"the kept records lack schema columns {missing}; is this a curate run directory?")


def check_ids(ids: pl.DataFrame) -> None:
    dup = ids.filter(pl.col("id").is_duplicated())["id"].unique().head(5).to_list()
    if dup:
        raise CurateError(f"the kept records repeat ids (e.g. {dup}); the run directory is corrupt")


def check_records(frame: pl.DataFrame) -> None:
    """Every exported record must follow the conversation schema, and ids must be unique."""
    check_columns(frame.columns)
    check_ids(frame.select("id"))
    validate_batch(frame)


def validate_batch(frame: pl.DataFrame) -> None:
    """Each record of ``frame`` must follow the conversation schema (checked one record at a time)."""
    bad: list[str] = []
    for row in frame.select("id", "source", "turns", "provenance").iter_rows(named=True):
        try:
            validate_record(row)
        except SchemaError as e:
            bad.append(f"{row['id']}: {e}")
            if len(bad) >= 5:
                break
    if bad:
        raise CurateError("kept records do not follow the conversation schema:\n  " + "\n  ".join(bad))


def _dump(obj: Any) -> bytes:
    import orjson

    return orjson.dumps(obj)


def _write_trainer_split(
    folder: Path, fmt: str, split: str, frame: pl.DataFrame, opts: ExportOptions,
    skipped_fh: Any, first_file: list[bool],
) -> tuple[SplitFiles, Counter[str], Counter[str], int]:
    """One split in a trainer format; returns its files, rows per source, skipped reasons and how many
    written conversations have no assistant turn."""
    rel = formats.file_name(fmt, split)
    as_array = rel.endswith(".json")
    per_source: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    rows = 0
    no_assistant = 0
    with (folder / rel).open("wb") as fh:
        if as_array:
            fh.write(b"[\n")
        for rec in frame.select("id", "source", "turns").iter_rows(named=True):
            try:
                out = formats.convert(fmt, rec["id"], rec["turns"], opts.template, opts.alpaca_multiturn)
            except formats.Inexpressible as e:
                skipped[e.reason] += 1
                skipped_fh.write(_dump({"id": rec["id"], "source": rec["source"], "split": split, "reason": e.reason}))
                skipped_fh.write(b"\n")
                continue
            if as_array and rows:
                fh.write(b",\n")
            fh.write(_dump(out))
            if not as_array:
                fh.write(b"\n")
            rows += 1
            per_source[rec["source"]] += 1
            no_assistant += not has_assistant(rec["turns"])
        if as_array:
            fh.write(b"\n]\n")
        size = fh.tell()
    if first_file[0]:
        first_file[0] = False
        pause_for_tests()
    return SplitFiles(split, rows, [rel], size), per_source, skipped, no_assistant


def _batches(records: Path | pl.DataFrame, schema: pl.Schema) -> Iterator[pl.DataFrame]:
    """The records ``BATCH_ROWS`` at a time: record batches of the Parquet file, or slices of a frame."""
    if isinstance(records, pl.DataFrame):
        yield from records.iter_slices(BATCH_ROWS)
        return
    import pyarrow.parquet as pq

    from curate.layout import parquet_files

    for path in parquet_files(records):  # one file, or the shards of a run made on Ray
        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS):
                df = pl.from_arrow(batch)
                assert isinstance(df, pl.DataFrame)
                yield df if df.schema == schema else df.cast(schema)


def _write_hub_splits(
    folder: Path, records: Path | pl.DataFrame, schema: pl.Schema, assignment: pl.DataFrame,
    opts: ExportOptions, scores: Sequence[str], lang_col: str | None, out_schema: Any, first_file: list[bool],
) -> tuple[list[SplitFiles], dict[str, int], int]:
    """Stream the records into each split's shards; returns the splits' files, the language counts and
    how many conversations have no assistant turn."""
    writers = {name: ShardWriter(folder, name, out_schema, opts.shard_rows, first_file) for name in opts.splits.names}
    split_of = assignment.select("id", "split")
    languages: Counter[str] = Counter()
    no_assistant = 0
    for batch in _batches(records, schema):
        validate_batch(batch)
        no_assistant += _no_assistant_count(batch)
        labelled = batch.join(split_of, on="id", how="left", maintain_order="left")
        table = hub_frame(labelled, scores, lang_col)
        for lang, n in table.group_by("language").len().drop_nulls("language").iter_rows():
            languages[str(lang)] += int(n)
        labels = labelled["split"]
        for name, writer in writers.items():
            part = table.filter(labels == name)
            if part.height:
                writer.write(to_arrow(part, out_schema))
    return [w.close() for w in writers.values()], dict(languages), no_assistant


def export_records(
    records: pl.LazyFrame | pl.DataFrame | Path,
    out_dir: str | Path,
    opts: ExportOptions,
    run: RunInfo,
    hub: HubTarget | None = None,
    private: bool = False,
) -> ExportResult:
    """Write the kept ``records`` to ``out_dir`` in ``opts.fmt`` with a card; push if ``hub`` is given.

    Fails before writing anything on bad options, a bad target folder, invalid records or counts
    that do not match the run's report; a failure or kill mid-way leaves no ``out_dir``.
    """
    opts.check()
    out = Path(out_dir)
    check_target(out.absolute(), opts.overwrite)
    lic = summarize(run.spec.get("sources", []), opts.licenses)
    if isinstance(records, pl.LazyFrame):
        records = records.collect()
    seed = int(opts.seed if opts.seed is not None else run.spec.get("seed", 0) or 0)
    frame: pl.DataFrame | None = None
    ordered: pl.DataFrame | None = None
    if opts.fmt == "hub":
        # The hub export streams: only ids and sources are held for the split; the records are
        # read, validated and written a batch at a time.
        if isinstance(records, Path):
            schema = pl.scan_parquet(records).collect_schema()
            check_columns(list(schema))
            ids = pl.scan_parquet(records).select("id", "source").collect()
        else:
            schema = records.schema
            check_columns(records.columns)
            ids = records.select("id", "source")
        check_ids(ids)
    else:
        frame = pl.read_parquet(records) if isinstance(records, Path) else records
        check_records(frame)
        schema = frame.schema
        ids = frame.select("id", "source")
    n_kept = ids.height
    if n_kept == 0:
        raise CurateError("the run kept no records; there is nothing to export")
    assignment = assign_splits(ids, opts.splits, seed)
    if frame is not None:
        ordered = assignment.select("id", "split").join(frame, on="id", how="left", maintain_order="left")

    split_files: list[SplitFiles] = []
    by_source: dict[str, dict[str, int]] = {}
    skipped: Counter[str] = Counter()
    languages: dict[str, int] = {}
    score_types: dict[str, str] = {}
    features = None
    lang_col = language_column(list(schema))
    first_file = [True]
    no_assistant = 0
    with atomic_output_dir(out, opts.overwrite) as tmp:
        if opts.fmt == "hub":
            scores = score_columns(schema, opts.keep_scores)
            out_schema = arrow_schema(hub_frame(pl.DataFrame(schema=schema), scores, lang_col))
            features = features_yaml(out_schema)
            score_types = {f["name"]: f["dtype"] for f in features if f["name"] in scores}
            assert not isinstance(records, pl.LazyFrame)
            split_files, languages, no_assistant = _write_hub_splits(
                tmp, records, schema, assignment, opts, scores, lang_col, out_schema, first_file
            )
            counts = assignment.group_by("source", "split").len()
            for src, split, n in counts.iter_rows():
                by_source.setdefault(src, {})[split] = n
        else:
            assert frame is not None and ordered is not None
            with (tmp / "skipped.jsonl").open("wb") as skipped_fh:
                for name in opts.splits.names:
                    part = ordered.filter(pl.col("split") == name)
                    files, per_source, why, lacking = _write_trainer_split(
                        tmp, opts.fmt, name, part, opts, skipped_fh, first_file
                    )
                    no_assistant += lacking
                    split_files.append(files)
                    skipped.update(why)
                    for src, n in per_source.items():
                        by_source.setdefault(src, {})[name] = n
            if not skipped:
                (tmp / "skipped.jsonl").unlink()
            if opts.fmt in ("sharegpt", "alpaca"):
                info = formats.llamafactory_info(opts.fmt, run.name.replace("-", "_"), opts.splits.names)
                (tmp / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            if lang_col:  # languages of what was written, not of what was skipped
                skipped_ids = _skipped_ids(tmp)
                lang = frame.filter(~pl.col("id").is_in(list(skipped_ids))) if skipped_ids else frame
                languages = {str(k): int(v) for k, v in lang.group_by(lang_col).len().drop_nulls(lang_col).iter_rows()}
        data_files = {
            s.name: (f"data/{s.name}-*" if opts.fmt == "hub" else s.files[0]) for s in split_files
        }
        card = CardInput(
            name=run.name,
            spec=run.spec,
            steps=run.steps,
            licenses=lic,
            splits=split_files,
            exported_by_source=by_source,
            n_kept=n_kept,
            kept_by_source={str(k): int(v) for k, v in ids.group_by("source").len().iter_rows()},
            fmt=opts.fmt,
            template=opts.template,
            seed=seed,
            sources=run.sources,
            totals=run.totals,
            diversity=run.diversity,
            languages=languages,
            lang_col=lang_col,
            score_types=score_types,
            features=features,
            skipped=dict(skipped),
            data_files=data_files,
            no_assistant=no_assistant,
            trial=run.trial,
        )
        (tmp / "README.md").write_text(build_card(card), encoding="utf-8")
        manifest = {
            "curate_export": EXPORT_VERSION,
            "format": opts.fmt,
            "template": opts.template,
            "run_name": run.name,
            "run_dir": run.run_dir,
            "seed": seed,
            "splits_requested": opts.splits.as_text(),
            "splits": {s.name: {"rows": s.rows, "files": s.files} for s in split_files},
            "n_kept": n_kept,
            "n_exported": sum(s.rows for s in split_files),
            "skipped": dict(skipped),
            "no_assistant_turn": no_assistant,
            "trial": run.trial,
            "language_column": lang_col,
            "score_columns": list(score_types),
            "licenses": {p.source: p.info.license for p in lic.per_source},
            # everything curate wrote here: a later overwrite replaces the folder only if nothing else is in it
            "files": written_files(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    result = ExportResult(out.absolute(), opts.fmt, split_files, dict(skipped), n_kept, no_assistant=no_assistant)
    if hub is not None:
        from curate.export.hub import push_folder

        result.url = push_folder(hub, result.out_dir, private)
    return result


def _skipped_ids(folder: Path) -> set[str]:
    path = folder / "skipped.jsonl"
    if not path.exists():
        return set()
    with path.open(encoding="utf-8") as fh:
        return {json.loads(line)["id"] for line in fh if line.strip()}


def export_run(run_dir: str | Path, out_dir: str | Path, opts: ExportOptions, step: str | None = None,
               **kw: Any) -> ExportResult:
    """Export a finished run directory (``runs/<name>/<ts>`` or ``runs/<name>`` with ``latest``).

    ``step``: export the records kept after that step instead of the final ones (``ingest``: everything
    read, before any filter; the uncurated baseline that ``curate eval`` compares against).
    """
    opts.check()
    rd = RunDir(run_dir)
    run = RunInfo.from_run_dir(rd)
    kept = rd.final_path()
    if step is not None:
        done = {f.step_id: f for f in rd.finished_steps()}
        if step not in done:
            raise ConfigError(f"--step {step}: no finished step of that id in {rd.path} (finished: {', '.join(done)})")
        kept = done[step].kept
        ids = [str(s.get("step_id")) for s in run.steps]
        upto = ids.index(step) + 1 if step in ids else 0
        # the run's totals, per-source kept counts and diversity describe its final records, not these
        sources = {sid: {k: v for k, v in st.items() if k != "kept"} for sid, st in run.sources.items()}
        run = replace(run, steps=list(run.steps)[:upto], sources=sources, totals=None, diversity=None,
                      trial=f"curate export --step {step}")
    if rd.report().get("dry_run"):
        raise ConfigError(
            f"{rd.path} is a dry run (--dry-run): its filters only measured and nothing was removed, so its "
            "records are not the curated set; run the recipe without --dry-run, then export"
        )
    out = Path(out_dir).absolute()
    run_path = rd.path.absolute()
    if out == run_path or out in run_path.parents:
        raise ConfigError(f"{out}: the export folder would replace the run directory {run_path}; choose another")
    return export_records(kept, out, opts, run, **kw)
