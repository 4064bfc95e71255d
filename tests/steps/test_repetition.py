from __future__ import annotations

import pytest

from curate.steps.filter.repetition import RepetitionFilter, gopher_metrics, longest_loop

from ._real import alpaca_batch

PROSE = (
    "Photosynthesis lets plants turn light into chemical energy. Chlorophyll absorbs red and blue "
    "light, water is split, oxygen is released, and carbon dioxide is fixed into sugars through the "
    "Calvin cycle. Those sugars feed growth, respiration and the building of cell walls, while the "
    "oxygen supports almost every animal on the planet, including the people reading this answer today."
)


def reasons(f, batch):
    return f.reject_reason(f.measure(batch)).to_list()


def test_gopher_metrics_exact():
    m = gopher_metrics("a b\na b\nc d\n\nx")
    assert m["dup_line_frac"] == pytest.approx(1 / 4)
    assert m["dup_line_char_frac"] == pytest.approx(3 / 10)
    assert m["dup_para_frac"] == 0.0
    # words a b a b c d x: chars 7; top 2-gram "a b" twice = 4 chars.
    assert m["top_2gram_char_frac"] == pytest.approx(4 / 7)
    assert m["dup_5gram_char_frac"] == 0.0
    w = " ".join(["one two three four five"] * 2 + ["six"])
    assert gopher_metrics(w)["dup_5gram_char_frac"] == pytest.approx(38 / 41)


def test_longest_loop():
    assert longest_loop(["the", "the", "the", "the"], 8) == 4
    assert longest_loop(["I", "am", "sorry", ".", "I", "am", "sorry", ".", "I", "am", "sorry", "."], 8) == 3
    assert (
        longest_loop(["0,", "0,", "0,", "0,", "0,", "0,", "0,", "0,", "0,", "0,", "0,", "0"], 8) == 1
    )  # digits only: data
    assert longest_loop(["😂"] * 12, 8) == 12
    assert longest_loop([], 8) == 0


LOOPED_PARA = (
    "To access a Google Sheet from Python you need the Sheets API enabled in a project of the Google "
    "Developers Console and a service account key."
)
CHORUS = "Endangered species, we hear your call\nWe will protect you, one and all\nTogether we will stand and save you from the fall"
SONG = "\n\n".join(
    f"(Verse {i})\nIn the forest number {i} and the sea\nThere are creatures great and small\n\n(Chorus)\n{CHORUS}"
    for i in range(1, 4)
)


def test_repetition_reasons(batch_of):
    f = RepetitionFilter.from_params()
    batch = batch_of(
        "user: q || assistant: " + PROSE,
        "user: q || assistant: " + "no " * 12,
        "user: q || assistant: " + "\n".join(["Buy our product now, it is the best one."] * 6 + [PROSE]),
        f"user: q || assistant: {LOOPED_PARA}\n\n{PROSE}\n\n{LOOPED_PARA}",
        "user: q || assistant: " + PROSE + " " + PROSE.replace("today.", "now."),
        "user: " + "spam " * 30 + " || assistant: fine",
        "user: Write a song about endangered species || assistant: " + SONG,  # a chorus is not a loop
        "user: q || assistant: " + "\n".join(f"{i}. Windows and Linux: press Ctrl + Shift + J" for i in range(3))
        + "\n" + PROSE,  # the same list stem three times, numbered
        "user: Rewrite this sentence in the passive voice please || assistant: "
        "Rewrite this sentence in the passive voice, please.",
        "user: q || assistant: Thanks!\n\n" + PROSE + "\n\nThanks!",  # short paragraphs repeat
    )
    assert reasons(f, batch) == [
        None,
        "degenerate_output",
        "repeated_lines",
        "repeated_paragraphs",
        "repeated_ngrams",
        None,
        None,
        "repeated_lines",
        "prompt_copy",
        None,
    ]
    m = f.measure(batch)
    assert m["filter.repetition.degenerate_repeats"].to_list()[1] == 12
    assert m["filter.repetition.words"].to_list()[1] == 12
    assert m["filter.repetition.dup_line_frac"].to_list()[1] is None  # 12 words: not judged
    assert m["filter.repetition.verse"].to_list()[6] == 1
    assert m["filter.repetition.verse_para_repeats"].to_list()[6] == 3


