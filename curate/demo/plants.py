"""Planted problems: near duplicates, failed responses, non-English, overlong chats."""

from __future__ import annotations

import itertools
import string
from random import Random

from curate.demo import text as T
from curate.demo.common import (
    NEAR_DUP_MIN_NGRAM_JACCARD,
    OVERLONG_WORDS,
    TRUNCATED_MIN_WORDS,
    WORD_TOKEN,
    Conv,
    jaccard,
    tokens,
)
from curate.demo.writer import ConvSeen, Writer

# ---------------------------------------------------------------------------------------------- plants


_SWAPS = {
    "usually": "often", "often": "frequently", "good": "great", "best": "ideal", "quickly": "fast",
    "small": "little", "large": "big", "important": "essential", "easier": "simpler", "help": "assist",
    "simple": "easy", "start": "begin", "much": "far", "helps": "assists", "keep": "maintain",
}
_FILLERS = ("really", "actually", "just", "also", "generally", "typically")


def near_dup_edit(rng: Random, text: str, n_edits: int) -> str:
    """A few small, human-looking edits: a word swapped or inserted, case, punctuation."""
    words = text.split(" ")
    for _ in range(n_edits):
        op = rng.choice(("swap", "insert", "case", "punct", "swap"))
        i = rng.randrange(len(words))
        w = words[i]
        core = w.strip(string.punctuation).lower()
        if op == "swap" and core in _SWAPS:
            words[i] = w.replace(core, _SWAPS[core]) if core in w else w
        elif op == "insert" and len(words) > 3:
            words.insert(i, rng.choice(_FILLERS))
        elif op == "case" and w[:1].isalpha():
            words[i] = w.upper() if rng.random() < 0.3 else w.swapcase()[:1] + w[1:]
        elif op == "punct":
            if w.endswith("."):
                words[i] = w[:-1] + rng.choice(("!", ";", ","))
            elif w.endswith(","):
                words[i] = w[:-1]
            else:
                words[i] = w + ","
        else:
            words.insert(i, rng.choice(_FILLERS))
    return " ".join(words)


