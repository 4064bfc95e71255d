"""The corpus: which slot of which source gets which record or planted problem."""

from __future__ import annotations

import itertools
import json
import string
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from random import Random
from typing import Any

from curate.demo import text as T
from curate.demo.common import (
    ALPACA_FILE,
    DEFAULT_RECORDS,
    FILES,
    LIST_LINE,
    NEAR_DUP_MIN_NGRAM_JACCARD,
    OIG_FILE,
    P3_FILE,
    P3_MAX_JACCARD,
    SHAREGPT_FILE,
    SO_FILE,
    TRUNCATED_MIN_WORDS,
    Conv,
    NearGuard,
    Slot,
    jaccard,
    make_plan,
    tokens,
)
from curate.demo.formats import (
    BrokenElement,
    alpaca_obj,
    json_array_bytes,
    oig_line,
    p3_line,
    so_answer_html,
    so_answer_text,
    so_body_html,
    so_date,
    so_row,
    so_text,
    so_user_text,
    to_chatgpt_html,
)
from curate.demo.plants import (
    failure,
    near_dup_conv,
    near_dup_edit,
    non_english_pool,
    normalized,
    overlong_chat,
    shingles,
)
from curate.demo.writer import Writer
from curate.errors import ConfigError

# ---------------------------------------------------------------------------------------------- sources


def assign(rng: Random, n: int, counts: dict[str, int], reserved: Sequence[int] = (0,)) -> dict[int, str]:
    """Pick disjoint slot indices for each planted kind (never slot 0: JSONL sniffing reads line 1)."""
    free = [i for i in range(n) if i not in set(reserved)]
    total = sum(counts.values())
    if total > len(free):
        raise ConfigError(f"too many planted records ({total}) for {n} records; lower --plant-scale")
    chosen = rng.sample(free, total)
    out: dict[int, str] = {}
    it = iter(chosen)
    for kind, c in counts.items():
        for _ in range(c):
            out[next(it)] = kind
    return out


def earlier_clean(rng: Random, slots: list[Slot], j: int, pred: Callable[[Slot], bool] = lambda s: True) -> int:
    """An earlier unplanted slot (the original a duplicate points to)."""
    for _ in range(50):
        i = rng.randrange(j)
        if slots[i].kind is None and slots[i].conv is not None and pred(slots[i]):
            return i
    for i in range(j):
        if slots[i].kind is None and slots[i].conv is not None and pred(slots[i]):
            return i
    raise RuntimeError("no earlier clean record to duplicate")  # slot 0 is always clean


