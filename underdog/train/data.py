"""Training data: normalise examples, tokenize with a loss mask, truncate, pack and collate.

An example is one of four shapes: underdog's own ``{"prompt": str, "completion": str}``; TRL's ``{"text": str}``
(loss on every token); TRL's conversational ``{"messages": [{"role", "content"}, ...]}`` (loss on assistant turns
only, rendered with the tokenizer's chat template or a ChatML fallback); and TRL's conversational prompt/completion
(``prompt`` and ``completion`` are message lists, loss on the completion's assistant turns). Each is turned into
text segments marked trainable or not, every segment is tokenized on its own (as ``lm.score`` does with a
context and its continuation), a BOS is put in front when the tokenizer uses one, and an EOS is always appended
to the completion and trained. Labels are -100 by *position* (never by comparing ids with the pad id, which may
be the EOS). ``pack_examples`` concatenates short examples into rows of ``max_length`` whose ``position_ids``
restart at 0 for every example: given position ids and no 2D attention mask, transformers' ``masking_utils``
(``find_packed_sequence_indices``) builds a block-diagonal causal mask for sdpa, eager and flex attention, and
the flash-attention path reads the same position ids, so no token attends across an example boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from underdog.lm.chat import format_chat

IGNORE_INDEX = -100

_EXPECTED = (
    "expected one of: {'prompt': str, 'completion': str}; {'text': str}; "
    "{'messages': [{'role': str, 'content': str}, ...]}; "
    "or {'prompt': [messages], 'completion': [messages]}"
)

Segments = list[tuple[str, bool]]  # (text, is_completion)


def render_chat(tokenizer: Any, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = False) -> str:
    """Render messages with the tokenizer's chat template, or ChatML when it has none (``underdog.lm.chat``)."""
    return format_chat(tokenizer, [dict(m) for m in messages], add_generation_prompt=add_generation_prompt)


