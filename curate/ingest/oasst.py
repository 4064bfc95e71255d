"""Open-Assistant message trees: every root-to-leaf path becomes one conversation.

Accepted shapes, decided per record:

* tree export: ``{message_tree_id, prompt: {message_id, text, role, replies: [...]}}`` (one per line);
* a nested message: ``{message_id, text, role, replies: [...]}`` (the prompt itself);
* flat messages linked by ``parent_id`` / ``parent_message_id`` (ids in ``message_id`` or
  ``user_message_id``), as JSONL or a JSON array, e.g. the oasst1 ``messages`` export.

Memory: nested trees are handled one record at a time. Flat messages must be grouped into trees,
and a tree's messages can be anywhere in the file, so the flat messages of a file are held (only
the fields used here, about the size of their text) until the file ends; the oasst1 export of 88K
messages needs roughly its text size, ~100 MB.

Accounting, in two units.

* Items (``read == ingested + quarantined``): one per emitted path (record, or quarantined
  ``unknown_role`` / ``empty_turn`` / ``wrong_type``), one per tree that leaves no path
  (``deleted_message`` when everything was deleted, ``no_answer`` when no assistant reply is
  left), one per orphan subtree of a flat file (``orphan_message``), and one per undecodable line.
* Messages (``report_extra``): ``messages == messages_used + sum(skipped.*)``, where
  ``messages_used`` are the distinct messages on emitted or quarantined paths and ``skipped.*``
  tallies the rest: ``deleted_message`` (``drop_deleted``: a message with ``deleted: true`` or
  ``review_result: false`` is cut with its whole subtree, so its parent may become a leaf),
  ``synthetic_message`` (``drop_synthetic``), ``unanswered_prompt`` (a prompter message left as a
  leaf has no answer to learn from and is trimmed, repeatedly), ``not_best_path``
  (``best_path_only``), ``orphan_message`` (its parent is missing from the file),
  ``parent_cycle`` (messages that are each other's ancestors, and every message below them: no
  root leads to them; one quarantine item per cycle) and ``no_answer`` (a tree whose prompt has no reply).

Depth: trees are walked with explicit stacks, never recursion, and a nested tree may be as deep as
real conversations go (``max_depth`` counts two JSON levels per reply); records deeper than the C
JSON decoders handle are decoded iteratively.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

from pydantic import Field

from curate.ingest.base import InputError, Quarantined, RawRecord, Reader, display_path, guess_format, snippet
from curate.steps.base import StepParams
from curate.steps.registry import register

ROLE_MAP = {"prompter": "user", "assistant": "assistant"}
_MESSAGE_KEYS = ("message_id", "user_message_id", "replies", "parent_id", "parent_message_id", "role", "text")


class _Node:
    """One message, with only the fields the reader uses."""

    __slots__ = ("deleted", "id", "lang", "rank", "raw", "replies", "role", "synthetic", "text", "tree_id")

    def __init__(self, m: Mapping[str, Any], tree_id: Any = None) -> None:
        self.id = m.get("message_id", m.get("user_message_id"))
        self.role = m.get("role")
        self.text = m.get("text")
        rank = m.get("rank")
        self.rank = rank if isinstance(rank, (int, float)) and not isinstance(rank, bool) else None
        self.lang = m.get("lang")
        self.deleted = m.get("deleted") is True or m.get("review_result") is False
        self.synthetic = m.get("synthetic") is True
        self.tree_id = m.get("message_tree_id", tree_id)
        self.replies: list[_Node] = []
        self.raw = m


def _size(node: _Node) -> int:
    n, stack = 0, [node]
    while stack:
        cur = stack.pop()
        n += 1
        stack.extend(cur.replies)
    return n


def _nested(m: Mapping[str, Any], tree_id: Any) -> _Node:
    """Build nodes from a nested message; raises TypeError for a reply that is not an object."""
    root = _Node(m, tree_id)
    stack = [(root, m)]
    while stack:
        node, raw = stack.pop()
        replies = raw.get("replies") or []
        if not isinstance(replies, list):
            raise TypeError(f"'replies' of message {node.id} is {type(replies).__name__}, expected a list")
        for r in replies:
            if not isinstance(r, Mapping):
                raise TypeError(f"a reply of message {node.id} is {type(r).__name__}, expected an object")
            child = _Node(r, root.tree_id)
            node.replies.append(child)
            stack.append((child, r))
    return root


@register("read.oasst")
class OasstReader(Reader):
    """Read Open-Assistant message trees (nested export or flat messages) into conversations.

    Each root-to-leaf path is one conversation (``part`` = path index); prompter -> user,
    assistant -> assistant. Deleted or review-failed messages are cut with their subtree,
    prompter leaves without an answer are trimmed, and every message not used is counted in
    ``report_extra["skipped.<reason>"]`` (see the module docstring).

    Reasons: unknown_role, empty_turn, wrong_type, deleted_message, synthetic_message, no_answer,
    orphan_message, parent_cycle, duplicate_id, missing_field, plus the container reasons of every JSON
    reader (see curate.ingest.jsonio).
    """

    format = "oasst"
    # A nested export takes two JSON levels per reply; 100,000 allows 50,000 turns in one path.
    max_depth = 100_000

    class Params(StepParams):
        best_path_only: bool = Field(
            False, description="Keep one path per tree: the rank-0 reply at each level (no rank: the first)."
        )
        drop_deleted: bool = Field(
            True, description="Cut messages marked deleted or with review_result false, with their subtree."
        )
        drop_synthetic: bool = Field(False, description="Also cut messages marked synthetic (model-written).")

    def _count(self, key: str, n: int = 1) -> None:
        if n:
            self.report_extra[key] = self.report_extra.get(key, 0) + n

    def records(self, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        flat: list[tuple[_Node, RawRecord]] = []
        checked = False
        for rr in self.raw_records(path):
            if rr.error is not None:
                yield Quarantined(source, path, rr.record, rr.error.reason, str(rr.error), rr.raw, rr.line)
                continue
            obj = rr.obj
            if not checked:
                checked = True
                self._check_shape(path, obj)
            if not isinstance(obj, Mapping):
                msg = f"wrong_type: record is {type(obj).__name__}, expected an object"
                yield Quarantined(source, path, rr.record, "wrong_type", msg, snippet(obj), rr.line)
                continue
            if isinstance(obj.get("prompt"), Mapping) or "replies" in obj:
                message = obj["prompt"] if isinstance(obj.get("prompt"), Mapping) else obj
                try:
                    root = _nested(message, obj.get("message_tree_id"))
                except TypeError as e:
                    yield Quarantined(source, path, rr.record, "wrong_type", f"wrong_type: {e}", snippet(obj), rr.line)
                    continue
                self._count("messages", _size(root))
                yield from self._tree(root, rr, path, source)
            elif any(k in obj for k in _MESSAGE_KEYS):
                node = _Node(obj)
                if node.id is None:
                    msg = "missing_field: flat message without 'message_id'/'user_message_id'"
                    yield Quarantined(source, path, rr.record, "missing_field", msg, snippet(obj), rr.line)
                    continue
                parent = obj.get("parent_id", obj.get("parent_message_id"))
                if not isinstance(node.id, (str, int)) or not isinstance(parent, (str, int, type(None))):
                    what = "message id" if not isinstance(node.id, (str, int)) else "parent id"
                    msg = f"wrong_type: the {what} is {type(node.id if what == 'message id' else parent).__name__}, expected a string"
                    yield Quarantined(source, path, rr.record, "wrong_type", msg, snippet(obj), rr.line)
                    continue
                flat.append((node, rr))
            else:
                msg = f"wrong_type: not an Open-Assistant message or tree (keys {sorted(obj)[:8]})"
                yield Quarantined(source, path, rr.record, "wrong_type", msg, snippet(obj), rr.line)
        if flat:
            yield from self._flat(flat, path, source)

    def _check_shape(self, path: str, obj: Any) -> None:
        """A file of another format (e.g. LLaMA-Factory's Alpaca-shaped ``oaast_*``) fails loudly."""
        if not isinstance(obj, Mapping) or "prompt" in obj or any(k in obj for k in _MESSAGE_KEYS):
            return
        guess = guess_format(obj)
        if guess and guess != self.format:
            raise InputError(
                f"{display_path(path)}: records look like {guess} (keys {sorted(obj)[:8]}), not Open-Assistant messages or "
                f"trees; set the source's `format: {guess}`"
            )

    def _flat(self, flat: list[tuple[_Node, RawRecord]], path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        by_id: dict[Any, tuple[_Node, RawRecord]] = {}
        for node, rr in flat:
            by_id.setdefault(node.id, (node, rr))
        self._count("messages", len(flat))
        roots: list[tuple[_Node, RawRecord]] = []
        orphans: list[tuple[_Node, RawRecord, Any]] = []
        for node, rr in flat:
            if by_id[node.id][0] is not node:
                msg = f"duplicate_id: message id {node.id!r} already seen"
                self._count("skipped.duplicate_message")
                yield Quarantined(source, path, rr.record, "duplicate_id", msg, snippet(node.raw), rr.line)
                continue
            parent = node.raw.get("parent_id", node.raw.get("parent_message_id"))
            if parent is None:
                roots.append((node, rr))
            elif parent in by_id:
                by_id[parent][0].replies.append(node)
            else:
                orphans.append((node, rr, parent))
        reached: set[int] = set()
        stack = [n for n, _ in roots] + [n for n, _, _ in orphans]
        while stack:
            cur = stack.pop()
            reached.add(id(cur))
            stack.extend(cur.replies)
        for node, rr in roots:
            yield from self._tree(node, rr, path, source)
        for node, rr, parent in orphans:
            self._count("skipped.orphan_message", _size(node))
            msg = f"orphan_message: parent {parent!r} of message {node.id!r} is not in the file ({_size(node)} messages)"
            yield Quarantined(source, path, rr.record, "orphan_message", msg, snippet(node.raw), rr.line)
        if len(reached) < len(by_id):
            yield from self._cycles(by_id, reached, path, source)

    def _cycles(
        self, by_id: dict[Any, tuple[_Node, RawRecord]], reached: set[int], path: str, source: str
    ) -> Iterator[Quarantined]:
        """Messages no root leads to: each hangs below a parent_id cycle. One entry per cycle."""
        group_of: dict[int, int] = {}  # id(node) -> group number
        groups: list[tuple[list[_Node], int]] = []  # (cycle, messages in the group)
        for node, _ in by_id.values():  # file order
            if id(node) in reached or id(node) in group_of:
                continue
            chain: list[_Node] = []
            at: dict[int, int] = {}
            cur = node
            while id(cur) not in at and id(cur) not in group_of:
                at[id(cur)] = len(chain)
                chain.append(cur)
                cur = by_id[cur.raw.get("parent_id", cur.raw.get("parent_message_id"))][0]
            if id(cur) in group_of:
                g = group_of[id(cur)]
            else:
                g = len(groups)
                groups.append((chain[at[id(cur)] :], 0))
            for n in chain:
                group_of[id(n)] = g
            groups[g] = (groups[g][0], groups[g][1] + len(chain))
        for cycle, size in groups:
            first = min(cycle, key=lambda n: by_id[n.id][1].record)
            rr = by_id[first.id][1]
            ids = [n.id for n in cycle]
            self._count("skipped.parent_cycle", size)
            msg = (
                f"parent_cycle: messages {ids[:10]!r} are each other's ancestors through parent ids, so no "
                f"conversation starts above them ({size} messages, with those below them)"
            )
            yield Quarantined(source, path, rr.record, "parent_cycle", msg, snippet(first.raw), rr.line)

    # -- one tree -----------------------------------------------------------------------------------
    def _prune(self, node: _Node) -> str | None:
        """Cut dropped messages and unanswered prompter leaves; the reason if the root goes too."""
        p = self.params
        order: list[_Node] = []
        stack = [node]
        while stack:
            cur = stack.pop()
            order.append(cur)
            stack.extend(cur.replies)
        dropped: set[int] = set()
        root_reason: str | None = None
        for cur in order:  # parents before children: cut whole subtrees
            if id(cur) in dropped:
                continue
            reason = None
            if p.drop_deleted and cur.deleted:
                reason = "deleted_message"
            elif p.drop_synthetic and cur.synthetic:
                reason = "synthetic_message"
            if reason:
                if cur is node:
                    root_reason = reason
                sub = [cur]
                while sub:
                    s = sub.pop()
                    dropped.add(id(s))
                    sub.extend(s.replies)
                self._count(f"skipped.{reason}", _size(cur))
        for cur in reversed(order):  # children before parents: trim leaves bottom-up
            if id(cur) in dropped:
                continue
            cur.replies = [r for r in cur.replies if id(r) not in dropped]
            if not cur.replies and cur.role == "prompter":
                dropped.add(id(cur))
                if cur is node:  # the prompt itself has nothing left to answer it
                    root_reason = "no_answer"
                self._count(f"skipped.{'no_answer' if cur is node else 'unanswered_prompt'}")
        return root_reason

    def _paths(self, root: _Node) -> list[list[_Node]]:
        if self.params.best_path_only:
            path = [root]
            while path[-1].replies:
                replies = path[-1].replies
                best = min(range(len(replies)), key=lambda i: (replies[i].rank is None, replies[i].rank or 0, i))
                path.append(replies[best])
            self._count("skipped.not_best_path", _size(root) - len(path))
            return [path]
        out: list[list[_Node]] = []
        stack: list[list[_Node]] = [[root]]
        while stack:
            cur = stack.pop()
            if not cur[-1].replies:
                out.append(cur)
            stack.extend(cur + [r] for r in reversed(cur[-1].replies))
        return out

    def _tree(self, root: _Node, rr: RawRecord, path: str, source: str) -> Iterator[dict[str, Any] | Quarantined]:
        reason = self._prune(root)
        if reason is not None:
            why = "no assistant reply is left" if reason == "no_answer" else "its prompt was removed"
            msg = f"{reason}: tree {root.tree_id or root.id!r} yields no conversation: {why}"
            yield Quarantined(source, path, rr.record, reason, msg, snippet(root.raw), rr.line)
            return
        used: set[int] = set()
        for i, nodes in enumerate(self._paths(root)):
            used.update(id(n) for n in nodes)
            turns: list[dict[str, str]] = []
            problem: tuple[str, str] | None = None
            for n in nodes:
                role = ROLE_MAP.get(n.role) if isinstance(n.role, str) else None
                if role is None:
                    problem = ("unknown_role", f"message {n.id!r} has role {n.role!r}; expected prompter or assistant")
                elif not isinstance(n.text, str):
                    problem = ("wrong_type", f"message {n.id!r} text is {type(n.text).__name__}, expected str")
                elif not n.text.strip():
                    problem = ("empty_turn", f"message {n.id!r} has empty text")
                if problem:
                    break
                turns.append({"role": cast(str, role), "content": cast(str, n.text)})
            if problem:
                reason, msg = problem
                raw = {"path": i, "message_ids": [n.id for n in nodes]}
                yield Quarantined(source, path, rr.record, reason, f"{reason}: {msg}", snippet(raw), rr.line)
                continue
            langs = [n.lang for n in nodes if n.lang]
            yield {
                "source": source,
                "subset": None,
                "turns": turns,
                "meta": {
                    "message_tree_id": root.tree_id or root.id,
                    "message_ids": [n.id for n in nodes],
                    "lang": langs[0] if langs else None,
                    "ranks": [n.rank for n in nodes],
                    "synthetic": any(n.synthetic for n in nodes),
                    "path": i,
                },
                "provenance": {"file": path, "record": rr.record},
            }
        self._count("messages_used", len(used))
