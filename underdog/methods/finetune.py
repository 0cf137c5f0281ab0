"""Fine-tuning on a knowledge set's training documents (the ``ft`` and ``ft-lora`` arms of the study).

The documents become training examples in one of three ways (``split_sentences``): ``off`` (one example per
document), ``independent`` (one per sentence) or ``cumulative`` (each sentence is the completion, the earlier
sentences of its document the prompt). Extra statements (augmentations) are added one per example. The
model is then asked the test questions with nothing in context: what it knows is what training put in its
weights. Training uses the one loop in ``underdog.train``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from underdog.config import TrainSettings
from underdog.world.retrieve import split_sentences

if TYPE_CHECKING:
    from underdog.lm.load import LM

__all__ = ["finetune", "split_sentences", "training_examples"]


def training_examples(documents: Sequence[dict], mode: str = "independent",
                      extra_statements: Sequence[str] = ()) -> list[dict]:
    """Training examples (underdog's ``{"text"}`` / ``{"prompt", "completion"}``) from documents + extras."""
    if mode not in ("off", "independent", "cumulative"):
        raise ValueError(f"split_sentences must be off, independent or cumulative, got {mode!r}")
    examples: list[dict] = []
    for doc in documents:
        if mode == "off":
            examples.append({"text": doc["text"]})
            continue
        sentences = split_sentences(doc["text"])
        for k, s in enumerate(sentences):
            if mode == "independent" or k == 0:
                examples.append({"text": s})
            else:
                examples.append({"prompt": " ".join(sentences[:k]), "completion": " " + s})
    examples += [{"text": s} for s in extra_statements]
    return examples


def finetune(model: str | LM, examples: list[dict], settings: TrainSettings, seed: int, device: str = "auto",
             output_dir: str | None = None):
    """Train ``model`` (a name or path, loaded fresh on ``device``, or an LM already loaded, which is trained
    in place) on ``examples``; returns (LM, training summary)."""
    from underdog.lm import load
    from underdog.lm.load import LM
    from underdog.train import TrainConfig, train

    lm = model if isinstance(model, LM) else load(model, device=device)
    model_name = lm.name
    options = {}
    if settings.adapter == "lora":
        options = {"r": settings.lora_r, "alpha": settings.lora_alpha}
    elif settings.adapter == "prompt":
        options = {"num_virtual_tokens": settings.num_virtual_tokens}
    config = TrainConfig(lr=settings.lr, epochs=settings.epochs, max_steps=settings.max_steps,
                         batch_size=settings.batch_size, grad_accum=settings.grad_accum,
                         max_length=min(settings.max_length, lm.max_length), packing=settings.packing,
                         completion_only=settings.completion_only, warmup_ratio=settings.warmup_ratio,
                         weight_decay=settings.weight_decay, seed=seed, adapter=settings.adapter,
                         adapter_options=options, log_every=10, output_dir=output_dir)
    lm.model.train()
    result = train(lm.model, lm.tokenizer, examples, config)
    tuned = LM(result.model.eval(), lm.tokenizer, name=f"{model_name}+{settings.adapter}", path=lm.path,
               info=dict(lm.info))
    summary = {"examples": len(examples), "steps": result.final_step, "tokens": result.tokens_seen,
               "first_loss": result.losses[0] if result.losses else None,
               "final_loss": result.losses[-1] if result.losses else None,
               "seconds": result.wall_time_s, "tokens_per_s": result.tokens_per_s, "adapter": settings.adapter}
    return tuned, summary