def test_repetition_gopher_rules_are_opt_in(batch_of):
    # A structured real-style answer that restates its terms: Gopher's n-gram fractions reject it.
    steps = "\n".join(
        f"{i}. Open the settings menu and choose the option number {i} to change the behaviour of the app."
        for i in range(1, 9)
    )
    batch = batch_of("user: q || assistant: " + steps)
    assert reasons(RepetitionFilter.from_params(), batch) == [None]
    assert reasons(RepetitionFilter.from_params(dup_5gram=0.15), batch) == ["repeated_ngrams"]


def test_repetition_code_is_not_rejected(shared_data, batch_of):
    f = RepetitionFilter.from_params()
    # Real code answers (factorial with fenced blocks) from the Alpaca sample.
    real = alpaca_batch(shared_data, "lm-sys__FastChat__data__alpaca_data_cleaned_1000", [16, 144])
    assert reasons(f, real) == [None, None]
    java = (
        "Here is the class:\n\n```java\n"
        + "class A {\n  void f() {\n    if (x) {\n      y();\n    }\n  }\n}\n" * 8
    )
    java += "```\n\n" + PROSE
    unfenced = (
        PROSE
        + "\n"
        + "\n".join(
            [
                f"int f{i}(int x) {{\n  if (x > {i}) {{\n    return x * {i};\n  }}\n  return 0;\n}}"
                for i in range(8)
            ]
        )
    )
    batch = batch_of("user: q || assistant: " + java, "user: q || assistant: " + unfenced)
    # Code without fences is measured as prose; its boilerplate lines ("return 0;") have fewer than
    # three words and its functions differ, so it is kept too.
    assert reasons(f, batch) == [None, None]
    # With skip_code off the fenced block is measured: code-like lines never count as repeated lines,
    # but the same block eight times is a repeated passage.
    assert reasons(RepetitionFilter.from_params(skip_code=False, line_repeats=4), batch)[0] == "repeated_ngrams"


def test_repetition_hostile(batch_of):
    f = RepetitionFilter.from_params()
    batch = batch_of(
        "user: q || assistant: ",
        "user: q || assistant: \u200b \x00 \u202e",
        "user: q || assistant: " + "x" * 1_000_000,
        "user: q || assistant: " + " ".join(f"w{i}" for i in range(100_000)),
    )
    assert reasons(f, batch) == [None, None, None, None]


def test_batch_metrics_equal_text_by_text():
    import random

    import polars as pl

    from curate.steps.filter.repetition import batch_metrics, text_metrics

    rng = random.Random(3)
    vocab = ["a", "b", "the", "😂", "0,", "北京", "x\u0301", "--", "ab", "²"] + [f"w{i}" for i in range(300)]
    texts = ["", "a", "a a", PROSE, PROSE + " " + PROSE, "no " * 12]
    # a tie between top 2-grams whose first word ids are 256 and 1: byte order puts 256 first
    texts.append(" ".join(f"u{i}" for i in range(300)) + " u256 longerword u256 longerword u1 u3 u1 u3")
    for _ in range(200):  # many equally frequent top n-grams: the tie-break must match np.unique's order
        words = [rng.choice(vocab[: rng.randint(3, len(vocab))]) for _ in range(rng.randint(0, 300))]
        texts.append("".join(w + rng.choice([" ", " ", "\n", "\n\n", "\t"]) for w in words))
    texts.append(SONG)
    got = batch_metrics(pl.Series(texts), 50, 8).to_dicts()
    for text, row in zip(texts, got):
        assert row == text_metrics(text, 50, 8)


BUY = "\n".join(["Buy our product now, it is the best one."] * 6 + [PROSE])
SHORT = "Knead the dough for ten minutes, then let it rise somewhere warm until it has doubled in size."


