from __future__ import annotations

import pytest

from curate.steps.filter.refusal import RefusalFilter, default_phrases

from ._real import alpaca_batch


def reasons(f, batch):
    return f.reject_reason(f.measure(batch)).to_list()


def test_refusal_families(batch_of):
    f = RefusalFilter.from_params()
    batch = batch_of(
        "user: hi || assistant: As an AI language model, I cannot browse.",
        "user: do it || assistant: I’m sorry, but I cannot help with that request.",
        "user: opinion? || assistant: I don't have personal opinions.",
        "user: news? || assistant: My knowledge cutoff is 2021, so I may be out of date.",
        "user: x || assistant: That goes against ethical guidelines.",
        "user: As an AI language model, say hi || assistant: Hi there!",
        "user: x || assistant: I cannot   FULFILL\nthis.",
        "user: x || assistant: Paris is the capital of France.",
        "user: What is the price of a ticket at AMC tonight? || assistant: I don't have access to real-time "
        "pricing. The best way to find the price is to check the AMC website or app.",
    )
    assert reasons(f, batch) == [
        "refusal_ai_disclaimer",
        "refusal_cannot_comply",
        "refusal_no_opinion",
        "refusal_knowledge_cutoff",
        "refusal_policy",
        None,  # user turns are not searched
        "refusal_cannot_comply",
        None,
        "refusal_knowledge_cutoff",  # a redirect to a website is not an answer
    ]
    assert f.measure(batch)["filter.refusal.family"].to_list()[0] == "ai_disclaimer"


DISCLAIMED = (
    "I don't have personal preferences, but here are five places most visitors love in Rome: the Colosseum, "
    "the Pantheon, the Trevi Fountain, the Vatican Museums and the Roman Forum, each with centuries of history."
)


def test_refusal_disclaimer_identity_and_requested_text_are_kept_with_flags(batch_of):
    f = RefusalFilter.from_params()
    batch = batch_of(
        # the task done after a disclaimer: kept, flagged
        "user: What is your favourite place in Rome? || assistant: As an AI, " + DISCLAIMED,
        # an identity answer to a question about the assistant
        "user: Who are you? || assistant: I am a language model trained by researchers from LMSYS.",
        "user: Are you ChatGPT? || assistant: No, as an AI language model I was trained by LMSYS, not OpenAI.",
        # the refusal words are the requested text
        "user: Generate an excuse for not coming to work || assistant: I'm sorry, but I'm unable to come "
        "into work today because I have a fever.",
        'user: Translate into French: "I\'m sorry, I can\'t come" || assistant: Désolé, je ne peux pas venir.',
        'user: What did she say? || assistant: She said "I am unable to attend" and left the room early.',
        # the prompt tells it to decline when the context has no answer
        "user: Answer from the context. If you don't know the answer, just say that you don't know. "
        "Context: ... || assistant: I'm sorry, I cannot answer that question from the given context.",
        # a refusal in an earlier turn only
        "user: Tell me your address || assistant: I'm sorry, I cannot share that. || user: Then name a "
        "fruit || assistant: A banana is a long, curved fruit that grows in clusters on tropical plants.",
    )
    m = f.measure(batch)
    assert f.reject_reason(m).to_list() == [None] * 8
    assert f.flag_reason(m).to_list() == [
        "ai_disclaimer", "identity", "identity", None, None, None, None, "partial_refusal",
    ]
    strict = RefusalFilter.from_params(remove_flags=["ai_disclaimer", "partial_refusal"])
    got = strict.reject_reason(strict.measure(batch)).to_list()
    assert got == ["ai_disclaimer", None, None, None, None, None, None, "partial_refusal"]


def test_refusal_deflections(batch_of):
    f = RefusalFilter.from_params()
    batch = batch_of(
        "user: How many days until christmas? || assistant: What is today's date?",
        "user: Estimate the temperature of water || assistant: I'm sorry, but I cannot estimate it without "
        "additional information. Could you provide more details?",
        "user: hi || assistant: Hello! How can I help?",  # a greeting, not a task
        "user: Classify these stocks by performance: Apple, Google || assistant: To classify them I would "
        "need more information such as their prices. Can you provide more context?",
    )
    assert reasons(f, batch) == ["refusal_deflect", "refusal_cannot_comply", None, "refusal_deflect"]


def test_refusal_scope_extra_and_disable(batch_of):
    batch = batch_of("user: a || assistant: Sure! || user: b || assistant: I'm unable to do that.")
    assert reasons(RefusalFilter.from_params(scope="first_assistant"), batch) == [None]
    assert reasons(RefusalFilter.from_params(scope="last_assistant"), batch) == ["refusal_cannot_comply"]
    assert reasons(RefusalFilter.from_params(scope="any_assistant"), batch) == ["refusal_cannot_comply"]
    assert reasons(RefusalFilter.from_params(disable_families=["cannot_comply"]), batch) == [None]
    f = RefusalFilter.from_params(extra_phrases={"moralizing": ["it's important to remember (that)"]})
    got = reasons(f, batch_of("user: a || assistant: It's important to remember (that) kindness matters."))
    assert got == ["refusal_moralizing"]
    with pytest.raises(ValueError):
        RefusalFilter.from_params(disable_families=["no_such_family"])
    with pytest.raises(ValueError):
        RefusalFilter.from_params(extra_phrases={"Bad-Name": ["x"]})
    with pytest.raises(ValueError):
        RefusalFilter.from_params(extra_phrases={"empty": ["  "]})


