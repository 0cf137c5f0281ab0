"""The model card and stage record of a pretraining run: ``MODEL_CARD.md`` (architecture, tokens, wall time,
device, loss, every stage with its probe, the final probes) written from the run's ``pretrain_summary.json``, and
the stages and probe logs a continued run inherits from its ``init_from`` model (``earlier_record``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from underdog.files import atomic_write_json, atomic_write_text
from underdog.lm.load import ModelLoadError, resolve_model_path
from underdog.pretrain.tokenizer import OPTIONS

if TYPE_CHECKING:
    from underdog.pretrain.recipe import PretrainRecipe


def _stage_entry(recipe: PretrainRecipe, s: dict, command: str) -> dict:
    return {"command": command, "init_from": recipe.init_from, "tokens": s["tokens_seen"], "steps": s["steps"],
            "minutes": round(s["train_seconds"] / 60, 1), "tokens_per_s": round(s["tokens_per_s"]),
            "threads": recipe.threads or None, "lr": recipe.lr, "mix": recipe.mix,
            "choice_loss": recipe.choice_loss,
            "final_loss": round(s["final_loss"], 3), "probe_icl": s["probe_icl"], "icl_context": recipe.icl_context}


def earlier_record(init_from: str | None) -> dict:
    """The ``init_from`` model's recorded stages and probe logs (its own log becomes the last stage's), read when
    a run starts so that the card keeps them even if that folder moves before the run ends."""
    try:
        source = resolve_model_path(init_from) if init_from else None
    except ModelLoadError:  # only a card re-written after its source is gone gets here
        source = None
    if source is None:
        return {"stages": [], "logs": {}}
    summary = source / "pretrain_summary.json"
    stages = json.loads(summary.read_text()).get("stages", []) if summary.is_file() else []
    logs = {log.name: log.read_text() for log in sorted(source.glob("pretrain_log_stage*.jsonl"))}
    if (source / "pretrain_log.jsonl").is_file():
        logs[f"pretrain_log_stage{len(logs) + 1}.jsonl"] = (source / "pretrain_log.jsonl").read_text()
    return {"stages": stages, "logs": logs}


def _stage_rows(stages: list[dict]) -> str:
    rows = []
    for i, st in enumerate(stages, 1):
        probe = st["probe_icl"]
        rows.append(f"| {i} | `{st['command']}` | {st['tokens']:,} | {st['minutes']} | {st['tokens_per_s']:,} | "
                    f"{st['final_loss']:.3f} | " + " / ".join(f"{probe.get(k, float('nan')):.2f}"
                                                              for k in ("forward", "reversal", "syllogism"))
                    + f" ({st.get('icl_context', 'documents')}) |")
    return "\n".join(rows)


def _collapsed_line(pairs: list | None) -> str:
    if pairs is None:
        return "not measured for this stage"
    shown = ", ".join(f"{a!r}/{b!r} {c:.3f}" for a, b, c in pairs[:12])
    return (shown + (f" and {len(pairs) - 12} more" if len(pairs) > 12 else "")) or "none"


def model_card(recipe: PretrainRecipe, s: dict) -> str:
    m = recipe.model
    rows = "\n".join(f"| {k} | {s['probe_icl'][k]:.3f} | {s['probe_none'][k]:.3f} |" for k in s["probe_icl"])
    by_kind = s.get("probe_icl_by_kind")
    kinds = ("\n\nICL accuracy by split and kind of fact: " + ", ".join(f"{k} {v:.2f}" for k, v in by_kind.items())
             if by_kind else "")
    lookup = s.get("lookup")
    lookup_line = ("\n\nLookup probe (`LookupProbe`: the word after \"<Name> are\" in swapped-recall units; chance ~0.15): "
                   + ", ".join(f"{k} {v:.2f}" for k, v in lookup.items()) if lookup else "")
    comparator = s.get("comparator")
    if comparator:
        lookup_line += ("\n\nComparator probe (`ComparatorProbe`: more or less after \"<Name> are\" in one-line "
                        "units, by the name's role and the comparator stated; chance 0.5): "
                        + ", ".join(f"{k} {v:.2f}" for k, v in comparator.items()))
    if s.get("chain"):
        lookup_line += ("\n\nChain probe (`ChainProbe`: the name after \"<Name> are more/less <adj> than\" for a name "
                        "with a neighbour on each side of a comparison chain, lines stated word for word "
                        "(`repeated`) or not (`other`); chance 0.5): full chains "
                        + ", ".join(f"{k} {v:.2f}" for k, v in s["chain"].items()) + "; every pair stated with "
                        "\"more\" " + ", ".join(f"{k} {v:.2f}" for k, v in s["chain_more"].items()))
    if s.get("pairs"):
        lookup_line += ("\n\nPair probe (`PairProbe`: disjoint pairs, each asked as stated (`copied`) or the other way "
                        "round (`swapped`: the subject of the asked name's line), against a name of the same role; "
                        "chance 0.5): comparisons " + ", ".join(f"{k} {v:.2f}" for k, v in s["pairs"].items())
                        + "; families " + ", ".join(f"{k} {v:.2f}" for k, v in s["pairs_family"].items()))
    stages = s["stages"]  # written by write_model_card
    total = sum(st["tokens"] for st in stages)
    return f"""# underdog built-in model{f" `{recipe.install}`" if recipe.install else ""}

