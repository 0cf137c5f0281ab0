"""Fine-tuning on a knowledge set's training documents (the ``ft`` and ``ft-lora`` arms of the study).

The documents become training examples in one of three ways (``split_sentences``): ``off`` (one example per
document), ``independent`` (one per sentence) or ``cumulative`` (each sentence is the completion, the earlier
sentences of its document the prompt). Extra statements (augmentations) are added one per example. The
model is then asked the test questions with nothing in context: what it knows is what training put in its
weights. Training uses the one loop in ``underdog.train``. Inside a run's stage, ``finetune`` keeps trainer
checkpoints in the stage's checkpoint folder (``runs.stage_checkpoint_dir``) every ``save_every`` steps (when
unset, about a tenth of the run, at least ``MIN_CHECKPOINT_STEPS`` apart; only the latest is kept) and resumes
from the latest, so a killed fine-tuning restarts where it stopped, with the same final weights, not from
step 0.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from underdog.config import TrainConfig
from underdog.lm import load
from underdog.lm.load import LM
from underdog.runs import stage_checkpoint_dir
from underdog.train import train
from underdog.train.trainer import _DATA_ORDER_FIELDS, STATE_FILE, latest_checkpoint
from underdog.world.retrieve import split_sentences

if TYPE_CHECKING:
    from underdog.lm.load import LM

__all__ = ["finetune", "split_sentences", "training_examples"]
MIN_CHECKPOINT_STEPS = 20


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


def finetune(model: str | LM, examples: list[dict], settings: TrainConfig, seed: int, device: str = "auto",
             output_dir: str | None = None):
    """Train ``model`` (a name or path, loaded fresh on ``device``, or an LM already loaded, which is trained
    in place) on ``examples``; returns (LM, training summary)."""

    lm = model if isinstance(model, LM) else load(model, device=device)
    model_name = lm.name
    checkpoints = stage_checkpoint_dir() if output_dir is None else None
    update = {"max_length": min(settings.max_length, lm.max_length), "seed": seed,
              "output_dir": output_dir or (str(checkpoints) if checkpoints else None)}
    if checkpoints is not None and not settings.save_every:
        update["save_every"] = checkpoint_every(settings, len(examples))
    config = settings.model_copy(update=update)
    resume = checkpoints is not None and _resumable(checkpoints, config)
    lm.model.train()
    result = train(lm.model, lm.tokenizer, examples, config, resume=resume,
                   callback=_keep_latest(checkpoints) if checkpoints is not None else None)
    tuned = LM(result.model.eval(), lm.tokenizer, name=f"{model_name}+{settings.adapter}", path=lm.path,
               info=dict(lm.info))
    summary = {"examples": len(examples), "steps": result.final_step, "tokens": result.tokens_seen,
               "first_loss": result.losses[0] if result.losses else None,
               "final_loss": result.losses[-1] if result.losses else None,
               "seconds": result.wall_time_s, "tokens_per_s": result.tokens_per_s, "adapter": settings.adapter}
    return tuned, summary


def checkpoint_every(settings: TrainConfig, n_examples: int) -> int:
    """Optimizer steps between checkpoints: about a tenth of the (estimated) run, at least
    ``MIN_CHECKPOINT_STEPS``."""
    per_epoch = math.ceil(math.ceil(max(n_examples, 1) / settings.batch_size) / settings.grad_accum)
    steps = settings.max_steps or max(1, math.ceil(settings.epochs * per_epoch))
    return max(MIN_CHECKPOINT_STEPS, math.ceil(steps / 10))


def _keep_latest(folder: Path):
    """A training callback that deletes every checkpoint but the latest complete one (a re-run needs no
    other), so that a stage's checkpoints take the room of one."""

    def callback(info: dict) -> None:
        latest = latest_checkpoint(folder)
        if latest is None:
            return
        for old in (folder / "checkpoints").glob("step_*"):
            if old != latest and old.name[5:].isdigit() and int(old.name[5:]) < int(latest.name[5:]):
                shutil.rmtree(old, ignore_errors=True)

    return callback


def _resumable(folder: Path, config: TrainConfig) -> bool:
    """Whether ``folder`` holds a checkpoint this config can resume; a stale or incompatible one is removed
    (the stage's inputs fix the data, so this only happens when the code changed between runs)."""

    checkpoint = latest_checkpoint(folder)
    if checkpoint is None:
        return False
    try:
        saved = json.loads((checkpoint / STATE_FILE).read_text()).get("config", {})
    except (OSError, ValueError):
        saved = None
    if saved is None or any(saved.get(f) != getattr(config, f) for f in _DATA_ORDER_FIELDS):
        shutil.rmtree(folder, ignore_errors=True)
        return False
    return True
