"""Stack Exchange data dump ``Posts.xml``: question + answer pairs as user/assistant conversations.

Streaming and memory. The file is read with pyexpat callbacks (each ``<row/>`` arrives as an
attribute dict and is never kept as a tree node), so parsing memory is flat whatever the size.
Answers can come before or after their question, so with ``answer: accepted|top`` the file is
read twice:

* pass 1 keeps only integers, appended to flat ``array('q')`` buffers (question id and accepted
  answer id; answer id, parent id and score). At its end they are sorted once with numpy into
  two id-sorted tables: the question ids with their chosen answer id, and the chosen answer ids
  with their question id (about 24 bytes per question, 24 per answer while pass 1 runs); pass 2
  looks ids up with ``np.searchsorted``. So memory is a few dozen bytes per post, with no
  per-question Python objects;
* pass 2 emits a pair as soon as both halves have been seen. Only the half that arrives first
  is held (the raw HTML of one post); when those held bodies pass ``buffer_mb`` they move to a
  temporary SQLite file, so memory stays bounded on a dump in any order.
``answer: none`` needs a single pass (prompt-only records for a later generation step).

Accounting. Every row is counted once in ``report_extra``: ``rows`` = questions + malformed rows +
``skipped.*``. Each question (PostTypeId 1) becomes one record or one quarantine entry
(``no_answer``, ``malformed_row``, ``html_error``, ``duplicate_id`` for a question Id seen earlier in
the file: the first row is used); a row whose Id or PostTypeId is unusable is
quarantined ``malformed_row``. So ``read == ingested + quarantined`` covers questions and
unusable rows, and the other rows are tallied per reason in ``skipped``: ``answer_paired``
(consumed into a pair), ``answer_not_chosen``, ``answer_unmatched`` (its question is absent),
``answer_not_used`` (``answer: none``), ``answer_malformed`` (no usable ParentId),
``answer_of_quarantined`` (the chosen answer of a question that was quarantined),
``answer_duplicate`` (the chosen answer's row again),
``tag_wiki_excerpt`` (4), ``tag_wiki`` (5), ``orphaned_tag_wiki`` (3), ``moderator_nomination``
(6), ``wiki_placeholder`` (7), ``privilege_wiki`` (8), ``post_type_other``.

Safety. A DOCTYPE with an internal subset, or any ``<!ENTITY``, is refused (no entity expansion); an
external DOCTYPE reference (``<!DOCTYPE posts SYSTEM "posts.dtd">``, in older dumps) is read and never loaded;
malformed XML stops the read with an InputError naming file and line (XML cannot be resynchronised;
records of earlier files stay valid).
"""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal
from xml.parsers import expat

import numpy as np
from pydantic import Field

from curate.ingest.base import (
    InputError,
    KeyCounter,
    Quarantined,
    Reader,
    check_not_lfs,
    damage_of,
    display_path,
    head_bytes,
    int64_key,
    open_binary,
    snippet,
)
from curate.schema import validate_turns
from curate.steps.base import StepParams
from curate.steps.registry import register
from curate.textutil import HTMLConversionError, html_to_markdown

CHUNK_BYTES = 1 << 20
_POST_TYPES = {
    3: "orphaned_tag_wiki",
    4: "tag_wiki_excerpt",
    5: "tag_wiki",
    6: "moderator_nomination",
    7: "wiki_placeholder",
    8: "privilege_wiki",
}
_TAG_ANGLE = re.compile(r"<([^<>]+)>")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_NONE = _I64_MIN  # "no answer" in the int64 tables (ids are never this value: see _int64)


class _Rejected(Exception):
    """The file declares a DTD or entities: refused before they are processed."""


def parse_tags(raw: str | None) -> list[str]:
    """``<python><pandas>`` (possibly still HTML-escaped) or ``|python|pandas|`` -> ``[python, pandas]``."""
    if not raw:
        return []
    text = html.unescape(raw).strip()
    if text.startswith("<"):
        return _TAG_ANGLE.findall(text)
    if "|" in text:
        return [t for t in text.split("|") if t]
    return text.split()


def _int(v: str | None) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return None