def normalized(text: str) -> str:
    """What exact dedup compares: case and whitespace ignored (a near-duplicate must differ here)."""
    return " ".join(text.lower().split())


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Lowercased word n-grams, as dedup.minhash compares them (a shorter text is one shingle)."""
    toks = WORD_TOKEN.findall(text.lower())
    return {tuple(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))} if toks else set()


def near_dup_conv(rng: Random, conv: Conv) -> Conv:
    """Edit an earlier conversation so the text differs but both its token-set Jaccard and its word
    5-gram Jaccard to the original stay >= 0.8: a near-duplicate at the threshold MinHash dedup uses."""
    full = conv.full_text
    base, base_sh = tokens(full), shingles(full)
    for attempt in range(30):
        n = 3 if attempt < 10 else 2 if attempt < 20 else 1
        turns = []
        for j, (role, text) in enumerate(conv.turns):
            edits = rng.randint(1, n) if j < 2 or rng.random() < 0.5 else 0
            turns.append((role, near_dup_edit(rng, text, edits) if edits else text))
        out = Conv(turns, conv.topic, conv.html, conv.alpaca_input)
        out_full = out.full_text
        if (normalized(out_full) != normalized(full) and jaccard(base, tokens(out_full)) >= 0.8
                and jaccard(base_sh, shingles(out_full)) >= NEAR_DUP_MIN_NGRAM_JACCARD):
            return out
    # Guaranteed fallback: a case change and an added comma keep the token set identical.
    role, text = conv.turns[0]
    return Conv([(role, text.upper() + ",")] + conv.turns[1:], conv.topic, conv.html, conv.alpaca_input)


def with_response(conv: Conv, response: str) -> Conv:
    """The conversation with its last assistant turn replaced (failed/refusal/pii/repetitive plants)."""
    turns = list(conv.turns)
    turns[-1] = ("assistant", response)
    return Conv(turns, conv.topic, conv.html, conv.alpaca_input)


def failure(rng: Random, kind: str, conv: Conv, topic_entities: dict[str, tuple[str, ...]]) -> tuple[Conv, str]:
    """Replace the response with one planted failure; returns the new conversation and a detail string."""
    last = conv.turns[-1][1]
    entity = rng.choice(topic_entities.get(conv.topic, ("that",)))
    if kind == "failed_empty":
        blank = rng.choice(("", " ", "\n", "  \n "))
        return with_response(conv, blank), "empty" if not blank else "whitespace"
    if kind == "failed_truncated":
        words = last.replace("\n", " ").split()
        # filter.failed_response judges responses of 20+ words only (a short answer can end anywhere)
        cut = max(min(TRUNCATED_MIN_WORDS, len(words) - 1), len(words) // 2 + rng.randint(-3, 3))
        head = " ".join(words[:cut]).rstrip(".!?,;:")
        tail = rng.choice(T.TRUNCATION_TAILS)
        return with_response(conv, f"{head} {tail}"), tail
    if kind == "failed_error":
        err = rng.choice(T.ERRORS)
        return with_response(conv, err), err.split("\n")[0][:40]
    if kind == "refusal":
        i = rng.randrange(len(T.REFUSALS))
        return with_response(conv, T.REFUSALS[i].replace("{e}", entity)), f"family_{i}"
    if kind == "pii":
        i = rng.randrange(len(T.PII))
        alnum = string.ascii_letters + string.digits
        snippet_ = T.PII[i].format(
            name=rng.choice(T.PII_NAMES), surname=rng.choice(T.PII_SURNAMES), domain=rng.choice(T.PII_DOMAINS),
            n3=f"{rng.randrange(1000):03d}", n4=f"{rng.randrange(10000):04d}",
            key="".join(rng.choice(alnum) for _ in range(36)),
        )
        kinds = ("email", "phone", "api_key", "phone", "email", "api_key")
        return with_response(conv, last + "\n\n" + snippet_), kinds[i]
    if kind == "repetitive":
        if rng.random() < 0.5:
            line = rng.choice(T.REPEAT_LINES)
            reps = rng.randint(15, 40)
            return with_response(conv, "\n".join([last.split("\n")[0]] + [line] * reps)), f"line x{reps}"
        words = last.split()[:6]
        gram = " ".join(words[-3:]) if len(words) >= 3 else "and so on"
        reps = rng.randint(20, 50)
        return with_response(conv, " ".join(words[:3] + [gram] * reps)), f"ngram x{reps}"
    raise ValueError(f"unknown failure kind {kind!r}")


def non_english_pool(rng: Random) -> dict[str, list[Conv]]:
    """Every distinct (question, 3-sentence set) per language, shuffled; used without repeats."""
    pools: dict[str, list[Conv]] = {}
    for lang, groups in T.NON_ENGLISH.items():
        joiner = "" if lang in ("zh", "ja") else " "
        convs = []
        for questions, sentences in groups:
            for q in questions:
                for combo in itertools.combinations(sentences, 3):
                    s = list(combo)
                    rng.shuffle(s)
                    convs.append(Conv([("user", q), ("assistant", joiner.join(s))], f"lang_{lang}"))
        rng.shuffle(convs)
        pools[lang] = convs
    return pools


def overlong_chat(rng: Random, w: Writer) -> Conv:
    """A long tour across topics (> OVERLONG_WORDS words) without repeating a fact within it."""
    topics = list(T.TOPICS)
    rng.shuffle(topics)
    turns: list[tuple[str, str]] = []
    words = 0
    seen = ConvSeen()
    for topic in itertools.cycle(topics):
        seen.facts = set()  # fact indices are per topic
        e = rng.choice(topic.entities)
        turns.append(("user", f"Next, tell me everything important about {e} in {topic.name}."))
        ans = w.answer(topic, e, k=len(topic.facts), style=rng.choice(("para", "list")), seen=seen)
        turns.append(("assistant", ans))
        words += len(turns[-2][1].split()) + len(ans.split())
        if words > OVERLONG_WORDS * 1.1:
            break
    return Conv(turns, "mixed")
