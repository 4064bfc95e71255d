"""Chat templates: the model's own, or a named default (alpaca, vicuna, chatml).

Our defaults wrap assistant text in ``{% generation %}...{% endgeneration %}`` so that transformers'
``return_assistant_tokens_mask`` and trl's ``assistant_only_loss`` work with an exported adapter too;
curate itself finds the supervised spans by rendering prefix by prefix (see ``curate.train.data``), which
works for any template, including a model's own that has no generation markers.

Each assistant turn ends with an end marker the model learns to emit: the tokenizer's ``<|im_end|>``
for ChatML when it has that token, else its EOS token, so ``generate()`` stops on it without new,
untrained embedding rows.
"""

from __future__ import annotations

from typing import Any

from curate.errors import ConfigError

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


def _q(s: str) -> str:
    """A Python string as a Jinja string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _chatml(end: str) -> str:
    return (
        "{% if bos_token %}{{ bos_token }}{% endif %}"
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{% if message['role'] == 'assistant' %}"
        "{% generation %}{{ message['content'] + " + _q(end) + " }}{% endgeneration %}{{ '\\n' }}"
        "{% else %}{{ message['content'] + '<|im_end|>\\n' }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )


def _alpaca(end: str) -> str:
    # Alpaca's own layout (Stanford alpaca train.py); system replaces the preamble, tool output is "Input".
    return (
        "{% if bos_token %}{{ bos_token }}{% endif %}"
        "{% if messages|length == 0 or messages[0]['role'] != 'system' %}"
        "{{ " + _q(ALPACA_PREAMBLE + "\n\n") + " }}{% endif %}"
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
        "{% elif message['role'] == 'tool' %}{{ '### Input:\\n' + message['content'] + '\\n\\n' }}"
        "{% else %}{{ '### Response:\\n' }}"
        "{% generation %}{{ message['content'] + " + _q(end) + " }}{% endgeneration %}{{ '\\n\\n' }}"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
    )


def _vicuna(end: str) -> str:
    # FastChat's vicuna_v1.1: "SYSTEM USER: q ASSISTANT: a</s>USER: ..."; the prompt ends at "ASSISTANT:".
    return (
        "{% if bos_token %}{{ bos_token }}{% endif %}"
        "{% if messages|length > 0 and messages[0]['role'] == 'system' %}{{ messages[0]['content'] + ' ' }}"
        "{% else %}{{ " + _q(VICUNA_SYSTEM + " ") + " }}{% endif %}"
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{% if not loop.first %}{{ message['content'] + ' ' }}{% endif %}"
        "{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
        "{% elif message['role'] == 'tool' %}{{ 'TOOL: ' + message['content'] + ' ' }}"
        "{% else %}{{ 'ASSISTANT:' }}"
        "{% generation %}{{ ' ' + message['content'] + " + _q(end) + " }}{% endgeneration %}"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    )


_BUILDERS = {"chatml": _chatml, "alpaca": _alpaca, "vicuna": _vicuna}


def end_marker(name: str, tokenizer: Any) -> str:
    """The text that closes an assistant turn in default template ``name`` for this tokenizer."""
    vocab = tokenizer.get_vocab()
    if name == "chatml" and "<|im_end|>" in vocab:
        return "<|im_end|>"
    eos = tokenizer.eos_token
    if not eos:
        raise ConfigError(
            f"model.chat_template: the tokenizer has no eos_token, so the {name!r} template cannot mark the "
            "end of an assistant turn; use a model with an EOS token or its own chat template"
        )
    return str(eos)


def default_template(name: str, tokenizer: Any) -> str:
    if name not in _BUILDERS:
        raise ConfigError(f"model.default_template: unknown template {name!r}; choose one of {sorted(_BUILDERS)}")
    return _BUILDERS[name](end_marker(name, tokenizer))


def resolve_template(choice: str, default_name: str, tokenizer: Any) -> tuple[str, str]:
    """Return ``(template, label)`` for ``model.chat_template``; label says where it came from."""
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):  # several named templates: the "default" one is the chat template
        own = own.get("default")
    if choice == "model":
        if not own:
            raise ConfigError(
                "model.chat_template=model: the base model has no chat template; use auto, or name one of "
                f"{sorted(_BUILDERS)}"
            )
        return str(own), "model"
    if choice == "auto":
        if own:
            return str(own), "model"
        return default_template(default_name, tokenizer), default_name
    return default_template(choice, tokenizer), choice
