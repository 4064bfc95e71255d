"""Reject conversations whose final answer refuses or deflects instead of doing the task (filter.refusal)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import polars as pl
import yaml
from pydantic import Field, field_validator, model_validator

from curate.steps.base import Filter, FilterParams
from curate.steps.registry import register

_FAMILY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Characters that are special in polars' (Rust) regex syntax and must be escaped in a literal.
_RUST_META = set(r"\.+*?()|[]{}^$#&-~")


@functools.lru_cache(maxsize=1)
def default_phrases() -> dict[str, tuple[str, ...]]:
    """The shipped phrase families (``refusal_phrases.yaml``), in file order."""
    text = resources.files("curate.steps.filter").joinpath("refusal_phrases.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {fam: tuple(str(p) for p in phrases) for fam, phrases in data.items()}


def phrase_regex(phrases: list[str] | tuple[str, ...]) -> str:
    """One alternation for a family: literal phrases, any whitespace run matching any whitespace."""
    alts = []
    for p in phrases:
        words = p.lower().replace("\u2019", "'").split()
        alts.append(r"\s+".join("".join("\\" + ch if ch in _RUST_META else ch for ch in w) for w in words))
    return "(?:" + "|".join(alts) + ")"


# A family whose phrases describe the assistant; never a refusal marker by itself.
IDENTITY_FAMILY = "identity"
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
# "As an AI I have no favourites, but here are five places ...": the clause after "but" can answer.
_CLAUSES = re.compile(r",?\s+but\s+|[;,]\s*however,?\s+")
_QUOTED = re.compile(r"\"[^\"\n]{1,400}\"|\u201c[^\u201d\n]{1,400}\u201d")
# Sentences that send the user elsewhere or offer help instead of giving it.
_REDIRECT = re.compile(
    r"\bhowever, (?:i|you)\b|\bi (?:can|could) (?:suggest|recommend|provide|help|offer|assist)\b|\bi (?:suggest|recommend)\b"
    r"|\byou (?:can|could|may|might|should|will need to|would need to) (?:use|try|check|consult|refer|search|visit|ask|look)\b"
    r"|\bplease (?:consult|check|refer|visit|provide|let me know)\b|\bis there anything else\b|\bfeel free to\b"
    r"|\bif you (?:would like|have any|need)\b|\b(?:could|can) you (?:please )?provide\b|\blet me know\b"
    r"|\bthe best way to (?:find|get|know|check|learn)\b"
    r"|\b(?:check|visit|consult|refer to|contact|ask)\b[^.!?]{0,60}\b(?:website|site|app|source|sources|professional"
    r"|expert|advisor|agent|doctor|provider|office)\b"
)
# Sentences about the assistant itself: a refusal explains itself in the first person.
_SELF = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|myself)\b")
# Prompts that make refusal words part of the answer, or a refusal the right answer.
_IDENTITY_Q = re.compile(
    r"\b(?:who|what) (?:are|r) (?:you|u)\b|\byour name\b|\babout yourself\b|\bintroduce yourself\b"
    r"|\b(?:tell me|talk) about (?:you|yourself)\b|\b(?:who|what) you are\b|\bdescribe yourself\b"
    r"|\bare you (?:an? |the )?(?:ai|bot|robot|human|person|chatgpt|gpt|real|sentient|conscious|language model|alive|machine)"
    r"|\bwho (?:made|created|built|trained|developed|designed|programmed|owns) you\b"
    r"|\bwhat (?:model|version|kind of (?:ai|model|assistant))\b|\bwhich (?:model|company)\b"
)
_CAPABILITY_Q = re.compile(
    r"\b(?:can't|cannot|can not|unable to|not able to) (?:you|help)\b|\bcan(?:'t| ?not)? you (?:do|help)\b"
    r"|\byour (?:limitations|capabilities|limits|abilities)\b|\bthings you (?:can't|cannot|can not)\b"
)
_WRITE_TASK = re.compile(
    r"\b(?:translate|translation|rewrite|rephrase|paraphrase|quote)\b"
    r"|\b(?:write|generate|compose|draft|create|give me|come up with|make up)\b[^.?!\n]{0,40}?"
    r"\b(?:excuse|message|e-?mail|letter|note|reply|response|dialogue|dialog|conversation|script|story|apology"
    r"|text|speech|tweet|post|sentence|statement|lines?)\b"
)
# A refusal of the writing task itself, not refusal words inside the requested text: it speaks of
# the request, of answering or helping, or of being an AI.
_META_REFUSAL = re.compile(
    r"\b(?:this|that|your|the) (?:request|task|question)\b|\banswer (?:that|this)\b|\bprovide (?:information|that|this)\b"
    r"|\b(?:help|assist) you with\b|\bfulfill\b|\bcomply\b|\bguidelines\b|\bas an ai\b|\blanguage model\b"
)
# Prompts whose answer is a question: a question back is then the task done, not a deflection.
_ASKS_FOR_QUESTION = re.compile(
    r"\b(?:ask|write|generate|create|compose|construct|formulate|come up with|make up|suggest|give me|think of"
    r"|propose|design|draft|pose|develop)\b[^.!\n]{0,60}?\b(?:questions?|quiz(?:zes)?|riddles?|surveys?|polls?"
    r"|questionnaires?|interview|prompts?|queries|query)\b"
)
# Thanks or praise with no request: a polite "anything else?" is the right answer to it.
_THANKS = re.compile(r"\b(?:thanks?|thank you|thx|appreciate|good job|well done|great job|awesome|perfect)\b")
_LICENSED = re.compile(
    r"\bif you (?:don't|do not|can't|cannot) (?:know|find|answer)\b|\bsay (?:that )?you (?:don't|do not) know\b"
    r"|\b(?:only|just) (?:answer|respond|reply|help)\b|\bwill only (?:answer|respond)\b|\bdo not answer\b"
)


def _only_questions(low: str) -> bool:
    """The turn only asks back ("What is today's date?"), after at most a short "Sure!"."""
    sents = [x.strip() for x in _SENTENCES.split(low) if x.strip()]
    if not sents or len(low.split()) > 30:
        return False
    if len(sents) > 1 and len(sents[0].split()) <= 3 and not sents[0].endswith("?"):
        sents = sents[1:]
    return all(x.endswith("?") for x in sents)


def _fold_py(text: str) -> str:
    return text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")


@dataclass(frozen=True)
class TurnJudgement:
    kind: str | None  # "refusal", "disclaimer", "identity" or None
    family: str | None
    answer_words: int


def judge_turn(
    text: str, prompt: str, families: dict[str, re.Pattern[str]], min_answer_words: int, max_lecture_words: int
) -> TurnJudgement:
    """Whether one assistant turn refuses, does the task after a disclaimer, states its identity, or none.

    A refusal phrase outside quotes marks the turn. It is a ``refusal`` when fewer than
    ``min_answer_words`` words of answer are left: words in sentences with no refusal phrase, no
    redirect ("you can check ...", "is there anything else"), no first person, and no question
    back to the user. It is also one when the first and last sentences both refuse and less than
    ``max_lecture_words`` words lie between (a refusal with a lecture). Otherwise a matched turn
    is a ``disclaimer`` (the task is done after it). Identity phrases only ever give ``identity``.
    Prompts that ask about the assistant, ask to write or translate the text, or tell it to
    decline when it cannot answer never yield a refusal.
    """
    low = _fold_py(text)
    quoted = [(m.start(), m.end()) for m in _QUOTED.finditer(low)]

    def hit(fam_rx: re.Pattern[str], s: str, offset: int | None = None) -> re.Match[str] | None:
        for m in fam_rx.finditer(s):
            if offset is None or not any(a <= offset + m.start() < b for a, b in quoted):
                return m
        return None

    first_family: str | None = None
    first_pos = len(low) + 1
    identity = False
    for fam, rx in families.items():
        m = hit(rx, low, 0)
        if m is None:
            continue
        if fam == IDENTITY_FAMILY:
            identity = True
        elif m.start() < first_pos:
            first_family, first_pos = fam, m.start()
    p = _fold_py(prompt)
    if first_family is None:
        if (
            not identity
            and _only_questions(low)
            and len(p.split()) >= 4
            and not _LICENSED.search(p)
            and not _ASKS_FOR_QUESTION.search(p)
            and not (_THANKS.search(p) and "?" not in p)
        ):
            return TurnJudgement("refusal", "deflect", 0)  # answers a task with a question back
        return TurnJudgement("identity" if identity else None, IDENTITY_FAMILY if identity else None, 0)
    if _IDENTITY_Q.search(p) or _CAPABILITY_Q.search(p):
        return TurnJudgement("identity", first_family, 0)
    if _LICENSED.search(p) or (_WRITE_TASK.search(p) and not _META_REFUSAL.search(low)):
        return TurnJudgement(None, None, 0)
    refusing = [fam for fam in families if fam != IDENTITY_FAMILY]
    sents = [x for x in _SENTENCES.split(low) if x.strip()]
    clauses = [c for x in sents for c in _CLAUSES.split(x) if c.strip()]

    def refuses(sent: str) -> bool:
        return any(hit(families[f], sent) for f in refusing)

    answer = 0
    for sent in clauses:
        if refuses(sent) or _REDIRECT.search(sent) or _SELF.search(sent) or sent.rstrip().endswith("?"):
            continue
        answer += len(sent.split())
    lecture = len(sents) >= 2 and refuses(sents[0]) and refuses(sents[-1]) and answer < max_lecture_words
    if answer < min_answer_words or lecture:
        return TurnJudgement("refusal", first_family, answer)
    return TurnJudgement("disclaimer", first_family, answer)


@register("filter.refusal")
class RefusalFilter(Filter):
    """Reject conversations whose final answer refuses or deflects instead of doing the task.

    Phrases ship in ``refusal_phrases.yaml`` (families ai_disclaimer, cannot_comply, no_opinion,
    knowledge_cutoff, policy, deflect, identity), collected from the lists used to build the
    "unfiltered" Vicuna and WizardLM sets and GPT4All's cleaning notes. A phrase is only a sign:
    :func:`judge_turn` decides whether the turn declines (little answer is left once refusal,
    redirect and first-person sentences are set aside) or does the task after a disclaimer.
    Matching is case-insensitive, on the assistant turns of ``scope``; phrases inside quotes do not
    count, and prompts that ask about the assistant, ask for the text to be written or
    translated, or tell it to decline when it cannot answer are never refusals.

    Kept, with a flag (``<id>.flag``): ``ai_disclaimer`` (a disclaimer, then the task done),
    ``identity`` (what the assistant is, e.g. "I'm a language model trained by ..." to "who are
    you?"), ``partial_refusal`` (an earlier turn refused, the final answer did not). List a flag in
    ``remove_flags`` to remove such records.

    Reasons: refusal_ai_disclaimer, refusal_cannot_comply, refusal_no_opinion,
    refusal_knowledge_cutoff, refusal_policy, refusal_deflect, and refusal_<family> for each family
    added in ``extra_phrases``; with ``remove_flags``: ai_disclaimer, identity, partial_refusal.
    Flags: ai_disclaimer, identity, partial_refusal.
    """

    class Params(FilterParams):
        scope: Literal["any_assistant", "first_assistant", "last_assistant"] = Field(
            "last_assistant",
            description="Which assistant turns can refuse: the final answer (a refusal in an earlier turn "
            "is flagged partial_refusal), the first, or any.",
        )
        extra_phrases: dict[str, list[str]] = Field(
            default_factory=dict,
            description="More phrases per family ({family: [phrases]}); new families are allowed.",
        )
        disable_families: list[str] = Field(
            default_factory=list, description="Families (shipped or extra) that are not checked."
        )
        min_answer_words: int = Field(
            12, ge=0, description="A turn with a refusal phrase and fewer words of answer than this refuses."
        )
        max_lecture_words: int = Field(
            60, ge=0, description="A turn that opens and closes with a refusal and has less answer than this refuses."
        )
        remove_flags: list[Literal["ai_disclaimer", "identity", "partial_refusal"]] = Field(
            default_factory=list, description="Flags that remove the record instead of marking it."
        )

        @field_validator("extra_phrases")
        @classmethod
        def _names(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
            for fam, phrases in v.items():
                if not _FAMILY_NAME.match(fam):
                    raise ValueError(f"family {fam!r} must be lowercase snake_case (it becomes a reason)")
                if any(not p.strip() for p in phrases):
                    raise ValueError(f"family {fam!r} has an empty phrase (it would match everything)")
            return v

        @model_validator(mode="after")
        def _known_families(self) -> RefusalFilter.Params:
            known = [*default_phrases(), *self.extra_phrases]
            unknown = [f for f in self.disable_families if f not in known]
            if unknown:
                raise ValueError(f"disable_families names unknown families {unknown}; known: {known}")
            return self

    params: Params

    def families(self) -> dict[str, str]:
        """Family name -> regex, in match order."""
        merged: dict[str, list[str]] = {f: list(p) for f, p in default_phrases().items()}
        for fam, phrases in self.params.extra_phrases.items():
            merged.setdefault(fam, []).extend(phrases)
        return {f: phrase_regex(p) for f, p in merged.items() if f not in self.params.disable_families and p}

    @functools.cached_property
    def _compiled(self) -> dict[str, re.Pattern[str]]:
        return {f: re.compile(rx) for f, rx in self.families().items()}

    def _judge(self, turns: list[dict[str, Any]] | None) -> dict[str, Any]:
        p = self.params
        prompt = ""
        judged: list[TurnJudgement] = []
        for t in turns or []:
            if t["role"] == "user":
                prompt = t["content"] or ""
            elif t["role"] == "assistant":
                judged.append(judge_turn(t["content"] or "", prompt, self._compiled, p.min_answer_words,
                                         p.max_lecture_words))
        none = {"kind": None, "family": None, "answer_words": None, "flag": None}
        if not judged:
            return none
        if p.scope == "first_assistant":
            pick, rest = [judged[0]], judged[1:]
        elif p.scope == "last_assistant":
            pick, rest = [judged[-1]], judged[:-1]
        else:
            pick, rest = judged, []
        refusal = next((j for j in pick if j.kind == "refusal"), None)
        main = refusal or next((j for j in pick if j.kind is not None), None)
        flag = None
        if refusal is None:
            if main is not None and main.kind == "disclaimer":
                flag = "ai_disclaimer"
            elif any(j.kind == "refusal" for j in rest):
                flag = "partial_refusal"
            elif main is not None and main.kind == "identity":
                flag = "identity"
        if main is None:
            return {**none, "flag": flag}
        return {"kind": main.kind, "family": main.family, "answer_words": main.answer_words, "flag": flag}

    def measure(self, batch: pl.DataFrame) -> pl.DataFrame:
        res = pl.Series(
            [self._judge(t) for t in batch["turns"].to_list()],
            dtype=pl.Struct({"kind": pl.Utf8, "family": pl.Utf8, "answer_words": pl.Int32, "flag": pl.Utf8}),
        )
        return batch.with_columns(
            res.struct.field("kind").alias(f"{self.id}.kind"),
            res.struct.field("family").alias(f"{self.id}.family"),
            res.struct.field("answer_words").alias(f"{self.id}.answer_words"),
            res.struct.field("flag").alias(f"{self.id}.flag_kind"),
        )

    def reject_reason(self, batch: pl.DataFrame) -> pl.Series:
        fam, kind, flag = pl.col(f"{self.id}.family"), pl.col(f"{self.id}.kind"), pl.col(f"{self.id}.flag_kind")
        remove = list(self.params.remove_flags)
        return batch.select(
            pl.when(kind == "refusal")
            .then(pl.lit("refusal_") + fam)
            .when(flag.is_in(remove) if remove else pl.lit(False))
            .then(flag)
            .otherwise(pl.lit(None, dtype=pl.Utf8))
            .alias("reason")
        ).to_series()

    def flag_reason(self, batch: pl.DataFrame) -> pl.Series:
        return batch.select(pl.col(f"{self.id}.flag_kind").alias("flag")).to_series()
