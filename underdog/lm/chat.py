"""Chat formatting: the tokenizer's own chat template where it has one, ChatML otherwise.

Methods never build chat strings by hand; they call ``format_chat`` so that a real instruct model gets its
own template and the built-in model (which has none) gets ChatML.
"""

from __future__ import annotations

from collections.abc import Sequence


def format_chatml(messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_chat(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    """Render ``messages`` ([{"role", "content"}, ...]) to a prompt string."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"message {i} must be a dict with 'role' and 'content'")
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    return format_chatml(messages, add_generation_prompt)


def chat_end_marker(tokenizer) -> str:
    """The string that ends an assistant turn: ChatML's ``<|im_end|>`` or the tokenizer's EOS."""
    return tokenizer.eos_token if has_chat_template(tokenizer) else "<|im_end|>"
