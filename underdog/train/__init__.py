"""Training: one masked-loss training loop on accelerate, and PEFT adapters.

``train(model, tokenizer, examples, TrainConfig(...))`` is the loop (``trainer.py``); ``data.py`` turns
prompt/completion, text and chat examples into labelled, optionally packed token rows; ``adapters.py`` puts a
LoRA or prompt-tuning adapter on a model, and saves and loads what was trained as safetensors; ``save.py`` saves
a trained model for use elsewhere (``save_model``: adapter or merged weights, tokenizer, model card).
"""

from underdog.train.adapters import apply_adapter, load_adapter, save_trained, trainable_parameters
from underdog.train.data import (
    IGNORE_INDEX,
    collate,
    example_segments,
    pack_examples,
    render_chat,
    tokenize_example,
    tokenize_examples,
)
from underdog.train.save import model_card, save_model
from underdog.train.trainer import TrainConfig, TrainResult, latest_checkpoint, lr_at, train

__all__ = [
    "IGNORE_INDEX",
    "TrainConfig",
    "TrainResult",
    "apply_adapter",
    "collate",
    "example_segments",
    "latest_checkpoint",
    "load_adapter",
    "lr_at",
    "model_card",
    "pack_examples",
    "render_chat",
    "save_model",
    "save_trained",
    "tokenize_example",
    "tokenize_examples",
    "train",
    "trainable_parameters",
]