def test_repetition_per_turn_judges_each_assistant_turn(batch_of):
    batch = batch_of(
        # the same answer in two turns: fine per turn, a duplicate line once joined
        f"user: a || assistant: {PROSE} || user: again? || assistant: {PROSE}",
        # one clean turn and one spammy turn: the conversation goes, scores are the worst turn's
        f"user: a || assistant: {PROSE} || user: more || assistant: {BUY}",
        # two short turns (< min_words each) are not judged per turn; joined they reach 50 words
        f"user: a || assistant: {SHORT} {SHORT} || user: b || assistant: {SHORT} {SHORT}",
        "user: a || assistant: fine || user: b || assistant: " + "no " * 12,
        "user: only a prompt",
    )
    per_turn = RepetitionFilter.from_params()
    joined = RepetitionFilter.from_params(per_turn=False)
    assert reasons(per_turn, batch) == [None, "repeated_lines", None, "degenerate_output", None]
    assert reasons(joined, batch) == [
        "repeated_paragraphs",
        "repeated_lines",
        "repeated_paragraphs",
        "degenerate_output",
        None,
    ]
    m = per_turn.measure(batch)
    worst = gopher_metrics(BUY)
    assert m["filter.repetition.dup_line_frac"][1] == pytest.approx(worst["dup_line_frac"])
    assert m["filter.repetition.top_2gram_char_frac"][1] == pytest.approx(
        max(worst["top_2gram_char_frac"], gopher_metrics(PROSE)["top_2gram_char_frac"])
    )
    assert m["filter.repetition.words"].to_list() == [
        len(PROSE.split()),
        len(BUY.split()),
        2 * len(SHORT.split()),
        12,
        0,
    ]
    assert m["filter.repetition.dup_para_frac"][2] is None  # no turn reaches min_words
    assert m["filter.repetition.degenerate_repeats"].to_list()[3:] == [12, 0]


def test_repetition_per_turn_slow_path_keeps_order(batch_of):
    # U+001F sends one turn through the per-record path; rows must come back to their conversation
    f = RepetitionFilter.from_params()
    batch = batch_of(
        f"user: a || assistant: {PROSE}",
        f"user: a || assistant: {PROSE}\x1f || user: b || assistant: {BUY}",
        "user: a || assistant: " + "no " * 12,
    )
    assert reasons(f, batch) == [None, "repeated_lines", "degenerate_output"]
    m = f.measure(batch)
    assert m["filter.repetition.words"].to_list() == [len(PROSE.split()), len(BUY.split()), 12]


def test_structure_is_not_a_loop(batch_of):
    """Labelling policy: repeated stems, a chorus, a slip of one list item and unfenced code are kept;
    a passage said again and a pair of lines looping are removed."""
    f = RepetitionFilter.from_params()
    schema = "Tables:\n" + "\n".join(
        f"{k}. {name}\n* id (Primary Key, Auto Increment, Integer)\n* {name}_ref (Foreign Key, Integer, references x)"
        for k, name in enumerate(["brands", "products", "variants", "features", "values", "prices", "history"])
    )
    chorus = "Oh, Canada, oh Canada,\nOur northern neighbours, we salute you!\nFrom coast to coast, you have talent galore.\n"
    song = "\n".join(f"(Verse {k})\nLine {k} of a verse about a singer.\nAnother line {k} that rhymes with more.\n\n"
                     f"(Chorus)\n{chorus}" for k in range(4))
    item = "Use secure technology: use encryption, private networks and two-factor sign-in to protect your accounts online."
    slip = "\n\n".join([item] + [f"Point {k}: " + " ".join(f"w{k}x{j}" for j in range(30)) for k in range(8)] + [item])
    unfenced = "import java.sql.*;\n" + "\n".join(
        f"void f{k}() {{\n  try {{\n    run{k}();\n  }} catch (SQLException e) {{\n"
        "    System.err.println(e.getMessage());\n  }\n}" for k in range(8))
    answer = " ".join(f"word{j}" for j in range(60))
    again = answer + "\n\n" + answer
    loop = "\n".join(["The answer is that we go now.", "We go now and the answer is that."] * 6)
    batch = batch_of(*(f"user: q || assistant: {t}" for t in (schema, song, slip, unfenced, again, loop)))
    assert reasons(f, batch) == [None, None, None, None, "repeated_paragraphs", "repeated_lines"]
