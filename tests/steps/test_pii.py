from __future__ import annotations

import pytest

from curate.schema import content_hash
from curate.steps.clean.pii import PiiClean, find_pii, luhn_ok, redact

GH = "ghp_" + "a1B2" * 9


def red(text: str) -> str:
    return redact(text, find_pii(text))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Mail john.doe@gmail.com or call +1 415-555-0132.", "Mail <EMAIL> or call <PHONE>."),
        ("(555) 123-4567 / 555.123.4567", "<PHONE> / <PHONE>"),
        (
            "DNS 8.8.4.4, LAN 192.168.1.10, 127.0.0.1, 0.0.0.0, 10.0.0.1",
            "DNS <IP>, LAN 192.168.1.10, 127.0.0.1, 0.0.0.0, 10.0.0.1",
        ),
        ("v6 2001:4860:4860::8888 and ::1 and fe80::1", "v6 <IP> and ::1 and fe80::1"),
        ("card 4111 1111 1111 1111, not 4111 1111 1111 1112", "card <CARD>, not 4111 1111 1111 1112"),
        ("AKIAIOSFODNN7EXAMPLE " + GH + " sk-proj-abcdefghij1234567890XYZ", "<SECRET> <SECRET> <SECRET>"),
        ("token xoxb-1234567890-abcdefghij", "token <SECRET>"),
        ('api_key = "Zx9qL2vB7mN4kR8tY1wE"', 'api_key = "<SECRET>"'),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nok",
            "<SECRET>\nok",
        ),
    ],
)
def test_pii_detects_and_redacts(text, expected):
    assert red(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Upgrade to version 1.2.3.4 or build 10.0.19041.1",
        "On 2023-01-15 at 12:30:45, epoch 1700000000, price $1,234.56, ISBN 978-3-16-148410-0",
        "for i in range(10): print(i * 3.14159265358979)",
        'api_key = "YOUR_API_KEY_HERE_123"; token = os.environ["TOKEN"]',
        "std::vector<int> v; a::b::c; 10:20:30:40",
        "write to user@example.com or git@github.com:org/repo.git",
        "@app.route('/x') and pkg@1.2.3",
        "Order #1234567890123 shipped",
    ],
)
def test_pii_false_positives(text):
    assert find_pii(text) == []


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005") and not luhn_ok("4111111111111112")


def test_pii_modes(batch_of):
    batch = batch_of(
        "user: mail me at jane@corp.io || assistant: Sure, 8.8.8.8 is public.",
        "user: nothing here || assistant: ok",
        "system: key " + GH + " || user: hi",
    )
    t = PiiClean.from_params()
    out = t.apply(batch)
    assert [[x["content"] for x in r] for r in out["turns"].to_list()] == [
        ["mail me at <EMAIL>", "Sure, <IP> is public."],
        ["nothing here", "ok"],
        ["key <SECRET>", "hi"],
    ]
    assert out["clean.pii.pii_email"].to_list() == [1, 0, 0]
    assert out["clean.pii.pii_secret"].to_list() == [0, 0, 1]
    assert out["content_hash"].to_list() == [content_hash(r) for r in out["turns"].to_list()]
    assert out["content_hash"][1] == batch["content_hash"][1]
    assert t.report_extra == {"pii_secret": 1, "pii_email": 1, "pii_card": 0, "pii_phone": 0, "pii_ip": 1}
    assert "_reject" not in out.columns

    d = PiiClean.from_params(mode="drop")
    dropped = d.apply(batch)
    assert dropped["_reject"].to_list() == ["pii_email", None, "pii_secret"]
    assert dropped["turns"].to_list() == batch["turns"].to_list()

    fl = PiiClean.from_params(mode="flag", kinds=["ip"], roles=["assistant"])
    flagged = fl.apply(batch)
    assert flagged["turns"].to_list() == batch["turns"].to_list()
    assert flagged["clean.pii.pii_ip"].to_list() == [1, 0, 0]
    assert "clean.pii.pii_email" not in flagged.columns


def test_pii_hostile(batch_of):
    t = PiiClean.from_params()
    batch = batch_of(
        "user: ",
        "user: " + "1234 " * 200_000,
        "user: \u202e\u200b😀 jane@corp.io\x00",
        "user: " + "a@" * 50_000,
    )
    out = t.apply(batch)
    assert out["clean.pii.pii_email"].to_list() == [0, 0, 1, 0]
    assert out["turns"].to_list()[2][0]["content"] == "\u202e\u200b😀 <EMAIL>\x00"
    assert "_error" not in out.columns
    assert t.apply(batch.head(0)).height == 0