class Corpus:
    """Builds all five sources in a fixed order from one seeded random stream."""

    def __init__(self, n_records: int = DEFAULT_RECORDS, seed: int = 0, plant_scale: float = 1.0) -> None:
        self.plan = make_plan(n_records, plant_scale)
        self.seed = seed
        self.rng = Random(seed)
        self.w = Writer(self.rng)
        self.slots: dict[str, list[Slot]] = {}
        self.so_ids: list[int] = []  # question Id per SO slot
        self.entities = {t.name: t.entities for t in T.TOPICS}
        self.lang_pool = non_english_pool(self.rng)
        self._lang_cycle = itertools.cycle(sorted(self.lang_pool))

    # -- shared planting for the chat-like sources ---------------------------------------------------
    def _chat_source(self, src: str, make: Callable[[], Conv]) -> list[Slot]:
        rng = self.rng
        n = self.plan.records[src]
        counts = dict(self.plan.planted[src])
        kinds = assign(rng, n, counts)
        slots = [Slot() for _ in range(n)]
        for j in range(n):  # clean content first, so plants can copy earlier clean records
            if kinds.get(j) not in ("malformed", "overlong", "non_english", "exact_dup", "near_dup"):
                slots[j].conv = make()
            if kinds.get(j) == "failed_truncated":
                for _ in range(50):
                    last = slots[j].conv.turns[-1][1]
                    # a list's last line may end without punctuation, so the filter (rightly) keeps
                    # lists; a cut-off response is planted in prose
                    if len(last.split()) > TRUNCATED_MIN_WORDS + 2 and not LIST_LINE.search(last):
                        break
                    slots[j].conv = make()
        for j in range(n):
            kind = kinds.get(j)
            if kind is None:
                continue
            s = slots[j]
            s.kind = kind
            if kind == "exact_dup":
                i = earlier_clean(rng, slots, j)
                s.conv, s.of = slots[i].conv, (FILES[src], i)
            elif kind == "near_dup":
                i = earlier_clean(rng, slots, j)
                s.conv, s.of = near_dup_conv(rng, slots[i].conv), (FILES[src], i)
            elif kind == "non_english":
                lang = next(self._lang_cycle)
                if not self.lang_pool[lang]:
                    s.kind = None
                    s.conv = make()
                    continue
                s.conv, s.detail = self.lang_pool[lang].pop(), lang
            elif kind in ("failed_empty", "failed_truncated", "failed_error", "refusal", "pii", "repetitive"):
                s.conv, s.detail = failure(rng, kind, s.conv, self.entities)
            elif kind == "html":
                s.conv.html = True
            elif kind == "overlong":
                s.conv = overlong_chat(rng, self.w)
                s.detail = sum(len(t.split()) for _, t in s.conv.turns)
            elif kind == "malformed":
                s.conv, s.detail = self._malformed(src, j)
        return slots

    def _malformed(self, src: str, j: int) -> tuple[Any, str]:
        """Raw bytes for a JSONL line, an object with an unknown role for ShareGPT, or an Alpaca element
        with a missing comma (the reader must resync at the next element and lose only this one)."""
        if src == "alpaca":
            return BrokenElement(self.w.alpaca()), "json_decode"
        if src == "sharegpt":
            conv = self.w.chat(1)
            return {"id": self._sg_id(), "conversations": [
                {"from": "human", "value": conv.prompt},
                {"from": "narrator", "value": "The assistant thinks for a moment before answering."},
                {"from": "gpt", "value": conv.turns[1][1]},
            ]}, "unknown_role"
        # Alternate so each JSONL file gets both kinds: broken JSON first, then invalid UTF-8. The detail
        # is the reason code the readers give (curate.ingest.base), so evaluation can match it exactly.
        count = self._malformed_count.get(src, 0)
        self._malformed_count[src] = count + 1
        which = ("json_decode", "invalid_utf8")[count % 2]
        if which == "json_decode":
            line = '{"text": "<human>: How do I fix a leaky faucet?\\n<bot>: Turn off the water supply first'
            if src == "p3":
                line = '{"inputs_pretokenized": "Review: A dull film. Is this review positive or negative?", "targ'
            return line.encode(), which
        text = "<human>: Qu\xe9 es un buen caf\xe9?\n<bot>: Un caf\xe9 reci\xe9n molido."
        body = json.dumps({"text": text} if src == "oig" else {"inputs_pretokenized": text}, ensure_ascii=False)
        return body.encode("latin-1"), which

    def _sg_id(self) -> str:
        return "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(7))

    # -- P3 ------------------------------------------------------------------------------------------
    def _p3_record(self, kind: str) -> dict[str, Any]:
        """One P3 record of template ``kind`` (imdb, rotten, amazon, ag_news, boolq)."""
        rng = self.rng
        if kind in ("imdb", "rotten"):
            pos = rng.random() < 0.5
            pool = T.P3_POSITIVE if pos else T.P3_NEGATIVE
            slots = {"title": f"{rng.choice(T.P3_TITLE_A)} {rng.choice(T.P3_TITLE_B)}",
                     "actor": rng.choice(T.P3_ACTORS), "n": str(rng.randint(85, 170)), "year": str(rng.randint(1995, 2022))}
            sents = [s.format(**slots) for s in rng.sample(pool, rng.randint(3, 4))]
            adj = rng.choice(T.P3_REVIEW_POS_ADJ if pos else T.P3_REVIEW_NEG_ADJ)
            sents.insert(rng.randrange(len(sents) + 1), f"{rng.choice(T.P3_SCENES).capitalize()} with "
                         f"{rng.choice(T.P3_ROLES)} is {adj}, and {rng.choice(T.P3_DIRECTORS)} directs it "
                         f"{'with real care' if pos else 'without any energy'}.")
            review = " ".join(sents)
            if kind == "imdb":
                return {"inputs_pretokenized": f"{review} Did the reviewer find this movie good or bad?",
                        "targets_pretokenized": "good" if pos else "bad", "answer_choices": ["bad", "good"],
                        "subset": "imdb_Reviewer_Opinion_bad_good_choices"}
            return {"inputs_pretokenized": f"{review} The sentiment expressed for the movie is",
                    "targets_pretokenized": "positive" if pos else "negative",
                    "answer_choices": ["negative", "positive"], "subset": "rotten_tomatoes_Movie_Expressed_Sentiment"}
        if kind == "amazon":
            pos = rng.random() < 0.5
            p = rng.choice(T.P3_PRODUCTS)
            products: tuple[str, ...] = T.P3_PRODUCT_POS if pos else T.P3_PRODUCT_NEG
            title = rng.choice(("Great value", "Love it", "Works well")) if pos else rng.choice(("Disappointed", "Junk", "Avoid"))
            review = (f"I bought the {rng.choice(T.P3_COLORS)} {rng.choice(T.P3_BRANDS)} {p} {rng.choice(T.P3_WHEN)}. "
                      + " ".join(s.format(p=p, n=rng.randint(2, 40)) for s in rng.sample(products, 3)))
            return {"inputs_pretokenized": "Title: " + title + "\nReview: " + review
                    + "\nIs this product review positive?", "targets_pretokenized": "Yes" if pos else "No",
                    "answer_choices": ["No", "Yes"], "subset": "amazon_polarity_Is_this_review"}
        if kind == "ag_news":
            label = rng.choice(sorted(T.P3_NEWS))
            city = rng.choice(T.P3_CITIES)
            fill = {"city": city, "team": rng.choice(T.P3_TEAMS), "company": rng.choice(T.P3_COMPANIES),
                    "n": str(rng.randint(2, 90)), "person": rng.choice(T.P3_PEOPLE), "day": rng.choice(T.P3_WEEKDAYS)}
            lead = f"{city.upper()} ({rng.choice(T.P3_AGENCIES)}) - "
            body = [s.format(**fill) for s in rng.sample(T.P3_NEWS[label], 3)]
            body.insert(rng.randrange(4), T.P3_NEWS_LEAD[label].format(n=rng.randint(2, 60), person=fill["person"],
                                                                       day=fill["day"]))
            article = lead + " ".join(body)
            choices = ["World politics", "Sports", "Business", "Science and technology"]
            target = {"World": "World politics", "Science": "Science and technology"}.get(label, label)
            return {"inputs_pretokenized": f"What label best describes this news article?\n{article}",
                    "targets_pretokenized": target, "answer_choices": choices, "subset": "ag_news_classify_question_first"}
        topic, e = self.w.pick()
        other = rng.choice([t for t in T.TOPICS if t is not topic])
        passage_t, q_t, target = rng.choice(T.P3_BOOLQ)
        f, f2 = rng.sample(topic.facts, 2)
        passage = passage_t.format(E=e[:1].upper() + e[1:], t=topic.name, f=f, f2=f2)
        question = q_t.format(e=e, t=topic.name, t2=other.name)
        return {"inputs_pretokenized": f"{passage}\nQuestion: {question}\nAnswer:", "targets_pretokenized": target,
                "answer_choices": ["No", "Yes"], "subset": "super_glue_boolq_yes_no_question"}

    def _p3(self) -> list[Slot]:
        rng = self.rng
        n = self.plan.records["p3"]
        kinds = assign(rng, n, self.plan.planted["p3"])
        slots = [Slot() for _ in range(n)]
        seen: set[str] = set()
        guard = NearGuard()
        for j in range(n):
            if kinds.get(j) in ("exact_dup", "malformed"):
                continue
            # Templated texts can collide or nearly so; only planted duplicates may be identical or close.
            best, best_sim, best_bits = None, 2.0, None
            kind = rng.choice(("imdb", "rotten", "amazon", "ag_news", "boolq"))
            for _ in range(30):
                rec = self._p3_record(kind)
                if rec["inputs_pretokenized"] in seen:
                    continue
                bits = guard.bits(rec["inputs_pretokenized"] + " " + rec["targets_pretokenized"])
                sim = guard.max_jaccard(rec["subset"], bits)
                if sim < best_sim:
                    best, best_sim, best_bits = rec, sim, bits
                if sim < P3_MAX_JACCARD:
                    break
            assert best is not None and best_bits is not None
            seen.add(best["inputs_pretokenized"])
            guard.add(best["subset"], best_bits)
            slots[j].conv = best
        for j, kind in sorted(kinds.items()):
            slots[j].kind = kind
            if kind == "exact_dup":
                i = earlier_clean(rng, slots, j)
                slots[j].conv, slots[j].of = dict(slots[i].conv), (P3_FILE, i)
            else:
                slots[j].conv, slots[j].detail = self._malformed("p3", j)
        return slots

    # -- Stack Overflow -------------------------------------------------------------------------------
    def _so_question(self) -> dict[str, Any]:
        rng, w = self.rng, self.w
        topic, e = w.pick(T.PROGRAMMING_TOPICS)
        ids = ("data", "items", "result", "config", "user", "orders", "row", "payload", "cache", "score",
               "total", "path", "node", "value", "records", "report", "count", "batch", "name", "entry")

        def code() -> str:
            a, b = rng.sample(ids, 2)
            return rng.choice(topic.code).format(
                a=a, b=b, C=b.capitalize(), n=rng.randint(2, 99), f=rng.choice(SO_FILES),
                h="".join(rng.choice("0123456789abcdef") for _ in range(7)),
            )

        project = rng.choice(SO_PROJECTS)
        title = ""
        for _ in range(40):  # distinct titles: an entity with a concrete symptom, or a how-to question
            e2 = rng.choice([x for x in topic.entities if x != e])
            title = w.slots(w.fill(rng.choice(T.SO_TITLES if rng.random() < 0.7 else topic.questions), topic, e, e2),
                            topic)
            if rng.random() < 0.3:
                title = title.rstrip("?") + rng.choice((" - what am I missing?", " (beginner)", "?", " in production?"))
            if title.lower() not in w._prompts:
                w._prompts.add(title.lower())
                break
            topic, e = w.pick(T.PROGRAMMING_TOPICS)
        body = [
            f"I'm working on {project} and I'm stuck with {e}.",
            code(),
            rng.choice(SO_PROBLEMS).format(n=rng.randint(3, 60), e=e),
            rng.choice(SO_TRIED).format(e=e, t=topic.name),
        ]
        facts = w.facts(topic, e, rng.choice((2, 3)))
        accepted = {"text": [" ".join(facts[:-1]), facts[-1]], "code": code(), "score": rng.randint(2, 120)}
        extra = []
        for _ in range(rng.choice((0, 1, 1, 2))):
            f2 = w.facts(topic, rng.choice(topic.entities), 2)
            extra.append({"text": [" ".join(f2), rng.choice(SO_ASIDES)], "code": "", "score": rng.randint(-2, 30)})
        has_accepted = rng.random() < 0.85
        return {"title": title, "body": body, "tags": list(topic.tags), "answers": [accepted, *extra],
                "accepted": 0 if has_accepted else None, "score": rng.randint(0, 200), "topic": topic.name}

    def _oig_original(self, j: int) -> int:
        """An unplanted two-turn OIG record that no planted OIG record copies (its text is replaced)."""
        oig = self.slots["oig"]
        if not hasattr(self, "_oig_free"):
            copied = {x.of[1] for x in oig if x.of is not None and x.of[0] == OIG_FILE}
            self._oig_free = [i for i, x in enumerate(oig) if i > 0 and x.kind is None and i not in copied
                              and isinstance(x.conv, Conv) and len(x.conv.turns) == 2]
            self.rng.shuffle(self._oig_free)
        if not self._oig_free:
            raise ConfigError("too few clean OIG records for the Stack Overflow cross-source duplicates")
        return self._oig_free.pop()

    def _so(self) -> list[Slot]:
        rng = self.rng
        n = self.plan.records["stackoverflow"]
        kinds = assign(rng, n, self.plan.planted["stackoverflow"])
        slots = [Slot() for _ in range(n)]
        for j in range(n):
            q = self._so_question()
            if q["accepted"] is None:  # only scored answers: the reader takes the top score, make it ours
                q["answers"][0]["score"] = max(a["score"] for a in q["answers"]) + rng.randint(1, 9)
            slots[j].conv = q
        for j, kind in sorted(kinds.items()):
            s = slots[j]
            s.kind = kind
            if kind == "exact_dup":
                i = earlier_clean(rng, slots, j)
                s.conv, s.of = json.loads(json.dumps(slots[i].conv)), (SO_FILE, i)
            elif kind == "near_dup":
                i = earlier_clean(rng, slots, j)
                orig = slots[i].conv
                base = so_text(orig)
                for attempt in range(30):
                    q = json.loads(json.dumps(orig))
                    q["title"] = near_dup_edit(rng, q["title"], 1)
                    q["answers"][0]["text"][0] = near_dup_edit(rng, q["answers"][0]["text"][0],
                                                               rng.randint(1, 2 if attempt < 15 else 1))
                    text = so_text(q)
                    if (normalized(text) != normalized(base) and jaccard(tokens(text), tokens(base)) >= 0.8
                            and jaccard(shingles(text), shingles(base)) >= NEAR_DUP_MIN_NGRAM_JACCARD):
                        break
                else:  # a case change and an added comma keep tokens and shingles identical
                    q = json.loads(json.dumps(orig))
                    q["title"] = q["title"].upper() + ","
                s.conv, s.of = q, (SO_FILE, i)
            elif kind == "cross_source_dup":
                s.conv["accepted"] = 0
                i = self._oig_original(j)
                self.slots["oig"][i].conv = Conv([("user", so_user_text(s.conv)), ("assistant", so_answer_text(s.conv))],
                                                 s.conv["topic"])
                s.of = (OIG_FILE, i)
            elif kind == "pii":
                c = failure(rng, "pii", Conv([("user", ""), ("assistant", s.conv["answers"][0]["text"][-1])]), {})
                s.conv["answers"][0]["text"][-1], s.detail = c[0].turns[-1][1], c[1]
        return slots

    # -- build --------------------------------------------------------------------------------------
    def build(self) -> None:
        self._malformed_count: dict[str, int] = {}
        w = self.w
        # OIG before Stack Overflow: SO's cross-source duplicates turn unplanted OIG records into their originals.
        self.slots["alpaca"] = self._chat_source("alpaca", w.alpaca)
        self.slots["oig"] = self._chat_source("oig", w.qa)
        self.slots["sharegpt"] = self._chat_source("sharegpt", lambda: w.chat(self.rng.choice((1, 2, 2, 3, 4))))
        self.slots["p3"] = self._p3()
        self.slots["stackoverflow"] = self._so()

    # -- write --------------------------------------------------------------------------------------
    def locator(self, file: str, index: int) -> int:
        return self.so_ids[index] if file == SO_FILE else index + 1

    def write(self, out: Path) -> dict[str, Any]:
        for rel in FILES.values():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / OIG_FILE).write_bytes(b"".join(oig_line(s) for s in self.slots["oig"]))
        (out / P3_FILE).write_bytes(b"".join(p3_line(s) for s in self.slots["p3"]))
        (out / ALPACA_FILE).write_bytes(json_array_bytes([alpaca_obj(s, self.rng) for s in self.slots["alpaca"]]))
        (out / SHAREGPT_FILE).write_bytes(json_array_bytes([self._sharegpt_obj(s) for s in self.slots["sharegpt"]]))
        (out / SO_FILE).write_bytes(self._posts_xml())
        gt_lines = []
        for src, rel in FILES.items():
            for j, s in enumerate(self.slots[src]):
                if s.kind is None:
                    continue
                of = None if s.of is None else {"file": s.of[0], "record": self.locator(s.of[0], s.of[1])}
                gt_lines.append({"file": rel, "record": self.locator(rel, j), "kind": s.kind, "of": of,
                                 "detail": s.detail})
        (out / "ground_truth.jsonl").write_bytes(
            b"".join(json.dumps(g, ensure_ascii=False).encode() + b"\n" for g in gt_lines)
        )
        by_kind: dict[str, Counter[str]] = {}
        for g in gt_lines:
            src = next(k for k, v in FILES.items() if v == g["file"])
            by_kind.setdefault(g["kind"], Counter())[src] += 1
        summary = {
            "seed": self.seed,
            "files": FILES,
            "records": {src: len(self.slots[src]) for src in FILES},
            "planted": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
            "planted_total": len(gt_lines),
            "low_diversity_source": "p3",
            "topics": [t.name for t in T.TOPICS],
            "locators": {"jsonl": "1-based line number", "json_array": "1-based element ordinal",
                         "posts_xml": "question Id"},
        }
        (out / "ground_truth_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return summary

    def _sharegpt_obj(self, s: Slot) -> dict[str, Any]:
        if isinstance(s.conv, dict):  # the planted unknown-role record
            return s.conv
        conv: Conv = s.conv
        out = []
        for role, text in conv.turns:
            value = to_chatgpt_html(text, conv.topic, self.rng) if conv.html and role == "assistant" else text
            out.append({"from": "human" if role == "user" else "gpt", "value": value})
        return {"id": self._sg_id(), "conversations": out}

    def _posts_xml(self) -> bytes:
        rng = self.rng
        rows: list[str] = []
        next_id = 1
        day = 0.0
        wiki_at = set(rng.sample(range(len(self.slots["stackoverflow"])), min(4, len(self.slots["stackoverflow"]))))
        for j, s in enumerate(self.slots["stackoverflow"]):
            q = s.conv
            if j in wiki_at:  # tag wiki excerpt + body, as real dumps interleave them
                tag = q["tags"][0]
                for ptype, body in ((4, f"{tag} is a tag for questions about {q['topic']}."),
                                    (5, (f"<p>Use the {tag} tag for questions about {q['topic']}. Include a "
                                         "minimal example and the full error message.</p>"))):
                    rows.append(so_row(Id=next_id, PostTypeId=ptype, CreationDate=so_date(day), Score=0,
                                     Body=body, OwnerUserId=-1, CommentCount=0))
                    next_id += 1
            qid = next_id
            self.so_ids.append(qid)
            ans_ids = list(range(qid + 1, qid + 1 + len(q["answers"])))
            next_id = qid + 1 + len(q["answers"])
            day += rng.random() * 0.5
            qattrs: dict[str, Any] = {"Id": qid, "PostTypeId": 1}
            if q["accepted"] is not None:
                qattrs["AcceptedAnswerId"] = ans_ids[q["accepted"]]
            body = so_body_html(q)
            qattrs.update(
                CreationDate=so_date(day), Score=q["score"], ViewCount=q["score"] * 37 + rng.randint(5, 900),
                Body=body, OwnerUserId=rng.randint(2, 9000), LastActivityDate=so_date(day + 0.2), Title=q["title"],
                Tags="".join(f"<{t}>" for t in q["tags"]), AnswerCount=len(q["answers"]),
                CommentCount=rng.randint(0, 6),
            )
            rows.append(so_row(**qattrs))
            order = list(range(len(q["answers"])))
            rng.shuffle(order)  # answers arrive in any order after their question
            for k in order:
                a = q["answers"][k]
                rows.append(so_row(Id=ans_ids[k], PostTypeId=2, ParentId=qid, CreationDate=so_date(day + 0.01 * (k + 1)),
                                 Score=a["score"], Body=so_answer_html(a), OwnerUserId=rng.randint(2, 9000),
                                 CommentCount=rng.randint(0, 3)))
        rows.sort(key=lambda r: int(r.split('"', 2)[1]))  # dumps are sorted by Id
        head = '\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
        return (head + "".join(rows) + "</posts>\n").encode("utf-8")


SO_PROJECTS = (
    "a small inventory tool for my team", "a Flask API for a school project", "a data pipeline at work",
    "a command line tool for log analysis", "an internal dashboard", "a hobby web scraper",
    "a reporting job that runs every night", "my first open source contribution", "a chat bot for our Discord",
    "a migration from an old PHP system", "a home automation script", "a thesis analysis notebook",
    "a billing service", "a static site generator", "a game server plugin", "a deployment script",
)
SO_PROBLEMS = (
    "It runs, but the output is wrong for about {n} percent of the inputs.",
    "I get an error on line {n} and I don't understand the message.",
    "This works locally but fails on the server.",
    "The result is empty even though I am sure the data is there.",
    "It takes {n} seconds on a tiny input, which seems far too slow.",
    "Everything looks right, yet the value never changes.",
    "The docs on {e} did not make it clear to me what is going on.",
    "Sometimes it works and sometimes it doesn't, which is the confusing part.",
)
SO_TRIED = (
    "I already searched for similar questions about {e} but none matched my case.",
    "I tried rewriting it a few ways and restarting everything, with no luck.",
    "I'm fairly new to {t}, so sorry if this is obvious.",
    "What is the idiomatic way to do this?",
    "Is this a bug or am I misunderstanding {e}?",
    "Any pointers would be appreciated.",
)
SO_ASIDES = (
    "This is what worked for me.", "See the documentation for more details.",
    "Hope that helps.", "I ran into the same issue last year.", "Worth checking your versions too.",
)
SO_FILES = ("data.csv", "report.txt", "app.py", "main.js", "users", "orders", "config.yaml", "logs", "sales.csv")
