"""Find personal data and secrets in turns; redact, flag or reject them (clean.pii)."""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Literal

import polars as pl
from pydantic import Field

from curate.schema import ERROR_COLUMN
from curate.steps.base import REJECT_COLUMN, StepParams, Transform
from curate.steps.clean._text import explode_turns, rebuild_turns, rehash
from curate.steps.registry import register

Kind = Literal["secret", "email", "card", "phone", "ip"]
# Priority when spans overlap, and the order in which a drop reason is chosen.
KINDS: tuple[Kind, ...] = ("secret", "email", "card", "phone", "ip")
PLACEHOLDER = {"secret": "<SECRET>", "email": "<EMAIL>", "card": "<CARD>", "phone": "<PHONE>", "ip": "<IP>"}

# Cheap polars (Rust regex) pre-check: only turns that match go through the Python detectors.
PREFILTER = (
    r"@|\d{3}|\d\.\d{1,3}\.\d|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:|AKIA|ASIA|gh[pousr]_|github_pat_|sk-|xox[abposr]-"
    r"|PRIVATE KEY|(?i:key|secret|token|passw)"
)

_SECRET_PATTERNS = [
    re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
    ),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
]
# `api_key = "..."`, `"token": "..."`, `password: '...'`: only the quoted value is a secret.
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b[\w-]*(?:api[_-]?key|apikey|secret|access[_-]?key|access[_-]?token|auth[_-]?token|token"
    r"|passw(?:or)?d|pwd)[\w-]*[\"']?\s*[:=]\s*[\"']([^\"'\s]{16,})[\"']"
)
_PLACEHOLDER_VALUE = re.compile(
    r"(?i)your|xxxx|example|placeholder|<|\$\{|\{\{|changeme|dummy|redacted|\*\*\*"
)
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])"
)
# RFC 2606 / 6761 names reserved for documentation: never anyone's address.
_EXAMPLE_DOMAIN = re.compile(
    r"(?i)(?:^|\.)(?:example\.(?:com|net|org)|[^.]+\.(?:example|test|invalid|localhost))$"
)
_CARD = re.compile(r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d.-])")
_PHONE = re.compile(
    r"(?<![\w.+-])(?:"
    r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}"  # international, +CC ...
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"  # (555) 123-4567
    r"|\d{3}[ .-]\d{3}[ .-]\d{4}"  # 555-123-4567 / 555.123.4567
    r")(?![\w.-]*\d)"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# "version 1.2.3.4", "v1.2.3.4", "build 10.0.19041.1": dotted quads that are versions, not hosts.
_VERSION_BEFORE = re.compile(r"(?i)\b(?:v|version|ver\.?|release|build|firmware|windows|chrome)\s*[:=]?\s*$")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _secrets(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for rx in _SECRET_PATTERNS for m in rx.finditer(text)]
    for m in _ASSIGNED_SECRET.finditer(text):
        v = m.group(1)
        # A real key is long, mixes letters and digits and looks random (>= 3.5 bits/char);
        # "YOUR_API_KEY", "os.environ[...]" and "${TOKEN}" are not secrets.
        if (
            _PLACEHOLDER_VALUE.search(v) is None
            and re.search(r"[A-Za-z]", v)
            and re.search(r"\d", v)
            and _entropy(v) >= 3.5
        ):
            spans.append(m.span(1))
    return spans


def _emails(text: str) -> list[tuple[int, int]]:
    return [
        m.span()
        for m in _EMAIL.finditer(text)
        if not _EXAMPLE_DOMAIN.search(m.group().rsplit("@", 1)[1])
        # git@host:org/repo is an SSH remote, not a person's address.
        and not m.group().lower().startswith("git@")
    ]


def _cards(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        # Card networks use IINs starting 2-6 (Mastercard 2/5, Amex 3, Visa 4, Discover 6).
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and len(set(digits)) > 1 and luhn_ok(digits):
            out.append(m.span())
    return out


def _phones(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _PHONE.finditer(text):
        n = sum(ch.isdigit() for ch in m.group())
        if 10 <= n <= 15:
            out.append(m.span())
    return out


def _ips(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 12) : m.start()]):
            continue
        try:
            ip = ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        if ip.is_global:
            out.append(m.span())
    for m in _IPV6.finditer(text):
        try:
            ip6 = ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        if ip6.is_global:
            out.append(m.span())
    return out


DETECTORS: dict[str, Callable[[str], list[tuple[int, int]]]] = {
    "secret": _secrets,
    "email": _emails,
    "card": _cards,
    "phone": _phones,
    "ip": _ips,
}


def find_pii(text: str, kinds: tuple[str, ...] = KINDS) -> list[tuple[int, int, str]]:
    """Non-overlapping ``(start, end, kind)`` spans, sorted; earlier kinds in KINDS win overlaps."""
    found = [(s, e, k) for k in kinds for s, e in DETECTORS[k](text)]
    found.sort(key=lambda x: (KINDS.index(x[2]), x[0]))
    taken: list[tuple[int, int, str]] = []
    for s, e, k in found:
        if all(e <= ts or s >= te for ts, te, _ in taken):
            taken.append((s, e, k))
    return sorted(taken)


