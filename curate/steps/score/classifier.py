"""``score.classifier``: P(bad) from a small classifier trained on people's labels (browser or gold files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from curate import layout as L
from curate.errors import ConfigError
from curate.steps.base import GlobalResult, GlobalStep, StepContext, StepParams
from curate.steps.embed.texts import text_expr
from curate.steps.registry import register

CHUNK_ROWS = 20_000  # records scored per slice of the input
# Embeddings of these scopes include the answer; prompt-only embeddings cannot tell a bad answer apart.
_ANSWER_SCOPES = ("conversation", "assistant")
FeatureKind = Literal["embeddings", "tfidf"]


@dataclass
class TrainingSet:
    """Labelled conversations: y = 1 for bad (browser ``drop``, any gold label but ``keep``), 0 for good."""

    batch: pl.DataFrame  # conversation schema (id, turns, ...), one row per labelled record
    y: np.ndarray
    run_ids: list[str | None] = field(default_factory=list)  # the run record each row is, or None (gold)

    @property
    def n_bad(self) -> int:
        return int(self.y.sum())

    @property
    def n_good(self) -> int:
        return int(len(self.y) - self.y.sum())


def make_model(features: FeatureKind, *, c: float = 1.0, max_features: int = 50_000, seed: int = 0) -> Any:
    """The classifier: logistic regression (balanced classes) on TF-IDF word 1-2-grams or on embeddings."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    if features == "embeddings":
        return lr
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=max_features,
                            strip_accents="unicode")
    return make_pipeline(tfidf, lr)


