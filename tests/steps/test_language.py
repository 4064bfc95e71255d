from __future__ import annotations

import pytest

from curate.steps.filter.language import LanguageFilter

from ._real import alpaca_batch


def langs(f, batch):
    m = f.measure(batch)
    return m[f"{f.id}.lang"].to_list(), f.reject_reason(m).to_list(), m


def test_language_real_sentences_default_backend(batch_of):
    f = LanguageFilter.from_params()
    batch = batch_of(
        "user: 北京是中国的首都。 || assistant: 对，北京是中华人民共和国的首都。",
        "user: 안녕하세요, 만나서 반갑습니다. || assistant: 네, 저도 정말 반갑습니다!",
        "user: What is the capital of France? || assistant: Paris.",
        "user: ¿Dónde está la biblioteca municipal? || assistant: Está en la plaza mayor.",
        "user: hi || assistant: ok",
        "user: Translate: I love cheese and bread. || assistant: J'adore le fromage et le pain, surtout le matin.",
        "user: ```python\nprint('hello world, this is code')\n``` || assistant: ```\nx = 1\n```",
    )
    got, reasons, m = langs(f, batch)
    assert got == ["zh", "ko", "en", "es", "unknown", "mixed", "unknown"]
    assert reasons == ["language_zh", "language_ko", None, "language_es", None, None, None]
    assert m["filter.language.langs"].to_list()[5] == ["en", "fr"]
    assert m["filter.language.lang_score"].to_list()[4] is None
    assert all(s > 0.5 for s in m["filter.language.lang_score"].to_list()[:4])


def test_language_keep_unknown_and_mixed_params(batch_of):
    batch = batch_of(
        "user: hi || assistant: ok",
        "user: Translate: I love cheese and bread. || assistant: J'adore le fromage et le pain, surtout le matin.",
        "user: Traduis: j'aime le fromage et le pain. || assistant: Ich liebe Käse und Brot, besonders am Morgen.",
    )
    f = LanguageFilter.from_params(keep_unknown=False, mixed="reject", keep_translations=False)
    assert langs(f, batch)[1] == ["language_unknown", "language_mixed", "language_mixed"]
    # an English prompt asking for a translation is a good record in any language, flagged for review
    f_tr = LanguageFilter.from_params(keep_unknown=False, mixed="reject")
    reasons, flags = f_tr.decide(f_tr.measure(batch))
    assert reasons.to_list() == ["language_unknown", None, "language_mixed"]
    assert flags.to_list() == [None, "translation", None]
    f2 = LanguageFilter.from_params(keep=["en"])
    assert langs(f2, batch)[1] == [None, None, "language_mixed"]
    with pytest.raises(ValueError):
        LanguageFilter.from_params(keep=[])


def test_language_langdetect_backend_is_deterministic(batch_of):
    f = LanguageFilter.from_params(backend="langdetect")
    batch = batch_of(
        "user: What is the capital of France, and why is it famous? || assistant: Paris, for its art.",
        "user: ¿Dónde está la biblioteca municipal de la ciudad? || assistant: Está en la plaza mayor.",
    )
    first = langs(f, batch)
    assert first[0] == ["en", "es"]
    assert langs(LanguageFilter.from_params(backend="langdetect"), batch)[2].equals(first[2])


def test_language_hostile(batch_of):
    f = LanguageFilter.from_params()
    batch = batch_of(
        "user: ",
        "user: \u200b\u200b\x00\x01 || assistant: 12345 !!! ???",
        "user: " + "This is an English sentence about cats. " * 30_000,
        "user: 🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂 || assistant: https://example.org/a/b/c/d/e/f",
        "user: \u202eשלום, מה שלומך היום? אני מקווה שהכול טוב.",
    )
    got, _, m = langs(f, batch)
    assert got == ["unknown", "unknown", "en", "unknown", "he"]
    assert "_error" not in m.columns


def test_language_real_chinese_files(shared_data):
    f = LanguageFilter.from_params(keep=["zh"])
    batch = alpaca_batch(shared_data, "hiyouga__LLaMA-Factory__data__alpaca_zh_demo", list(range(300)))
    got, reasons, _ = langs(f, batch)
    # Translation and code tasks are legitimately mixed or English; plain Chinese must be zh.
    assert got.count("zh") >= 280
    assert set(got) <= {"zh", "mixed", "en", "unknown"}
    assert reasons.count(None) >= 285
    en = alpaca_batch(shared_data, "hiyouga__LLaMA-Factory__data__alpaca_en_demo", list(range(300)))
    got_en, _, _ = langs(LanguageFilter.from_params(), en)
    assert got_en.count("en") >= 290


def test_requested_translations_are_kept(batch_of):
    f = LanguageFilter.from_params(keep=["en"])
    batch = batch_of(
        "user: Given a sentence in English, generate a translation of that sentence in Hindi. "
        "The weather is pleasant today and we will go for a walk. || assistant: आज मौसम सुहावना है और हम टहलने जाएंगे।",
        "user: You are given a sentence in Arabic. Your job is to translate it into Spanish. "
        "ان بلد لايمتلك الماء يجب ان يقلق || assistant: Un país que no tiene agua debe preocuparse por lo que pasa.",
        "user: 请介绍一下北京的历史和文化，以及它作为首都的重要性。 || assistant: 北京是中国的首都，有三千多年的历史。",
    )
    reasons, flags = f.decide(f.measure(batch))
    assert reasons.to_list() == [None, None, "language_zh"]
    assert flags.to_list() == [None, "translation", None]  # the first is kept as mixed en/hi anyway