def _int64(v: str | None) -> int | None:
    """An id as int64, or None when missing, not an integer or outside ``(-2**63, 2**63)``."""
    n = _int(v)
    return n if n is not None and _I64_MIN < n <= _I64_MAX else None


def _score(v: str | None) -> int:
    """A score for ranking answers: missing or unusable is 0; clamped to int64."""
    n = _int(v) or 0
    return min(max(n, _I64_MIN + 1), _I64_MAX)


def _i64(buf: array[int]) -> np.ndarray:
    """An ``array('q')`` viewed as numpy int64, without a copy (the view keeps the buffer alive)."""
    return np.frombuffer(buf, dtype=np.int64) if len(buf) else np.empty(0, dtype=np.int64)


class _Chosen:
    """The chosen answer of every question: sorted unique question ids ``qids`` and, aligned to
    them, ``answer`` (the chosen answer id or ``_NONE``) and ``dead`` (quarantined in pass 2 while
    the chosen answer is still to come). 17 bytes per question, looked up by binary search.
    """

    def __init__(self, qids: np.ndarray, answer: np.ndarray) -> None:
        self.qids = qids
        self.answer = answer
        self.dead = np.zeros(len(qids), dtype=bool)

    @classmethod
    def empty(cls) -> _Chosen:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    def question(self, qid: int) -> int:
        """Index of question ``qid`` in ``qids``, or -1."""
        if not _I64_MIN < qid <= _I64_MAX:
            return -1
        i = int(self.qids.searchsorted(qid))
        return i if i < len(self.qids) and int(self.qids[i]) == qid else -1

    def has_answer(self, qid: int) -> bool:
        i = self.question(qid)
        return i >= 0 and int(self.answer[i]) != _NONE

    def is_chosen(self, aid: int, parent: int) -> bool:
        """Whether answer ``aid`` is the chosen answer of question ``parent``."""
        i = self.question(parent)
        return i >= 0 and int(self.answer[i]) == aid


# Older dumps open with <!DOCTYPE posts SYSTEM "posts.dtd">: a reference to a DTD that is not shipped.
# It is blanked (same length, so lines and columns stay) before expat sees it: the DTD is never
# loaded, and an entity it would have defined is then an undefined entity, a located error, never
# silently dropped. A DOCTYPE with an internal subset ("[") is left in place and refused.
_EXTERNAL_DOCTYPE = re.compile(
    rb'<!DOCTYPE\s+[\w:.-]+\s+(?:SYSTEM\s+(?:"[^"<>\[]*"|\'[^\'<>\[]*\')'
    rb'|PUBLIC\s+(?:"[^"<>\[]*"|\'[^\'<>\[]*\')\s+(?:"[^"<>\[]*"|\'[^\'<>\[]*\'))\s*>'
)


def _blank_external_doctype(chunk: bytes) -> bytes:
    m = _EXTERNAL_DOCTYPE.search(chunk, 0, 4096)
    if m is None or b"<row" in chunk[: m.start()]:
        return chunk
    return chunk[: m.start()] + b" " * (m.end() - m.start()) + chunk[m.end() :]


