"""Saving a trained model for use outside underdog: a PEFT adapter or full weights, the tokenizer, a model card.

``save_model(model, tokenizer, out_dir, base_model=..., merge=False, card=...)`` writes, with ``save_pretrained``
and safetensors only, what ``underdog.lm.load(out_dir)`` and plain ``transformers`` + ``peft`` both load: for a
PEFT model its adapter (``adapter_config.json`` naming the base model's real directory, so a built-in name like
``builtin`` is resolved to its asset folder) or, with ``merge=True``, the LoRA merged into full weights; for a
fully trained model its weights. The tokenizer goes alongside and the card (``model_card(...)``) into
``README.md``. Everything is written into a temporary folder renamed into place, so a killed save never leaves a
half model that looks complete. ``underdog train`` and the studies' ``save_model: true`` both come here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from underdog import UnderdogError
from underdog.lm.load import resolve_model_path
from underdog.train.adapters import is_peft, is_prompt_learning


def save_model(model: Any, tokenizer: Any, out_dir: str | os.PathLike, *, base_model: str | os.PathLike,
               merge: bool = False, card: str | None = None) -> Path:
    """Save ``model`` (a PEFT model or a plain one) so that it loads anywhere; returns ``out_dir``.

    ``base_model`` is what the model was loaded from (a directory or a built-in name). ``merge=True`` folds a
    LoRA adapter into the base weights (in place: ``model``'s base then carries the merged weights) and saves
    a plain model; prompt tuning has no weights to merge into and is refused."""
    out_dir = Path(out_dir)
    base = resolve_model_path(base_model).resolve()
    if merge and is_prompt_learning(model):
        raise UnderdogError("merge: true needs a LoRA (or full) fine-tune; a prompt-tuning adapter cannot be merged")
    tmp = out_dir.with_name(f".tmp_{out_dir.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if is_peft(model) and merge:
            model = model.merge_and_unload()
        model.save_pretrained(tmp, safe_serialization=True)
        config_path = tmp / "adapter_config.json"
        if config_path.is_file():
            config = json.loads(config_path.read_text())
            config["base_model_name_or_path"] = str(base)
            config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        elif (tmp / "config.json").is_file():  # a full model: its config names no temp folder
            config = json.loads((tmp / "config.json").read_text())
            config.pop("_name_or_path", None)
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if card is not None:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def final_loss(losses: Sequence[float]) -> float:
    """The loss a run ended at: the mean over its last 5% of optimizer steps (one step's batch is noisy)."""
    if not losses:
        return float("nan")
    tail = losses[-max(1, len(losses) // 20):]
    return sum(tail) / len(tail)


def _cell(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else "-" if value is None else str(value)


def _table(rows: Mapping[str, Any]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows.items())]


def model_card(*, base_model: str, base_path: str | os.PathLike, adapter: str, merged: bool,
               data: Mapping[str, Any], settings: Mapping[str, Any], training: Mapping[str, Any],
               title: str = "Fine-tuned with underdog") -> str:
    """A Markdown model card: what was trained from what, on which data, with which settings, and how it went
    (``training``: ``steps``, ``tokens``, ``tokens_per_s``, ``seconds``, ``losses``)."""
    losses: Sequence[float] = training.get("losses") or []
    kind = "merged full weights" if merged else ("full weights" if adapter == "full" else f"a PEFT {adapter} adapter")
    lines = [
        "---", "library_name: " + ("transformers" if merged or adapter == "full" else "peft"),
        f"base_model: {Path(base_path).resolve()}", "tags: [underdog, sft]", "---", "",
        f"# {title}", "",
        f"Supervised fine-tuning of `{base_model}` (`{Path(base_path).resolve()}`); this folder holds {kind}.", "",
        "## Load", "", "```python", "import underdog.lm", "lm = underdog.lm.load(\"<this folder>\")", "```", "",
    ]
    if not (merged or adapter == "full"):
        lines += ["or with transformers + PEFT:", "", "```python", "from peft import AutoPeftModelForCausalLM",
                  "model = AutoPeftModelForCausalLM.from_pretrained(\"<this folder>\")", "```", ""]
    lines += ["## Data", "", *_table(data), "", "## Settings", "", *_table(settings), "", "## Training", ""]
    summary = {"optimizer steps": training.get("steps"), "tokens seen": training.get("tokens"),
               "tokens/s": f"{training.get('tokens_per_s', 0):.0f}", "wall time (s)": f"{training.get('seconds', 0):.1f}",
               "first loss": f"{losses[0]:.4f}" if losses else "-",
               "final loss (mean of the last 5% of steps)": f"{final_loss(losses):.4f}" if losses else "-"}
    lines += [*_table(summary), ""]
    if losses:
        every = max(1, len(losses) // 10)
        shown = [(i + 1, losses[i]) for i in range(0, len(losses), every)]
        if shown[-1][0] != len(losses):
            shown.append((len(losses), losses[-1]))
        lines += ["Loss by optimizer step (mean token cross-entropy of the step's batch):", "",
                  "| step | loss |", "|---|---|", *(f"| {s} | {v:.4f} |" for s, v in shown), ""]
    return "\n".join(lines)


def keep_model(source: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Copy a saved model folder (a stage's ``model/``) to ``out_dir`` (a study's ``<out>/model``), atomically:
    the study's best adapted model, kept where a user finds it and loadable as ``underdog.lm.load(out_dir)``."""
    source, out_dir = Path(source), Path(out_dir)
    if not source.is_dir():
        raise UnderdogError(f"no saved model at {source} (was the stage run with save_model: true?)")
    tmp = out_dir.with_name(f".tmp_{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def stage_model_card(base_model: str, adapter: str, study: str, arm: str, settings: Mapping[str, Any],
                     training: Mapping[str, Any]) -> str:
    """The card of a model a study trained in one of its stages (``save_model: true``)."""
    base_path = resolve_model_path(base_model)
    return model_card(base_model=base_model, base_path=base_path, adapter=adapter, merged=False,
                      data={"study": study, "arm": arm}, settings=settings, training=training,
                      title=f"{study}: the {arm} model (underdog)")