def _check_messages(messages: Any, index: int, field: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"example {index}: '{field}' must be a non-empty list of messages; {_EXPECTED}")
    for j, m in enumerate(messages):
        if not (isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise ValueError(
                f"example {index}: {field}[{j}] must be an object with string 'role' and 'content'; {_EXPECTED}"
            )
    return [dict(m) for m in messages]


def _chat_segments(tokenizer: Any, messages: list[dict], train_from: int, index: int) -> Segments:
    """Split a rendered conversation into text segments; assistant turns at ``train_from`` or later are
    trainable. Each turn's text is the difference between the rendering up to it and the rendering of what
    precedes it with a generation prompt, so the ``<|im_start|>assistant\\n`` header stays in the prompt."""
    segments: Segments = []
    done = ""
    for k, message in enumerate(messages):
        if message["role"] != "assistant" or k < train_from:
            continue
        before = render_chat(tokenizer, messages[:k], add_generation_prompt=True)
        upto = render_chat(tokenizer, messages[: k + 1])
        if not (before.startswith(done) and upto.startswith(before)):
            raise ValueError(
                f"example {index}: the chat template does not render conversations as prefixes of each other, "
                "so assistant turns cannot be located"
            )
        segments += [(before[len(done) :], False), (upto[len(before) :], True)]
        done = upto
    if not segments:
        raise ValueError(f"example {index}: no assistant message to train on; {_EXPECTED}")
    return segments


def example_segments(example: Any, tokenizer: Any, index: int = 0) -> Segments:
    """Normalise one example of any accepted shape into ``[(text, is_completion), ...]``."""
    if not isinstance(example, Mapping):
        raise ValueError(f"example {index}: not an object (got {type(example).__name__}); {_EXPECTED}")
    if "messages" in example:
        return _chat_segments(tokenizer, _check_messages(example["messages"], index, "messages"), 0, index)
    if "prompt" in example and "completion" in example:
        prompt, completion = example["prompt"], example["completion"]
        if isinstance(prompt, str) and isinstance(completion, str):
            return [(prompt, False), (completion, True)]
        if isinstance(prompt, list) and isinstance(completion, list):
            prompt = _check_messages(prompt, index, "prompt")
            completion = _check_messages(completion, index, "completion")
            return _chat_segments(tokenizer, prompt + completion, len(prompt), index)
        raise ValueError(
            f"example {index}: 'prompt' and 'completion' must both be strings or both be message lists; {_EXPECTED}"
        )
    if "text" in example:
        if isinstance(example["text"], str):
            return [(example["text"], True)]
        raise ValueError(f"example {index}: 'text' must be a string; {_EXPECTED}")
    raise ValueError(f"example {index}: unrecognised fields {sorted(map(str, example))}; {_EXPECTED}")


def uses_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts a BOS in front of text by default (Llama does, GPT-2 does not)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def _truncate(ids: list[int], is_completion: list[bool], max_length: int, keep: int) -> tuple[list, list]:
    """Cut from the left of the prompt (after the first ``keep`` tokens, the BOS), then from the right."""
    excess = len(ids) - max_length
    if excess <= 0:
        return ids, is_completion
    first = is_completion.index(True) if True in is_completion else len(ids)
    cut = max(0, min(excess, first - keep))
    ids, is_completion = ids[:keep] + ids[keep + cut :], is_completion[:keep] + is_completion[keep + cut :]
    return ids[:max_length], is_completion[:max_length]


def tokenize_example(
    example: Any,
    tokenizer: Any,
    *,
    index: int = 0,
    max_length: int | None = None,
    completion_only: bool = True,
    add_bos: bool | None = None,
) -> dict[str, list[int]]:
    """Tokenize one example into ``input_ids`` and ``labels`` (-100 where no loss is taken).

    When the example is longer than ``max_length`` the prompt is cut from the left (after the BOS); a
    completion that does not fit even so is cut from the right, and then loses its EOS. The first token
    never carries a label (nothing in its own example predicts it), so a packed row never
    trains one example's last token to predict the next example's first."""
    segments = example_segments(example, tokenizer, index)
    if add_bos is None:
        add_bos = uses_bos(tokenizer)
    ids: list[int] = []
    is_completion: list[bool] = []
    for text, trainable in segments:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        ids += piece
        is_completion += [trainable] * len(piece)
    keep = 0
    if add_bos and (not ids or ids[0] != tokenizer.bos_token_id):
        ids, is_completion, keep = [tokenizer.bos_token_id] + ids, [False] + is_completion, 1
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token; set one before training")
    last_text = segments[-1][0].rstrip()
    if not (tokenizer.eos_token and last_text.endswith(tokenizer.eos_token)):
        ids, is_completion = ids + [eos], is_completion + [True]
    if max_length is not None:
        ids, is_completion = _truncate(ids, is_completion, max_length, keep)
    labels = [t if (c or not completion_only) else IGNORE_INDEX for t, c in zip(ids, is_completion)]
    if labels:
        labels[0] = IGNORE_INDEX
    return {"input_ids": ids, "labels": labels}


def tokenize_examples(
    examples: Sequence[Any], tokenizer: Any, *, max_length: int | None = None, completion_only: bool = True
) -> list[dict[str, list[int]]]:
    """Tokenize every example (see ``tokenize_example``); errors name the example's index."""
    add_bos = uses_bos(tokenizer)
    return [
        tokenize_example(
            ex, tokenizer, index=i, max_length=max_length, completion_only=completion_only, add_bos=add_bos
        )
        for i, ex in enumerate(examples)
    ]


def pack_examples(tokenized: Sequence[Mapping[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Pack tokenized examples into rows of at most ``max_length`` tokens, first fit: each example goes into
    the first of the 64 most recently opened rows that still has room for it, so rows of long examples are
    topped up by later short ones instead of being padded.

    Each row gets ``position_ids`` that restart at 0 for each example; an example longer than ``max_length``
    (not truncated beforehand) gets a row of its own, cut to ``max_length``."""
    rows: list[dict[str, list[int]]] = []
    open_rows: list[dict[str, list[int]]] = []  # rows with room left for a short example
    for ex in tokenized:
        ids, labels = list(ex["input_ids"][:max_length]), list(ex["labels"][:max_length])
        row = next((r for r in open_rows if len(r["input_ids"]) + len(ids) <= max_length), None)
        if row is None:
            row = {"input_ids": [], "labels": [], "position_ids": []}
            rows.append(row)
            open_rows.append(row)
        row["input_ids"] += ids
        row["labels"] += labels
        row["position_ids"] += list(range(len(ids)))
        if len(row["input_ids"]) == max_length:
            open_rows.remove(row)
        elif len(open_rows) > 64:  # bounded search: the oldest row stays as it is
            open_rows.pop(0)
    return rows


def collate(rows: Sequence[Mapping[str, list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad rows into a batch.

    Plain rows get an ``attention_mask``. Packed rows (with ``position_ids``) get none, so transformers
    derives the block-diagonal mask from the position ids; their padding is one more short "example" whose
    positions restart at 0, labelled -100. ``num_tokens`` counts the real (non-padding) tokens."""
    width = max(len(r["input_ids"]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    packed = "position_ids" in rows[0]
    extra = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        input_ids[i, :n] = torch.tensor(r["input_ids"], dtype=torch.long)
        labels[i, :n] = torch.tensor(r["labels"], dtype=torch.long)
        if packed:
            extra[i, :n] = torch.tensor(r["position_ids"], dtype=torch.long)
            extra[i, n:] = torch.arange(width - n)
        else:
            extra[i, :n] = 1
    batch = {"input_ids": input_ids, "labels": labels}
    batch["position_ids" if packed else "attention_mask"] = extra
    batch["num_tokens"] = torch.tensor(sum(len(r["input_ids"]) for r in rows), dtype=torch.long)
    return batch