def cross_validated_proba(x: Any, y: np.ndarray, model: Any, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold P(bad) of every training row: each row is scored by a model that never saw it."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    folds = max(2, min(folds, int(min(y.sum(), len(y) - y.sum()))))
    out = np.zeros(len(y), dtype=np.float64)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        m = clone(model).fit(_rows(x, train), y[train])
        out[test] = m.predict_proba(_rows(x, test))[:, 1]
    return out


def auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def _rows(x: Any, idx: np.ndarray) -> Any:
    return x[idx] if isinstance(x, np.ndarray) else [x[i] for i in idx]


@register("score.classifier")
class ClassifierScorer(GlobalStep):
    """Score each record's probability of being bad with a classifier trained on labelled records.

    Training rows: the browser's labels (``drop`` = bad, ``keep`` = good; the labels store of
    ``label.apply``: ``labels_path``, else the runner's ``--labels``, else ``runs/<name>/labels.sqlite``;
    labelled records are found among this step's input and the run's ledger) and any gold files (the
    format of ``curate.gold``: label ``keep`` = good, every other label = bad). The classifier is a
    logistic regression with balanced classes on the run's embeddings when an embed step embedded text
    that includes the answer (``text: conversation`` or ``assistant``; ``features: embeddings`` forces
    them, rows not in the run are embedded with the same model), else on TF-IDF word 1-2-grams of
    ``text``. The report holds the ``folds``-fold cross-validated ROC AUC (``cv_auc``); ``<id>.score``
    is P(bad), and a training record gets its out-of-fold probability, never a score from a model
    trained on it (``<id>.trained_on`` marks them). Decides nothing: ``filter.score`` removes by threshold.

    Reasons: none (a scorer).
    """

    def needed(self) -> tuple[L.Artifact, ...]:
        return (L.EMBEDDINGS, L.EMBEDDING_IDS) if self.params.features == "embeddings" else ()

    kind: ClassVar[str] = "score"

    class Params(StepParams):
        use_labels: bool = Field(True, description="Train on the browser's labels (keep = good, drop = bad).")
        labels_path: str | None = Field(
            None, description="Labels SQLite file; null = the runner's --labels, else runs/<name>/labels.sqlite."
        )
        gold: list[str] = Field(default_factory=list, description="Gold files (curate.gold format) to train on too.")
        features: Literal["auto", "embeddings", "tfidf"] = Field(
            "auto", description="auto: the run's embeddings when they include the answer, else TF-IDF."
        )
        text: Literal["conversation", "assistant", "user", "first_user"] = Field(
            "conversation", description="Text the TF-IDF features read."
        )
        folds: int = Field(5, ge=2, le=20, description="Cross-validation folds for the AUC and out-of-fold scores.")
        c: float = Field(1.0, gt=0, description="Inverse regularisation strength C of the logistic regression.")
        max_features: int = Field(50_000, ge=10, description="Largest TF-IDF vocabulary.")
        min_per_class: int = Field(5, ge=2, description="Fewest bad and fewest good training records to train at all.")

    # -- training rows ------------------------------------------------------------------------------
    def training_set(self, ds: pl.LazyFrame, ctx: StepContext) -> TrainingSet:
        p = self.params
        parts: list[pl.DataFrame] = []
        ys: list[int] = []
        run_ids: list[str | None] = []
        if p.use_labels:
            lab = self._labelled(ds, ctx)
            if len(lab):
                parts.append(lab.drop("_bad"))
                ys += lab["_bad"].to_list()
                run_ids += lab["id"].to_list()
        for path in p.gold:
            from curate.gold import gold_batch, load_gold

            records = load_gold(path)
            b = gold_batch(records).drop("_gold_row")
            parts.append(b)
            ys += [0 if r.label == "keep" else 1 for r in records]
            run_ids += [None] * len(records)
        cols = ["id", "turns"]
        batch = pl.concat([x.select(cols) for x in parts]) if parts else pl.DataFrame(
            schema={"id": pl.Utf8, "turns": pl.List(pl.Struct({"role": pl.Utf8, "content": pl.Utf8}))})
        return TrainingSet(batch=batch, y=np.asarray(ys, dtype=np.int64), run_ids=run_ids)

    def _labelled(self, ds: pl.LazyFrame, ctx: StepContext) -> pl.DataFrame:
        from curate.steps.label.apply import ApplyLabel

        eff = ApplyLabel.effective({"path": self.params.labels_path}, ctx.run_dir, ctx.extra.get("labels_path"))
        eff = eff.filter(pl.col("label").is_in(["keep", "drop"]))
        if eff.is_empty():
            self.report_extra["labels_used"] = 0.0
            return pl.DataFrame()
        want = eff.select(pl.col("record_id").alias("id"), (pl.col("label") == "drop").cast(pl.Int64).alias("_bad"))
        frames = [ds.select("id", "turns")]
        ledger = _ledger(ctx.run_dir)
        if ledger is not None:
            frames.append(ledger.select("id", "turns"))
        pool = pl.concat(frames).join(want.lazy(), on="id", how="semi").unique("id", keep="first").collect()
        found = want.join(pool, on="id", how="inner")
        self.report_extra["labels_used"] = float(len(found))
        self.report_extra["labels_unmatched"] = float(len(want) - len(found))
        return found.select("id", "turns", "_bad")

    # -- features -----------------------------------------------------------------------------------
    def _feature_kind(self, ctx: StepContext) -> FeatureKind:
        from curate.index import vectors as vx

        emb = ctx.find_artifact(L.EMBEDDINGS)
        if self.params.features == "tfidf":
            return "tfidf"
        if self.params.features == "embeddings":
            if emb is None:
                raise ConfigError(f"{self.id}: features: embeddings, but no embed step ran before this step")
            return "embeddings"
        if emb is None:
            return "tfidf"
        return "embeddings" if vx.load_embedding_info(emb).get("text") in _ANSWER_SCOPES else "tfidf"

    def _train_vectors(self, ts: TrainingSet, ctx: StepContext) -> np.ndarray:
        """Embeddings of the training rows: the run's where it has them, else embedded by the run's model."""
        from curate.index import vectors as vx

        emb = ctx.find_artifact(L.EMBEDDINGS)
        assert emb is not None
        emb_ids, matrix = vx.load_embeddings(emb)
        pos = {rid: i for i, rid in enumerate(emb_ids.to_list())}
        rows = [pos.get(rid) if rid is not None else None for rid in ts.run_ids]
        missing = [i for i, r in enumerate(rows) if r is None]
        out = np.zeros((len(rows), matrix.shape[1]), dtype=np.float32)
        have = [(i, r) for i, r in enumerate(rows) if r is not None]
        if have:
            out[[i for i, _ in have]] = matrix[[r for _, r in have]]
        if missing:
            info = vx.load_embedding_info(emb)
            embedder = _run_embedder(ctx, Path(emb).parent.name)
            texts = ts.batch[missing].select(text_expr(str(info.get("text", "first_user")))).to_series().to_list()
            vecs = np.asarray(embedder.embed(texts), dtype=np.float32)
            out[missing] = vx.normalize_rows(vecs)
            self.report_extra["train_rows_embedded"] = float(len(missing))
        return out

    # -- the step -----------------------------------------------------------------------------------
    def run(self, ds: pl.LazyFrame, ctx: StepContext) -> GlobalResult:
        p = self.params
        ts = self.training_set(ds, ctx)
        if ts.n_bad < p.min_per_class or ts.n_good < p.min_per_class:
            raise ConfigError(
                f"{self.id}: {ts.n_bad} bad and {ts.n_good} good labelled records, fewer than min_per_class="
                f"{p.min_per_class} of each; label more records in `curate browse` (keep / drop) or add gold files"
            )
        kind = self._feature_kind(ctx)
        model = make_model(kind, c=p.c, max_features=p.max_features, seed=self.seed)
        x_train: Any = self._train_vectors(ts, ctx) if kind == "embeddings" else texts_for(ts.batch, p.text)
        oof = cross_validated_proba(x_train, ts.y, model, folds=p.folds, seed=self.seed)
        self.report_extra.update({
            "cv_auc": round(auc(ts.y, oof), 4), "train_rows": float(len(ts.y)), "train_bad": float(ts.n_bad),
            "train_good": float(ts.n_good), "features_embeddings": float(kind == "embeddings"),
        })
        model.fit(x_train, ts.y)
        oof_by_id = {rid: float(s) for rid, s in zip(ts.run_ids, oof) if rid is not None}
        n = ds.select(pl.len()).collect().item()
        parts: list[pl.DataFrame] = []
        for off in range(0, n, CHUNK_ROWS):
            part = ds.slice(off, CHUNK_ROWS).select("id", "turns").collect()
            x: Any
            if kind == "embeddings":
                from curate.steps.score.diversity import aligned_vectors

                x = aligned_vectors(ctx, part["id"])
            else:
                x = texts_for(part, p.text)
            prob = model.predict_proba(x)[:, 1] if len(part) else np.zeros(0)
            ids = part["id"].to_list()
            trained = [rid in oof_by_id for rid in ids]
            score = [oof_by_id[rid] if t else float(s) for rid, t, s in zip(ids, trained, prob)]
            parts.append(pl.DataFrame({"id": ids, f"{self.id}.score": score, f"{self.id}.trained_on": trained},
                                      schema={"id": pl.Utf8, f"{self.id}.score": pl.Float64,
                                              f"{self.id}.trained_on": pl.Boolean}))
        scores = pl.concat(parts) if parts else None
        return GlobalResult(scores=scores)


def _ledger(run_dir: Path) -> pl.LazyFrame | None:
    from curate.rundir import RunDir, RunDirError

    try:
        return RunDir(run_dir).ledger()
    except RunDirError:
        return None


def _run_embedder(ctx: StepContext, folder: str) -> Any:
    """The embed step that wrote the run's embeddings (folder ``NN_<step id>``), rebuilt from the run's spec."""
    from curate.steps.registry import get_step

    step_id = folder[3:]
    for st in (ctx.extra.get("spec") or {}).get("steps", []):
        if str(st.get("id")) == step_id:
            cls = get_step(str(st["use"]))
            return cls(cls.Params.model_validate(st.get("params") or {}), step_id=step_id)
    raise ConfigError(f"cannot find the embed step {step_id!r} in the run's spec to embed labelled records with")


def texts_for(batch: pl.DataFrame, scope: str) -> list[str]:
    """The text of each conversation for the TF-IDF features (``scope`` as in embed steps)."""
    return batch.select(text_expr(scope)).to_series().to_list()
