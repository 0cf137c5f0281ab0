"""The model layer: load any HF causal LM (or the built-in one), score continuations, generate, format chats."""

from underdog.lm.chat import format_chat
from underdog.lm.load import LM, ModelLoadError, load
from underdog.lm.score import Score, encode_pair, score

__all__ = ["LM", "ModelLoadError", "Score", "encode_pair", "format_chat", "load", "score"]