def redact(text: str, spans: list[tuple[int, int, str]]) -> str:
    parts, pos = [], 0
    for s, e, k in spans:
        parts.append(text[pos:s])
        parts.append(PLACEHOLDER[k])
        pos = e
    parts.append(text[pos:])
    return "".join(parts)


@register("clean.pii")
class PiiClean(Transform):
    """Redact, flag or reject e-mails, phone numbers, IP addresses, card numbers and secrets in turns.

    Detectors (Python regex, after a polars pre-check): e-mails (not RFC 2606 example domains,
    not ``git@`` SSH remotes);
    phone numbers with separators, 10-15 digits (bare digit runs, dates, times and versions do not
    match; only +CC international and North American formats are recognised); IPv4/IPv6 that are globally routable (private, loopback, link-local, documentation and
    reserved ranges such as 127.0.0.1, 10.x, 192.168.x, 0.0.0.0, ::1 are not personal and stay);
    dotted quads after "version"/"v"/"build" are versions; card numbers of 13-19 digits with a
    network prefix 2-6 that pass the Luhn check; secrets: AWS AKIA/ASIA ids, GitHub ghp_/gho_/
    github_pat_, OpenAI sk-, Slack xox?-, private key blocks, and quoted values of 16+ chars with
    >= 3.5 bits/char of entropy assigned to api_key/secret/token/password names.
    Modes: ``redact`` replaces each span with <SECRET>, <EMAIL>, <CARD>, <PHONE>, <IP> and
    recomputes ``content_hash``; ``flag`` only writes counts; ``drop`` leaves text unchanged and
    sets the ``_reject`` column. Every mode writes ``<id>.pii_<kind>`` counts per conversation
    and adds totals to ``report_extra["pii_<kind>"]``.

    Contract with the runner: a Transform may add a ``_reject`` column (Utf8, null = keep); the
    runner treats a non-null value as a rejection with that reason and removes the column.

    Reasons: pii_secret, pii_email, pii_card, pii_phone, pii_ip (drop mode only; the first kind
    found, in that order).
    """

    class Params(StepParams):
        mode: Literal["redact", "drop", "flag"] = Field(
            "redact", description="redact: replace spans; drop: reject the conversation; flag: count only."
        )
        kinds: list[Kind] = Field(list(KINDS), min_length=1, description="Kinds of PII to look for.")
        roles: list[Literal["system", "user", "assistant", "tool"]] = Field(
            ["system", "user", "assistant", "tool"],
            min_length=1,
            description="Roles whose turns are scanned.",
        )

    def apply(self, batch: pl.DataFrame) -> pl.DataFrame:
        p = self.params
        kinds = tuple(k for k in KINDS if k in p.kinds)
        counts: dict[str, list[int]] = {k: [0] * batch.height for k in kinds}
        row_err: list[str | None] = [None] * batch.height
        if batch.height == 0:
            return self._finish(batch, counts, row_err)
        flat = explode_turns(batch)
        cand = flat.select(
            (pl.col("content").str.contains(PREFILTER) & pl.col("role").is_in(list(p.roles))).fill_null(False)
        ).to_series()
        idx = cand.arg_true().to_list()
        if not idx:
            return self._finish(batch, counts, row_err)
        contents = flat["content"].to_list()
        rows = flat["_row"].to_list()
        changed = [False] * batch.height
        for i in idx:
            r = rows[i]
            try:
                spans = find_pii(contents[i], kinds)
            except Exception as e:  # noqa: BLE001 - one bad turn quarantines its record only
                row_err[r] = row_err[r] or f"{type(e).__name__}: {e}"[:500]
                continue
            for _, _, k in spans:
                counts[k][r] += 1
            if spans and p.mode == "redact":
                contents[i] = redact(contents[i], spans)
                changed[r] = True
        if any(changed):
            flat = flat.with_columns(pl.Series("content", contents, dtype=pl.Utf8))
            batch = batch.with_columns(rebuild_turns(batch, flat))
            batch = batch.with_columns(rehash(batch, pl.Series(changed)))
        return self._finish(batch, counts, row_err)

    def _finish(
        self, batch: pl.DataFrame, counts: dict[str, list[int]], row_err: list[str | None]
    ) -> pl.DataFrame:
        for k, c in counts.items():
            key = f"pii_{k}"
            self.report_extra[key] = self.report_extra.get(key, 0) + sum(c)
        cols = [pl.Series(f"{self.id}.pii_{k}", c, dtype=pl.Int32) for k, c in counts.items()]
        if self.params.mode == "drop":
            reasons: list[str | None] = []
            for r in range(batch.height):
                reasons.append(next((f"pii_{k}" for k in counts if counts[k][r] > 0), None))
            cols.append(pl.Series(REJECT_COLUMN, reasons, dtype=pl.Utf8))
        out = batch.with_columns(cols)
        if any(e is not None for e in row_err):
            err = pl.Series(ERROR_COLUMN, row_err, dtype=pl.Utf8)
            if ERROR_COLUMN in out.columns:
                err = out[ERROR_COLUMN].fill_null(err)
            out = out.with_columns(err.alias(ERROR_COLUMN))
        return out