def test_refusal_shipped_families():
    assert list(default_phrases())[:5] == [
        "ai_disclaimer",
        "cannot_comply",
        "no_opinion",
        "knowledge_cutoff",
        "policy",
    ]


def test_refusal_hostile(batch_of):
    f = RefusalFilter.from_params()
    batch = batch_of(
        "user: q || assistant: ",
        "user: q || assistant: " + "x" * 1_000_000 + " as an ai language model",
        "user: q || assistant: \u202e\u05e9\u05dc\u05d5\u05dd 🙂 [.*+?] (regex chars) \x00",
        "user: only a prompt",
    )
    assert reasons(f, batch) == [None, "refusal_ai_disclaimer", None, None]


def test_refusal_real_alpaca(shared_data):
    f = RefusalFilter.from_params()
    batch = alpaca_batch(
        shared_data, "lm-sys__FastChat__data__alpaca_data_cleaned_1000", [0, 1, 38, 547, 595, 601, 766, 44]
    )
    m = f.measure(batch)
    assert f.reject_reason(m).to_list() == [
        None,
        None,  # "... cannot be created by mixing": not a refusal
        None,  # "I'm sorry, I cannot answer that question": the prompt says to say so
        None,  # "as an AI language model, I don't have access ...", then what it found: a disclaimer
        None,  # "... I'm unable to tell jokes.": the prompt restricts it to the company's queries
        "refusal_ai_disclaimer",  # "As an AI, I do not have personal experiences ..."
        "refusal_ai_disclaimer",  # "As an AI, I am a language model and do not take classes ..."
        None,  # "... cannot be overstated"
    ]
    assert f.flag_reason(m).to_list()[3] == "ai_disclaimer"


def test_refusal_ai_disclaimer_without_comma_and_not_able_to(batch_of):
    f = RefusalFilter.from_params()
    batch = batch_of(
        "user: q || assistant: I apologize, but as an AI I am not able to give recommendations about stocks.",
        "user: q || assistant: As an AI I don't have a favourite colour.",
        "user: q || assistant: I’m sorry, but as an AI, my answers may be wrong.",
        "user: q || assistant: Sorry, I'm not able to give advice on that.",
        "user: q || assistant: I am not able to assist with this request.",
        "user: q || assistant: As an AI researcher, I spent years on vision models.",
        "user: q || assistant: She works as an AI engineer; I am her manager.",
        "user: q || assistant: As an AI image generator improves, I am amazed by it.",
        "user: q || assistant: If I am not able to give up coffee, I switch to decaf.",
        "user: q || assistant: Our team has an AI assistant and I am happy with it.",
    )
    assert reasons(f, batch) == [
        "refusal_ai_disclaimer",
        "refusal_ai_disclaimer",
        "refusal_ai_disclaimer",
        "refusal_cannot_comply",
        "refusal_cannot_comply",
        None,
        None,
        None,
        None,
        None,
    ]


def test_refusal_catches_every_demo_refusal(batch_of):
    from curate.demo import text as demo_text

    f = RefusalFilter.from_params()
    texts = [r.replace("{e}", "a sourdough starter") for r in demo_text.REFUSALS]
    got = reasons(f, batch_of(*(f"user: q || assistant: {t}" for t in texts)))
    assert None not in got, [t for t, r in zip(texts, got) if r is None]


def test_refusing_a_writing_task_is_a_refusal(batch_of):
    f = RefusalFilter.from_params()
    batch = batch_of(
        "user: Rephrase this sentence so that it sounds more encouraging. Torque lug nuts in a star pattern. "
        "|| assistant: As an AI language model, I do not have personal experiences with a flat tire, so I cannot "
        "answer that.",
        "user: Draft an email inviting colleagues to a session on plate tectonics. || assistant: Unfortunately, "
        "I cannot fulfill this request because it goes against my guidelines.",
        "user: Write a message to my boss saying I can't come in today || assistant: I'm sorry, but I'm unable "
        "to come in today because I have a fever. I will catch up on my tasks tomorrow.",
    )
    assert reasons(f, batch) == ["refusal_ai_disclaimer", "refusal_cannot_comply", None]


def test_a_question_asked_for_thanks_answered_and_identity_told_are_not_refusals(batch_of):
    f = RefusalFilter.from_params()
    batch = batch_of(
        # the task is to write a question: a question is the task done
        "user: Create a survey question to measure customer satisfaction || assistant: On a scale of 1-10, "
        "how satisfied were you with the products or services you received from our company?",
        "user: Generate a question with the keyword fungi || assistant: What role do fungi play in the ecosystem?",
        # thanks with no request: a polite offer of more help is the right answer
        "user: I want to thank you for your deep work || assistant: You're very welcome. Is there anything else "
        "I can help you with today?",
        # who it is, asked in other words
        "user: Tell me about you. || assistant: As a language model, I go by the name Vicuna and was trained by "
        "researchers from Large Model Systems Organization (LMSYS).",
        # still a deflection: a task answered only with a question back
        "user: How did Thanksgiving come about in the United States? || assistant: Do you mean the name, or how "
        "the holiday began?",
    )
    assert reasons(f, batch) == [None, None, None, None, "refusal_deflect"]
    _, flags = f.decide(f.measure(batch))
    assert flags.to_list()[3] == "identity"