A small Llama pretrained by `underdog pretrain` (from scratch, then in the stages below, where a stage may grow
it wider or deeper) on synthetic nonsense-word worlds (pretraining word pool only; evaluation worlds use a disjoint
pool), to read facts in its context and reason over them. It knows no real-world facts and no natural language beyond the world templates.

- Architecture: Llama, hidden {m.hidden}, {m.layers} layers, {m.heads} heads, MLP {m.intermediate},
  context {m.context}, {"tied" if m.tied else "untied"} embeddings; {s['parameters']:,} parameters; byte-level BPE vocabulary {s['vocab']}{_options_note(s.get("tokenizer_options", []))}
- Training: {total:,} tokens in {len(stages)} stage(s), each continuing the previous one's weights
  (`init_from`); last stage AdamW lr {recipe.lr} cosine, seed {recipe.seed}, {recipe.batch_size}x{recipe.seq_len}
  packed tokens a step; final loss {s['final_loss']:.3f}{_interpolate_note(recipe)}
- Device: {s['env']['device']}; last stage {s['train_seconds'] / 60:.1f} min at {s['tokens_per_s']:.0f} tokens/s
- Last stage's mix: {recipe.mix}{f'; world sizes {recipe.world}' if recipe.world else ''}{f'; swap_xor drill {recipe.drill}' if recipe.drill else ''}{_choice_note(recipe)}{'' if recipe.context_loss else '; no loss on contexts (context_loss: false)'}
- Frequent tokens whose embeddings nearly coincide (cosine >= 0.98; the model cannot tell them apart):
  {_collapsed_line(s.get("collapsed_tokens"))}
- Software: {", ".join(f"{k} {v}" for k, v in s['env']['versions'].items())}

## Stages (probe: ICL accuracy at the end of each stage, forward / reversal / syllogism, and the probe's contexts)

| stage | command | tokens | minutes | tokens/s | final loss | probe |
|---|---|---|---|---|---|---|
{_stage_rows(stages)}

## In-context probe of the final model (fresh evaluation-pool world, seed 99001; 4 choices, chance 0.25)

| split | ICL ({recipe.icl_context} context, `tasks.icl`) | no context |
|---|---|---|
{rows}{kinds}{lookup_line}

The emergence curve of the last stage (probe accuracy every {recipe.probe_every} steps) is in
`pretrain_log.jsonl`; earlier stages' logs are `pretrain_log_stage<N>.jsonl`.
"""


def _choice_note(recipe: PretrainRecipe) -> str:
    if not recipe.choice_loss:
        return ""
    return (f"; plus {recipe.choice_loss} x a multiple-choice ranking loss (`pretrain.choice`) on "
            f"{recipe.choice_per_step} questions a step, kind weights {recipe.choice_kinds or 'uniform'}, split "
            f"weights {recipe.choice_splits or 'uniform'}")


def _interpolate_note(recipe: PretrainRecipe) -> str:
    w = recipe.interpolate_init
    return f"; final weights {1 - w:g} x the starting ones + {w:g} x the trained ones (WiSE-FT)" if w else ""


def _options_note(options: list[str]) -> str:
    return f" ({'; '.join(OPTIONS[o] for o in options)})" if options else ""


def write_model_card(final_dir: str | Path, recipe: PretrainRecipe, command: str | None = None,
                     earlier: dict | None = None) -> None:
    """(Re)write MODEL_CARD.md in ``final_dir`` from its ``pretrain_summary.json``, recording the stages
    (``command`` is this stage's command line) and copying earlier stages' probe logs next to it; ``earlier``
    is ``earlier_record(recipe.init_from)`` as read when the run started (read now when not given)."""
    final_dir = Path(final_dir)
    earlier = earlier if earlier is not None else earlier_record(recipe.init_from)
    summary = json.loads((final_dir / "pretrain_summary.json").read_text())
    if command is not None or "stages" not in summary:
        summary["stages"] = earlier["stages"] + [_stage_entry(recipe, summary, command or "underdog pretrain")]
        atomic_write_json(final_dir / "pretrain_summary.json", summary)
    for name, text in earlier["logs"].items():
        atomic_write_text(final_dir / name, text)
    atomic_write_text(final_dir / "MODEL_CARD.md", model_card(recipe, summary))
