"""Training FLOPs per token and model FLOPs utilisation (MFU), as nanoGPT and PaLM (Chowdhery et al. 2022,
appendix B) count them.

A token costs ``2 N`` FLOPs forward and ``4 N`` backward for the ``N`` weights of the model's matrix products
(every linear layer, the output head included; the input embedding is a lookup and norms are negligible), plus
``12 L d T`` for attention's two matrix products over a context of ``T`` (``L`` layers of width ``d``). A
frozen weight (LoRA, prompt tuning) needs no weight gradient, so it counts ``4`` instead of ``6`` per token:
MFU then measures the work the step really does. ``mfu`` divides achieved FLOP/s by the device's dense bf16
peak from its data sheet (``peak_flops``), the convention that makes MFU comparable across papers; an unknown
device (a CPU, or a card missing from the table) has no MFU, only FLOP/s.
"""

from __future__ import annotations

from typing import Any

import torch

# dense bf16 tensor-core peak, FLOP/s, from the vendors' data sheets (no sparsity); longest name match wins
PEAK_BF16 = {
    "H200": 989e12, "H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 989e12,
    "GH200": 989e12, "B200": 2250e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12, "L40": 181e12,
    "L4": 121e12, "A10G": 70e12, "A10": 125e12, "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12,
    "T4": 65e12, "MI300X": 1307e12, "MI250X": 383e12,
}


def matmul_params(model: Any) -> tuple[int, int]:
    """``(all, trainable)`` weights of the model's ``nn.Linear`` layers (and GPT-2's ``Conv1D``, a linear layer
    with its weight transposed), shared tensors counted once."""
    from transformers.pytorch_utils import Conv1D

    seen: dict[int, tuple[int, bool]] = {}
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, Conv1D)):
            w = module.weight
            seen.setdefault(id(w), (w.numel(), w.requires_grad))
    return sum(n for n, _ in seen.values()), sum(n for n, grad in seen.values() if grad)


def _shape(model: Any) -> tuple[int, int]:
    """``(layers, width)`` from a transformers config (Llama-style or GPT-2-style names)."""
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0)
    return int(layers), int(hidden)


def flops_per_token(model: Any, context: int) -> float:
    """Training FLOPs for one token in a sequence of ``context`` tokens (see the module docstring)."""
    n, trainable = matmul_params(model)
    layers, hidden = _shape(model)
    return 4.0 * n + 2.0 * trainable + 12.0 * layers * hidden * context


def peak_flops(device: torch.device | str) -> float | None:
    """The dense bf16 peak of a CUDA device from ``PEAK_BF16``, or None (CPU, MPS, an unknown card)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    matches = [key for key in PEAK_BF16 if key in name]
    return PEAK_BF16[max(matches, key=len)] if matches else None


def mfu(tokens_per_s: float, per_token: float, peak: float | None) -> float | None:
    """Achieved FLOP/s over the peak; None when the peak is unknown."""
    return tokens_per_s * per_token / peak if peak else None
