"""Conversations and export folders shared by the fine-tune tests."""

from __future__ import annotations

from pathlib import Path

# A memorisable set: short, fixed answers the tiny model can learn in a few dozen steps.
FACTS = [
    ("What colour is the sky?", "The sky is blue."),
    ("What is two plus two?", "Two plus two is four."),
    ("Name a fruit.", "An apple is a fruit."),
    ("What do cats say?", "Cats say meow."),
]


def conv(*pairs: tuple[str, str], system: str | None = None) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": system}] if system else []
    for role, content in pairs:
        turns.append({"role": role, "content": content})
    return turns


def qa(q: str, a: str) -> list[dict[str, str]]:
    return conv(("user", q), ("assistant", a))


MULTI = conv(
    ("user", "Hello there"),
    ("assistant", "Hi! How can I help?"),
    ("user", "Tell me a colour."),
    ("tool", "colour=green"),
    ("assistant", "Green is a colour."),
    system="Be brief.",
)


def write_export(root: Path, splits: dict[str, list[list[dict[str, str]]]], shards: int = 1) -> Path:
    """An exported Hub dataset folder: data/<split>-0000i-of-0000n.parquet with messages/id/source/subset."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, convs in splits.items():
        for i in range(shards):
            part = convs[i::shards]
            table = pa.table(
                {
                    "id": [f"{split}-{i}-{k}" for k in range(len(part))],
                    "source": ["test"] * len(part),
                    "subset": [None] * len(part),
                    "messages": part,
                }
            )
            pq.write_table(table, root / "data" / f"{split}-{i:05d}-of-{shards:05d}.parquet")
    (root / "README.md").write_text("# test export\n", encoding="utf-8")
    return root
