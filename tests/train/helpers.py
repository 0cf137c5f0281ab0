"""The training case shared by the DDP script (run under ``accelerate launch``) and its single-process twin."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))  # the repo root: the DDP script runs outside pytest

from tests.tiny_models import build_model, make_tokenizer, varied_examples  # noqa: E402


def ddp_case():
    """The model, data and config shared by the DDP script and the single-process reference."""
    tokenizer = make_tokenizer()
    model = build_model("llama", tokenizer, seed=1)
    config = {"lr": 3e-3, "max_steps": 4, "grad_accum": 1, "seed": 3, "max_length": 64, "log_every": 1,
              "max_grad_norm": 1.0, "weight_decay": 0.01, "warmup_ratio": 0.25}
    return model, tokenizer, varied_examples(8), config