def iter_rows(path: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream ``(line, attributes)`` of every ``<row>`` element; other elements are ignored.

    Raises InputError for a DTD/entity declaration or malformed XML, naming file and line.
    """
    if path.startswith("hub:"):
        raise InputError(f"{path}: read.stackexchange reads Posts.xml files; hub: sources are not supported")
    head = head_bytes(path, 1 << 16)
    check_not_lfs(path, head)
    body = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if body and not body.startswith(b"<"):
        raise InputError(f"{display_path(path)}: expected Stack Exchange Posts.xml but the file is not XML; check `format:`")

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    pending: list[tuple[int, dict[str, str]]] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "row":
            pending.append((parser.CurrentLineNumber, attrs))

    def refuse(*_: Any) -> None:
        raise _Rejected()

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    shown = display_path(path)
    with open_binary(path) as fh:
        first = True
        while True:
            chunk = fh.read(CHUNK_BYTES)
            if first:
                chunk = _blank_external_doctype(chunk)
                first = False
            try:
                parser.Parse(chunk, not chunk)
            except _Rejected:
                raise InputError(
                    f"{shown}:{parser.CurrentLineNumber}: the XML declares a DTD subset or an ENTITY; curate does not "
                    "process DTDs or entities (a Stack Exchange dump has none). Remove the declaration."
                ) from None
            except expat.ExpatError as e:
                yield from pending
                damage = damage_of(fh)
                if damage is not None:
                    raise InputError(
                        f"{shown}:{e.lineno}: {damage.error('here')}; XML cannot be resumed, so reading stops "
                        "(the rows before were read)"
                    ) from None
                raise InputError(
                    f"{shown}:{e.lineno}: malformed XML ({expat.ErrorString(e.code)}, column {e.offset}); XML cannot be "
                    "resumed after an error, so reading stops here. Re-extract the dump or cut the file before this line."
                ) from None
            yield from pending
            pending.clear()
            if not chunk:
                return


class _HeldBodies:
    """Posts waiting for the other half of their pair: a dict, spilled to SQLite past ``limit_bytes``."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.mem: dict[str, Any] = {}
        self.mem_bytes = 0
        self.db: sqlite3.Connection | None = None
        self.db_path: str | None = None
        self.spilled = 0

    @staticmethod
    def _size(value: dict[str, Any]) -> int:
        return sum(len(v) for v in value.values() if isinstance(v, str)) + 200

    def put(self, key: str, value: dict[str, Any]) -> None:
        size = self._size(value)
        if self.db is None and self.mem_bytes + size > self.limit:
            fd, self.db_path = tempfile.mkstemp(prefix="curate-se-", suffix=".sqlite")
            os.close(fd)
            self.db = sqlite3.connect(self.db_path)
            self.db.execute("PRAGMA journal_mode=OFF")
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.execute("CREATE TABLE held (k TEXT PRIMARY KEY, v TEXT)")
        if self.db is not None:
            self.db.execute("INSERT OR REPLACE INTO held VALUES (?, ?)", (key, json.dumps(value)))
            self.spilled += 1
        else:
            self.mem[key] = value
            self.mem_bytes += size

    def pop(self, key: str) -> dict[str, Any] | None:
        if key in self.mem:
            value: dict[str, Any] = self.mem.pop(key)
            self.mem_bytes -= self._size(value)
            return value
        if self.db is None:
            return None
        row = self.db.execute("SELECT v FROM held WHERE k = ?", (key,)).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM held WHERE k = ?", (key,))
        return json.loads(row[0])  # type: ignore[no-any-return]

    def leftovers(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self.mem.items()
        if self.db is not None:
            for k, v in self.db.execute("SELECT k, v FROM held ORDER BY k"):
                yield k, json.loads(v)

    def close(self) -> None:
        self.mem.clear()
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.db_path is not None:
            os.unlink(self.db_path)
            self.db_path = None


@register("read.stackexchange")
class StackExchangeReader(Reader):
    """Read a Stack Exchange ``Posts.xml`` dump: each question with its chosen answer as one conversation.

    The user turn is the title, a blank line and the question body as Markdown; the assistant turn
    is the answer as Markdown (fenced code keeps its language). ``provenance.record`` is the
    question's Id; tags, scores, view count and dates go in ``meta``; ``subset`` is the site.
    Non-question rows are counted per reason in ``report_extra["skipped.<reason>"]``.

    Reasons: no_answer, malformed_row, html_error, duplicate_id.
    """

    format = "stackexchange"

    class Params(StepParams):
        answer: Literal["accepted", "top", "none"] = Field(
            "accepted",
            description="Which answer becomes the assistant turn: the accepted one, the highest-scored one, "
            "or none (prompt-only records with just the user turn).",
        )
        fallback_top: bool = Field(
            True, description="With answer=accepted, use the top-scored answer when none is accepted."
        )
        site: str | None = Field(None, description="Subset name; default: the file's parent folder name.")
        markdown: bool = Field(True, description="Convert bodies from HTML to Markdown (false keeps the HTML).")
        buffer_mb: int = Field(
            256,
            ge=0,
            description="MB of bodies held in memory while they wait for their pair; more spill to a temporary "
            "SQLite file (0 spills all).",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skipped: Counter[str] = Counter()

    def _count(self, key: str, n: int = 1) -> None:
        self.report_extra[key] = self.report_extra.get(key, 0) + n

    def _skip(self, reason: str) -> None:
        self.skipped[reason] += 1
        self._count(f"skipped.{reason}")

    def _text(self, body: str) -> str:
        return html_to_markdown(body) if self.params.markdown else body

    # -- pass 1 ---------------------------------------------------------------------------------
    def _choose_answers(self, path: str) -> _Chosen:
        """The chosen answer of every question, from the ids, parents, scores and accepted ids."""
        q_id, q_acc = array("q"), array("q")  # every question row: id, AcceptedAnswerId or _NONE
        a_id, a_parent, a_score = array("q"), array("q"), array("q")  # every answer row with a ParentId
        for _, a in iter_rows(path):
            ptype = _int(a.get("PostTypeId"))
            if ptype != 1 and ptype != 2:
                continue
            pid = _int64(a.get("Id"))
            if pid is None:
                continue
            if ptype == 1:
                q_id.append(pid)
                acc = _int64(a.get("AcceptedAnswerId"))
                q_acc.append(_NONE if acc is None else acc)
            else:
                parent = _int64(a.get("ParentId"))
                if parent is None:
                    continue
                a_id.append(pid)
                a_parent.append(parent)
                a_score.append(_score(a.get("Score")))
        qid_all, acc_all = _i64(q_id), _i64(q_acc)
        del q_id, q_acc
        qids = np.unique(qid_all)
        if not len(qids):
            return _Chosen.empty()
        # accepted id per question: the first row's (pass 2 quarantines a repeated question row as duplicate_id)
        order = np.argsort(qid_all, kind="stable")
        first = np.ones(len(order), dtype=bool)
        first[1:] = qid_all[order][1:] != qid_all[order][:-1]
        accepted = acc_all[order][first]  # aligned with qids: both sorted, one entry per question id
        del qid_all, acc_all, order, first

        ans, par, sc = _i64(a_id), _i64(a_parent), _i64(a_score)
        del a_id, a_parent, a_score
        # an accepted answer counts only if an answer row with that id names the question as parent
        pos = np.searchsorted(qids, par)
        pos[pos == len(qids)] = 0
        known = qids[pos] == par
        accepted_seen = np.zeros(len(qids), dtype=bool)
        accepted_seen[pos[known & (accepted[pos] == ans)]] = True
        # best answer per question: highest score, ties to the lower (older) id
        best = np.full(len(qids), _NONE, dtype=np.int64)
        if known.any():
            ans, par, sc, pos = ans[known], par[known], sc[known], pos[known]
            # scores are clamped to (-2**63, 2**63), so -sc cannot overflow
            order = np.lexsort((ans, -sc, par))
            first = np.ones(len(order), dtype=bool)
            first[1:] = par[order][1:] != par[order][:-1]
            best[pos[order[first]]] = ans[order[first]]
        del ans, par, sc, pos, known

        mode, fallback = self.params.answer, self.params.fallback_top
        chosen = np.full(len(qids), _NONE, dtype=np.int64)
        if mode == "top" or fallback:
            chosen[:] = best
        if mode == "accepted":
            chosen[accepted_seen] = accepted[accepted_seen]
        return _Chosen(qids, chosen)

    # -- pass 2 ---------------------------------------------------------------------------------
    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        site = self.params.site or os.path.basename(os.path.dirname(os.path.abspath(path))) or None
        need_answer = self.params.answer != "none"
        chosen = self._choose_answers(path) if need_answer else _Chosen.empty()
        held = _HeldBodies(self.params.buffer_mb << 20)
        questions_seen = KeyCounter()  # a question Id seen again is quarantined duplicate_id
        answers_seen = KeyCounter()  # only chosen answers: a repeat is skipped as answer_duplicate

        def quarantine(record: int, line: int | None, reason: str, msg: str, raw: Any) -> Quarantined:
            return Quarantined(source, path, record, reason, f"{reason}: {msg}", snippet(raw), line)

        def emit(q: dict[str, Any], ans: dict[str, Any] | None) -> dict[str, Any] | Quarantined:
            qid = q["id"]
            try:
                user = q["title"] + "\n\n" + self._text(q["body"])
                turns = [{"role": "user", "content": user.strip()}]
                if ans is not None:
                    turns.append({"role": "assistant", "content": self._text(ans["body"]).strip()})
            except HTMLConversionError as e:
                if ans is not None:
                    self._skip("answer_of_quarantined")
                return quarantine(qid, q["line"], "html_error", str(e), q)
            meta = dict(q["meta"])
            if ans is not None:
                meta.update(
                    answer_id=ans["id"], answer_score=ans["score"], answer_accepted=ans["id"] == q["accepted"]
                )
            if ans is not None:
                self._skip("answer_paired")
            return {
                "source": source,
                "subset": site,
                "turns": validate_turns(turns),
                "meta": meta,
                "provenance": {"file": path, "record": qid},
            }

        try:
            for line, a in iter_rows(path):
                self._count("rows")
                pid, ptype = _int(a.get("Id")), _int(a.get("PostTypeId"))
                if pid is None or ptype is None:
                    yield quarantine(line, line, "malformed_row", "row without an integer Id/PostTypeId", a)
                    continue
                if ptype == 1:
                    self._count("questions")
                    if questions_seen.add(int64_key(pid)):
                        msg = f"question {pid} appears again (line {line}); the first row with this Id was used"
                        yield quarantine(pid, line, "duplicate_id", msg, a)
                        continue
                    title, body = a.get("Title"), a.get("Body")
                    if not title or not title.strip() or not body or not body.strip():
                        missing = "Title" if not title or not title.strip() else "Body"
                        qi = chosen.question(pid)
                        if qi >= 0 and int(chosen.answer[qi]) != _NONE:
                            if held.pop(f"a{pid}") is None:
                                chosen.dead[qi] = True
                            else:
                                self._skip("answer_of_quarantined")
                        yield quarantine(pid, line, "malformed_row", f"question {pid} has no {missing}", a)
                        continue
                    q = {
                        "id": pid,
                        "line": line,
                        "title": title.strip(),
                        "body": body,
                        "accepted": _int(a.get("AcceptedAnswerId")),
                        "meta": {
                            "question_id": pid,
                            "tags": parse_tags(a.get("Tags")),
                            "score": _int(a.get("Score")),
                            "view_count": _int(a.get("ViewCount")),
                            "answer_count": _int(a.get("AnswerCount")),
                            "creation_date": a.get("CreationDate"),
                        },
                    }
                    if not need_answer:
                        yield emit(q, None)
                    elif not chosen.has_answer(pid):
                        yield quarantine(pid, line, "no_answer", f"question {pid} has no answer to pair with", a)
                    else:
                        ans = held.pop(f"a{pid}")
                        if ans is None:
                            held.put(f"q{pid}", q)
                        else:
                            yield emit(q, ans)
                elif ptype == 2:
                    parent = _int(a.get("ParentId"))
                    if parent is None:
                        self._skip("answer_malformed")
                    elif not need_answer:
                        self._skip("answer_not_used")
                    elif (qi := chosen.question(parent)) >= 0 and int(chosen.answer[qi]) == pid:
                        if answers_seen.add(int64_key(pid)):
                            self._skip("answer_duplicate")  # the same answer row again: the first was used
                            continue
                        if chosen.dead[qi]:
                            chosen.dead[qi] = False
                            self._skip("answer_of_quarantined")
                            continue
                        ans = {"id": pid, "body": a.get("Body") or "", "score": _int(a.get("Score"))}
                        q2 = held.pop(f"q{parent}")
                        if q2 is None:
                            held.put(f"a{parent}", ans)
                        else:
                            yield emit(q2, ans)
                    else:
                        self._skip("answer_not_chosen" if qi >= 0 else "answer_unmatched")
                else:
                    self._skip(_POST_TYPES.get(ptype, "post_type_other"))
            # Only reachable if the file changed between the passes; still accounted.
            for key, item in held.leftovers():
                if key.startswith("q"):
                    yield quarantine(item["id"], item["line"], "no_answer", "its answer vanished in pass 2", item)
                else:
                    self._skip("answer_unmatched")
            if held.spilled:
                self._count("spilled_to_sqlite", held.spilled)
        finally:
            held.close()
