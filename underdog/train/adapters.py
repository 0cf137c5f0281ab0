"""Adapters: what part of a causal LM is trained, and how the trained part is saved and loaded again.

``apply_adapter(model, "full" | "lora" | "prompt", **opts)`` returns the model to train: the model itself with
every weight trainable, or a PEFT model with LoRA matrices (``r``, ``alpha``, ``dropout``, ``target_modules``
defaulting to ``"all-linear"``) or soft prompt tokens (``num_virtual_tokens``, and ``init_text`` with a
``tokenizer`` to start the prompt from real token embeddings, done here rather than by PEFT so that nothing is
fetched by name). ``save_trained`` writes safetensors only (just the adapter for a PEFT model) into a temporary
folder that is renamed into place, and ``load_adapter`` puts a saved adapter back on a base model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, PromptTuningConfig, get_peft_model

ADAPTER_KINDS = ("full", "lora", "prompt")
_OPTIONS = {
    "full": set(),
    "lora": {"r", "alpha", "dropout", "target_modules"},
    "prompt": {"num_virtual_tokens", "init_text", "tokenizer"},
}


def is_peft(model: Any) -> bool:
    return isinstance(model, PeftModel)


def is_prompt_learning(model: Any) -> bool:
    """True for PEFT prompt tuning (virtual tokens are prepended, so position ids cannot be passed)."""
    return is_peft(model) and model.active_peft_config.is_prompt_learning


def apply_adapter(model: Any, kind: str = "full", **opts: Any) -> Any:
    """Return the model to train for adapter ``kind``; unknown kinds or options raise ``ValueError``."""
    if kind not in ADAPTER_KINDS:
        raise ValueError(f"unknown adapter kind {kind!r}; expected one of {ADAPTER_KINDS}")
    unknown = set(opts) - _OPTIONS[kind]
    if unknown:
        raise ValueError(f"unknown options for adapter {kind!r}: {sorted(unknown)}; allowed: {sorted(_OPTIONS[kind])}")
    if is_peft(model):
        raise ValueError("the model already carries a PEFT adapter; pass the base model")
    if kind == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if kind == "lora":
        config = LoraConfig(
            task_type="CAUSAL_LM",
            r=int(opts.get("r", 8)),
            lora_alpha=float(opts.get("alpha", 16)),
            lora_dropout=float(opts.get("dropout", 0.0)),
            target_modules=opts.get("target_modules", "all-linear"),
            bias="none",
        )
        return get_peft_model(model, config)
    n_virtual = int(opts.get("num_virtual_tokens", 8))
    peft_model = get_peft_model(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n_virtual))
    init_text = opts.get("init_text")
    if init_text:
        tokenizer = opts.get("tokenizer")
        if tokenizer is None:
            raise ValueError("adapter 'prompt' with init_text needs tokenizer=...")
        ids = tokenizer(init_text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError("init_text tokenizes to nothing")
        ids = (ids * (n_virtual // len(ids) + 1))[:n_virtual]
        embed = model.get_input_embeddings()
        with torch.no_grad():
            init = embed(torch.tensor(ids, device=embed.weight.device))
            peft_model.prompt_encoder[peft_model.active_adapter].embedding.weight.copy_(init)
    return peft_model


def trainable_parameters(model: Any) -> dict[str, torch.Tensor]:
    """The parameters that will be trained, by name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def save_trained(model: Any, out_dir: str | os.PathLike, tokenizer: Any = None,
                 state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Save the trained model (only the adapter for a PEFT model) as safetensors, atomically; ``state_dict``
    (the full one gathered from a sharded model) replaces the model's own."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".tmp_{out_dir.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    extra = {} if state_dict is None else {"state_dict": state_dict}
    model.save_pretrained(tmp, safe_serialization=True, **extra)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def load_adapter(model: Any, adapter_dir: str | os.PathLike, *, trainable: bool = False) -> Any:
    """Put the adapter saved in ``adapter_dir`` (by ``save_trained``) on base ``model``."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ValueError(f"{adapter_dir} holds no adapter (adapter_config.json missing)")
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ValueError(f"{adapter_dir} holds no adapter_model.safetensors")
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
