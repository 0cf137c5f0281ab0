"""`underdog train`: supervised fine-tuning from the command line, saving a model that loads anywhere.

``underdog train --model builtin --data F.jsonl --adapter lora --out D`` (or ``underdog run recipes/train.yaml``)
trains with the one loop in ``underdog.train`` on JSONL in any shape ``train.data`` reads (prompt/completion,
TRL's ``text``, ``messages`` and conversational prompt/completion), with a LoRA, prompt-tuning or full
adapter, and saves into ``D/final`` a PEFT adapter (or, with ``merge: true``, merged weights), the tokenizer and
a model card (``train.save_model``): ``underdog.lm.load("D/final")`` and plain transformers + PEFT both load
it. The recipe is the training config itself (``config.TrainConfig``: every field is a flag, ``--lr``,
``--epochs``, ``--save-every`` ...) plus where the model, data and output are. The run is one cached stage
(``runs.Run``): a finished run is not retrained, and a killed one resumes from the trainer's last checkpoint
in ``D/checkpoints`` (every ``save_every`` optimizer steps). Under ``accelerate launch`` (see
``configs/accelerate/``) every process runs this module and the main process alone writes the run files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from underdog import UnderdogError
from underdog.config import TrainConfig
from underdog.files import atomic_write_json
from underdog.io import DataError, read_jsonl
from underdog.lm import load
from underdog.lm.load import resolve_model_path, weights_stamp
from underdog.report import write_report
from underdog.runs import Run, metric
from underdog.train import apply_adapter, example_segments, train
from underdog.train.save import final_loss, model_card, save_model

NAME = "train"
STAGE = "train"


class Recipe(TrainConfig):
    """A command-line fine-tune: the training config, plus the base model, the data and the output folder."""

    model: str = "builtin"
    data: str | None = None  # JSONL training file
    out: str = "runs/train"
    merge: bool = False  # save LoRA merged into full weights instead of the adapter
    device: str = "auto"
    dtype: str = "float32"  # weights' dtype while training (bf16: true/auto adds autocast on a GPU)
    adapter: Literal["full", "lora", "prompt"] = "lora"
    lr: float = Field(2e-4, gt=0)
    epochs: float = Field(3.0, gt=0)
    max_length: int = Field(1024, gt=0)
    save_every: int = Field(100, ge=0)
    output_dir: str | None = Field(None, exclude=True)  # refused below: the run folder `out` holds checkpoints

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.output_dir is not None:
            raise ValueError("set out, not output_dir (the run folder holds the checkpoints)")
        if self.merge and self.adapter == "prompt":
            raise ValueError("merge: true needs adapter lora or full (prompt tuning has no weights to merge)")
        return self

    def train_config(self) -> TrainConfig:
        """The training settings alone (the fields this recipe shares with ``TrainConfig``)."""
        return TrainConfig(**self.model_dump(include=set(TrainConfig.model_fields), exclude_unset=False))


def read_examples(path: str, tokenizer) -> list[dict]:
    """The JSONL training examples, each checked to be a shape ``train.data`` reads; errors name file:line."""
    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path}: no training examples")
    with open(path, encoding="utf-8-sig") as f:
        counted = [n for n, line in enumerate(f, start=1) if line.strip()]
    for i, example in enumerate(rows):
        line = example.pop("_line", None) or (counted[i] if i < len(counted) else "?")  # read_jsonl's own count
        try:
            example_segments(example, tokenizer, i)
        except ValueError as e:
            message = str(e).removeprefix(f"example {i}: ")
            raise DataError(f"{path}:{line}: {message}") from None
    return rows


def data_summary(path: str, examples: list[dict]) -> dict:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    shapes = Counter("messages" if "messages" in ex else "text" if "text" in ex
                     else "conversational prompt/completion" if isinstance(ex.get("prompt"), list)
                     else "prompt/completion" for ex in examples)
    return {"file": str(Path(path).resolve()), "sha256": digest, "examples": len(examples),
            "formats": ", ".join(f"{k} ({v})" for k, v in shapes.most_common())}


def _guard_checkpoints(out: Path, key: dict, log: Callable[[str], None]) -> None:
    """Checkpoints of a run with other settings (or data) must not be resumed: drop them."""
    marker = out / "checkpoints" / "settings.json"
    if (out / "checkpoints").is_dir() and (not marker.is_file() or json.loads(marker.read_text()) != key):
        log(f"{out / 'checkpoints'}: made with other settings or data; training from the start")
        shutil.rmtree(out / "checkpoints")
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, key)


def unsharded(recipe: Recipe, settings: TrainConfig, state_dict: dict, tokenizer):
    """Under FSDP the trained model stays sharded: the base model with the same adapter, on the CPU, carrying
    the gathered full ``state_dict``."""
    options = settings.adapter_kwargs()
    if options.get("init_text"):
        options["tokenizer"] = tokenizer
    model = apply_adapter(load(recipe.model, dtype=recipe.dtype, device="cpu").model, settings.adapter, **options)
    model.load_state_dict(state_dict)
    return model.eval()


def run(recipe: Recipe, log: Callable[[str], None] = print) -> dict:
    """Fine-tune, save ``out/final`` and write ``results.json``; returns the results (on every process)."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    if not recipe.data:
        raise UnderdogError("no training data: give --data FILE.jsonl (prompt/completion, text or messages)")
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # as the trainer's Accelerator reads it
    main = state.is_main_process
    base_path = resolve_model_path(recipe.model)
    lm = load(recipe.model, dtype=recipe.dtype, device="cpu" if state.num_processes > 1 else recipe.device)
    examples = read_examples(recipe.data, lm.tokenizer)
    data = data_summary(recipe.data, examples)
    settings = recipe.train_config()
    if settings.max_length > lm.max_length:
        settings = settings.model_copy(update={"max_length": lm.max_length})  # the model's window
    run_ = Run(recipe.out, recipe.model_dump() if main else None, log=log if main else (lambda _: None), lock=main)
    train_key = {"model": str(base_path.resolve()), "weights": weights_stamp(recipe.model), "data": data["sha256"],
                 "train": settings.stage_key(), "processes": state.num_processes}
    key = {**train_key, "merge": recipe.merge}

    def fit(tmp: Path | None) -> dict:
        if main:
            _guard_checkpoints(run_.dir, train_key, log)
        state.wait_for_everyone()
        config = settings.model_copy(update={"output_dir": str(run_.dir)})
        result = train(lm.model, lm.tokenizer, examples, config, resume=True)
        summary = {"steps": result.final_step, "tokens": result.tokens_seen, "tokens_per_s": result.tokens_per_s,
                   "seconds": result.wall_time_s, "losses": result.losses}
        if main:
            card = model_card(base_model=recipe.model, base_path=base_path, adapter=recipe.adapter,
                              merged=recipe.merge, data=data, training=summary,
                              settings=settings.model_dump(exclude={"output_dir", "log_every"}))
            model = result.model if result.state_dict is None else unsharded(recipe, settings, result.state_dict,
                                                                               lm.tokenizer)
            save_model(model, lm.tokenizer, run_.dir / "final", base_model=recipe.model, merge=recipe.merge, card=card)
        state.wait_for_everyone()
        return summary

    done = run_.is_done(STAGE, key)  # every process reads it before the main one can change it
    state.wait_for_everyone()
    if main:
        training = run_.stage(STAGE, key, fit)
    else:  # the other processes train alongside the main one, which alone writes the stage
        training = json.loads((run_.stage_dir(STAGE) / "result.json").read_text())["result"] if done else fit(None)
    state.wait_for_everyone()
    final = run_.dir / "final"
    losses = training["losses"]
    metrics = {"final_loss": metric(final_loss(losses)), "first_loss": metric(losses[0] if losses else float("nan")),
               "tokens_per_s": metric(training["tokens_per_s"]), "steps": metric(training["steps"])}
    results = {"method": NAME, "metrics": metrics, "training": training, "saved": str(final), "data": data}
    if main:
        results = run_.write_results(NAME, recipe.model, str(recipe.data), metrics,
                                     extra={"training": training, "saved": str(final), "data": data})
        log(f"trained {training['steps']} steps, final loss {metrics['final_loss']['value']:.4f}, "
            f"{training['tokens_per_s']:.0f} tokens/s -> {final}")
        write_report(run_.dir)
    state.wait_for_everyone()
    return results
