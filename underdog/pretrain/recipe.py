"""`underdog pretrain`: build the built-in base model from scratch, offline, on a CPU.

setup: a tokenizer trained on pretraining-pool world text and a small Llama config. train: the one training loop
(``underdog.train``) on a packed mix of documents, in-context episodes, rewrite episodes, copy exercises and short
QA from many pretraining-pool worlds (``underdog.world.episodes``), full-sequence loss, checkpointed and
resumable. evaluate: the ICL probe on a fresh evaluation-pool world, the lookup probe (copied vs swapped slot
recall), the comparator probe (more/less by the name's role and the comparator stated), the chain probes (the name
the comparator picks after "than") and the pair probes (the plain reversed lookup) every ``probe_every`` steps
(the log is the emergence curve), then a larger final probe; the model, tokenizer, log and a MODEL_CARD.md go to
the run dir (``pretrain.card`` writes the card) and, with ``install``, to ``underdog/assets/<install>/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from underdog.config import Strict
from underdog.files import atomic_write_json
from underdog.lm.load import ASSETS, LM, resolve_model_path, tokenizer_dir
from underdog.pretrain.card import earlier_record, write_model_card
from underdog.pretrain.tokenizer import OPTIONS
from underdog.runs import Run, environment
from underdog.tasks.icl import default_budget
from underdog.train import TrainConfig, save_trained, train
from underdog.world import DEFAULT_SIZES
from underdog.world.drills import context_and_answers, swap_xor_settings
from underdog.world.episodes import CONTEXT_KINDS, pretraining_texts


class ModelShape(Strict):
    hidden: int = Field(64, gt=0)
    layers: int = Field(4, gt=0)
    heads: int = Field(4, gt=0)
    intermediate: int = Field(176, gt=0)
    context: int = Field(1024, gt=0)
    # False gives the output layer its own weights; a stage continuing a tied model starts them as a copy of
    # the input embeddings (same function), so the two can then move apart
    tied: bool = True


class PretrainRecipe(Strict):
    out: str = "runs/pretrain-builtin"
    install: str | None = None  # e.g. "builtin": copy the final model to underdog/assets/builtin
    seed: int = 0
    vocab_size: int = Field(1024, gt=256)
    # cut non-English words into syllables before BPE (pretrain.tokenizer.train_tokenizer); wants a vocabulary
    # of ~6k so that most syllables are whole tokens (recipes/pretrain-diag-scratch-syllables.yaml measures it)
    syllables: bool = False
    # one token form per word: lines start with a space, capitals become "^ " + lower case (line_space_normalizer)
    caseless: bool = False
    # every line starts with a space, so a word at a line's start takes its in-line tokens; the one option that
    # a continued run (init_from, tokenizer_from) can add to the tokenizer it inherits (with_line_space)
    line_space: bool = False
    model: ModelShape = ModelShape()
    tokens: int = Field(30_000_000, gt=0)  # training tokens (approximate, packed)
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(16, gt=0)
    seq_len: int = Field(1024, gt=0)
    warmup_ratio: float = 0.02
    weight_decay: float = 0.01
    threads: int = Field(0, ge=0)  # torch threads; 0 = torch's default
    data_workers: int = Field(0, ge=0)  # processes building the mix's worlds; 0 = one per CPU core
    probe_every: int = Field(200, gt=0)
    probe_per_split: int = Field(40, gt=0)
    final_probe_per_split: int = Field(200, gt=0)
    save_every: int = Field(200, gt=0)
    icl_budget: int = Field(768, gt=0)  # tokens of documents + question in the probe's ICL prompts
    icl_context: Literal["retrieved", "documents"] = "retrieved"  # the probe's ICL prompts (tasks.icl)
    mix: dict[str, float] | None = None  # passed to world.episodes.pretraining_texts
    # False: no loss on the contexts of episodes and drills (world.drills.context_and_answers), only on the
    # lines that answer them; each unit then trains as its own packed example
    context_loss: bool = True
    # overrides of the pretraining worlds' sizes (world.DEFAULT_SIZES), e.g. {p_more: 0.75}
    world: dict[str, float] = {}
    # knobs of the swap_xor drill (world.drills.swap_xor_settings), e.g. {p_more: 0.5, lines: [1, 3]}
    drill: dict[str, Any] = {}
    init_from: str | None = None  # continue from a finished model dir (same tokenizer), e.g. a longer schedule
    tokenizer_from: str | None = None  # a fresh model with an existing model dir's tokenizer (e.g. "builtin")
    # groups of single tokens whose collapsed embeddings are re-drawn apart before an init_from stage trains
    # (pretrain.grow.separate_embeddings), e.g. [[" more", " less"]]
    separate_tokens: list[list[str]] = []
    separate_scale: float = Field(0.5, gt=0)  # their new spread around the group mean, in embedding-matrix stds
    # a multiple-choice ranking loss beside the token loss (pretrain.choice), times this weight; 0 = off
    choice_loss: float = Field(0.0, ge=0)
    choice_per_step: int = Field(8, gt=0)  # questions a step, each in the evaluation's retrieved-context prompt
    choice_worlds: int = Field(400, gt=0)  # pretraining-pool worlds they come from, per_world questions each
    choice_per_world: int = Field(24, gt=0)
    choice_kinds: dict[str, float] = {}  # relative weights of the kinds of fact drawn, e.g. {comparison: 4}
    choice_splits: dict[str, float] = {}  # and of the splits, e.g. {reversal: 2}
    # WiSE-FT: the final weights are (1 - w) x the starting ones (init_from grown to this shape, before the
    # noise) + w x the trained ones (pretrain.grow.interpolate_state_dicts); null: the trained ones
    interpolate_init: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _init_options_need_init(self) -> PretrainRecipe:
        if self.separate_tokens and not self.init_from:
            raise ValueError("separate_tokens re-draws a trained model's embeddings: it needs init_from")
        if self.interpolate_init and not self.init_from:
            raise ValueError("interpolate_init interpolates with the starting weights: it needs init_from")
        return self

    @model_validator(mode="after")
    def _options_fit_the_tokenizer(self) -> PretrainRecipe:
        inherited = [o for o in ("syllables", "caseless") if getattr(self, o)]
        if inherited and (self.init_from or self.tokenizer_from):
            raise ValueError(f"{' and '.join(inherited)} train a new tokenizer, but init_from/tokenizer_from "
                             "reuse the source model's: drop them (only line_space can be added to it)")
        return self

    @model_validator(mode="after")
    def _drill_checked(self) -> PretrainRecipe:
        swap_xor_settings(self.drill)
        return self

    @model_validator(mode="after")
    def _choice_weights_known(self) -> PretrainRecipe:
        from underdog.pretrain.choice import check_weights

        check_weights(self.choice_kinds, self.choice_splits)
        return self

    @model_validator(mode="after")
    def _world_keys_known(self) -> PretrainRecipe:
        unknown = sorted(set(self.world) - set(DEFAULT_SIZES))
        if unknown:
            raise ValueError(f"unknown world key(s) {unknown}; allowed: {sorted(DEFAULT_SIZES)}")
        return self


def _examples(texts: list[tuple[str, str]], context_loss: bool) -> list[dict]:
    """Training examples of (kind, text) pretraining texts: whole texts, or without ``context_loss`` each unit
    of a context kind as a prompt (its context, no loss) and a completion (the lines answering it)."""

    if context_loss:
        return [{"text": t} for _, t in texts]
    examples: list[dict] = []
    for kind, text in texts:
        if kind in CONTEXT_KINDS:
            examples += [{"prompt": c, "completion": a} for c, a in context_and_answers(text) if a.strip()]
        elif text.strip():
            examples.append({"text": text})
    return examples


def _texts(seed: int, n: int, recipe: PretrainRecipe, labelled: bool = False) -> list:
    return pretraining_texts(seed, n, recipe.mix, workers=recipe.data_workers or os.cpu_count() or 1,
                             world_sizes=recipe.world, drill=recipe.drill, labelled=labelled)


def build_model(recipe: PretrainRecipe, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    m = recipe.model
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=m.hidden, intermediate_size=m.intermediate,
                      num_hidden_layers=m.layers, num_attention_heads=m.heads, num_key_value_heads=m.heads,
                      max_position_embeddings=m.context, tie_word_embeddings=m.tied, rope_theta=10000.0,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, initializer_range=0.02)
    torch.manual_seed(recipe.seed)
    return LlamaForCausalLM(cfg)


def token_groups(tokenizer, groups: list[list[str]]) -> list[list[int]]:
    """Token ids of ``separate_tokens``; every string must be exactly one token."""
    out = []
    for group in groups:
        ids = [tokenizer.encode(t, add_special_tokens=False) for t in group]
        bad = [t for t, i in zip(group, ids) if len(i) != 1]
        if bad or len(group) < 2:
            raise ValueError(f"separate_tokens: each group needs two or more single tokens; {bad or group} "
                             "is not")
        out.append([i[0] for i in ids])
    return out


def _grown_init(recipe: PretrainRecipe, config: dict) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``init_from``'s weights grown to ``config``'s shape computing the same function (``pretrain.grow``), and
    what was grown; a tied source gets an output layer of its own for an untied recipe."""
    from safetensors.torch import load_file

    from underdog.pretrain.grow import deepen_state_dict, widen_factor, widen_state_dict

    source = resolve_model_path(recipe.init_from)  # a folder, or a built-in model's name
    state = load_file(source / "model.safetensors")
    source_config = json.loads((source / "config.json").read_text())
    grown, factor = [], widen_factor(source_config, config)
    if factor > 1:
        state = widen_state_dict(state, factor)
        grown.append(f"{factor}x wider")
    if config["num_hidden_layers"] != source_config["num_hidden_layers"]:
        state = deepen_state_dict(state, config["num_hidden_layers"])
        grown.append(f"{source_config['num_hidden_layers']} -> {config['num_hidden_layers']} layers")
    if "lm_head.weight" in state and recipe.model.tied:
        raise ValueError(f"init_from {recipe.init_from} has untied embeddings: set model.tied: false")
    if not recipe.model.tied and "lm_head.weight" not in state:
        state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    return state, grown


def _load_init(model, recipe: PretrainRecipe, log, separate: list[list[int]]) -> dict[str, torch.Tensor]:
    """Load ``init_from`` into ``model`` and return its weights as loaded (before the noise): a narrower or
    shallower source model is grown first, and ``separate_tokens`` are re-drawn apart (``pretrain.grow``)."""
    from underdog.pretrain.grow import perturb, separate_embeddings

    state, grown = _grown_init(recipe, model.config.to_dict())
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:  # a tied model's output is its input
        raise ValueError(f"init_from {recipe.init_from}: weights do not match the recipe's model shape")
    if grown:
        perturb(model, seed=recipe.seed)
        log(f"grown {' and '.join(grown)} from {recipe.init_from} (same function, then a little noise)")
    else:
        log(f"continuing from {recipe.init_from}")
    if separate:
        separate_embeddings(model, separate, scale=recipe.separate_scale, seed=recipe.seed)
        log(f"re-drew the embeddings of {recipe.separate_tokens} apart")
    return state


def _interpolate_with_init(model, start: dict[str, torch.Tensor], weight: float, log) -> None:
    """WiSE-FT: ``model``'s weights become ``weight`` of the way from ``start`` to its own."""
    from underdog.pretrain.grow import interpolate_state_dicts

    trained = {k: v for k, v in model.state_dict().items() if k in start}
    model.load_state_dict(interpolate_state_dicts(start, trained, weight), strict=False)
    log(f"final weights: {1 - weight:g} x the starting ones + {weight:g} x the trained ones (WiSE-FT)")


def run_pretrain(recipe: PretrainRecipe, log=print, command: str = "underdog pretrain") -> dict:
    from transformers import PreTrainedTokenizerFast

    from underdog.pretrain.grow import collapsed_tokens
    from underdog.pretrain.probe import ComparatorProbe, IclProbe, LookupProbe, name_probes
    from underdog.pretrain.tokenizer import tokenizer_options, train_tokenizer, with_line_space

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    run = Run(recipe.out, recipe.model_dump(), log=log)
    started = time.time()

    def make_tokenizer(tmp: Path):
        tok = train_tokenizer(_texts(recipe.seed + 1_000_000, 4000, recipe), recipe.vocab_size, recipe.syllables,
                              recipe.caseless, recipe.line_space)
        tok.save_pretrained(tmp)
        return {"vocab": len(tok)}

    if recipe.init_from or recipe.tokenizer_from:
        source = resolve_model_path(recipe.init_from or recipe.tokenizer_from)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir(source))
        if recipe.line_space and not {"line_space", "caseless"} & set(tokenizer_options(tokenizer)):
            tokenizer = with_line_space(tokenizer)
            log(f"{source}'s tokenizer now starts every line with a space (line_space)")
    else:
        inputs = {"seed": recipe.seed, "vocab": recipe.vocab_size, "mix": recipe.mix}
        inputs |= {option: True for option in OPTIONS if getattr(recipe, option)}
        run.stage("tokenizer", inputs, make_tokenizer)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(run.stage_dir("tokenizer"))

    separate = token_groups(tokenizer, recipe.separate_tokens)  # checked before the mix is built
    # ~how many texts make `tokens` tokens: measure on a sample
    sample = _texts(recipe.seed, 200, recipe)
    per_text = sum(len(tokenizer.encode(t)) + 1 for t in sample) / len(sample)
    n_texts = int(recipe.tokens / per_text * 1.02) + 1
    steps = max(1, recipe.tokens // (recipe.batch_size * recipe.seq_len))
    log(f"pretraining mix: {n_texts} texts (~{per_text:.0f} tokens each), {steps} steps of "
        f"{recipe.batch_size}x{recipe.seq_len} tokens")
    # a continued run draws fresh texts (another seed), so it never repeats the first run's data
    texts = _texts(recipe.seed + (7919 if recipe.init_from else 0), n_texts, recipe, labelled=True)
    lengths = [len(ids) for ids in tokenizer([t for _, t in texts])["input_ids"]]
    texts = [t for t, n in zip(texts, lengths) if n < recipe.seq_len]  # keep whole episodes, never cut questions
    log(f"kept {len(texts)} texts of < {recipe.seq_len} tokens")
    model = build_model(recipe, tokenizer)
    earlier = earlier_record(recipe.init_from)
    start = _load_init(model, recipe, log, separate) if recipe.init_from else {}
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: Llama {recipe.model.hidden}x{recipe.model.layers}, {n_params:,} parameters, vocab {len(tokenizer)}")

    probe = IclProbe(per_split=recipe.probe_per_split, budget=recipe.icl_budget, context=recipe.icl_context)
    lookup, comparator = LookupProbe(), ComparatorProbe()
    names = name_probes(chain_units=100, pair_units=80)
    log_path = run.dir / "pretrain_log.jsonl"
    lm = LM(model, tokenizer, name="pretraining")

    def on_step(info: dict) -> None:
        if info["step"] % recipe.probe_every and info["step"] != steps:
            return
        model.eval()
        correct, looked_up, flipped = probe.answers(lm), lookup(lm), comparator(lm)
        name_scores = {key: name_probe(lm) for key, name_probe in names.items()}
        model.train()
        acc = probe.accuracy(correct)
        entry = {**info, "elapsed_s": round(time.time() - started, 1), "probe": acc,
                 "probe_by_kind": probe.accuracy(correct, by_kind=True), "lookup": looked_up,
                 "comparator": flipped, **name_scores}
        if choice:
            entry["choice_accuracy"] = choice.last_accuracy  # this step's questions, before its update
        with log_path.open("a") as f:
            f.write(json.dumps(entry) + "\n")
        log("step {step} tokens {tokens_seen:,} loss {loss:.3f} tok/s {tokens_per_s:.0f} | ".format(**info)
            + " ".join(f"{k} {v:.2f}" for k, v in acc.items())
            + " | lookup " + " ".join(f"{k} {v:.2f}" for k, v in looked_up.items())
            + " | comparator " + " ".join(f"{k} {v:.2f}" for k, v in flipped.items())
            + "".join(f" | {key} " + " ".join(f"{k} {v:.2f}" for k, v in cells.items())
                      for key, cells in name_scores.items()))

    choice = aux_loss = None
    if recipe.choice_loss:
        from underdog.pretrain.choice import ChoiceLoss, choice_questions

        questions = choice_questions(tokenizer, recipe.seed + 70_001, recipe.choice_worlds, recipe.choice_per_world,
                                     default_budget(recipe.model.context), recipe.choice_kinds, recipe.world,
                                     recipe.data_workers or os.cpu_count() or 1, recipe.choice_splits)
        choice = ChoiceLoss(tokenizer, questions, recipe.choice_per_step, recipe.model.context)
        log(f"choice loss x{recipe.choice_loss}: {len(questions)} questions, {recipe.choice_per_step} a step")

        def aux_loss(m, step: int) -> torch.Tensor:
            return recipe.choice_loss * choice(m, step)

    config = TrainConfig(lr=recipe.lr, max_steps=steps, batch_size=recipe.batch_size, max_length=recipe.seq_len,
                         packing=True, completion_only=not recipe.context_loss, warmup_ratio=recipe.warmup_ratio,
                         weight_decay=recipe.weight_decay, lr_schedule="cosine", min_lr_ratio=0.1,
                         seed=recipe.seed, save_every=recipe.save_every, log_every=20,
                         output_dir=str(run.dir / "train"))
    result = train(model, tokenizer, _examples(texts, recipe.context_loss), config, callback=on_step, resume=True,
                   aux_loss=aux_loss)
    model = result.model
    if recipe.interpolate_init:
        _interpolate_with_init(model, start, recipe.interpolate_init, log)
    final_dir = run.dir / "final"
    save_trained(model, final_dir, tokenizer=tokenizer)

    final_lm = LM(model.eval(), tokenizer, name="final")
    final_probe = IclProbe(seed=99_001, per_split=recipe.final_probe_per_split, budget=recipe.icl_budget,
                           context=recipe.icl_context,
                           splits=("forward", "rephrasing", "reversal", "syllogism", "holdout", "two_hop"))
    correct = final_probe.answers(final_lm)
    icl, none = final_probe.accuracy(correct), final_probe(final_lm, with_context=False)
    summary = {"parameters": n_params, "vocab": len(tokenizer), "tokenizer_options": tokenizer_options(tokenizer),
               "tokens_seen": result.tokens_seen,
               "steps": result.final_step, "final_loss": sum(result.losses[-20:]) / len(result.losses[-20:]),
               "train_seconds": result.wall_time_s, "tokens_per_s": result.tokens_per_s,
               "probe_icl": icl, "probe_icl_by_kind": final_probe.accuracy(correct, by_kind=True),
               "probe_none": none, "lookup": lookup(final_lm),
               "comparator": comparator(final_lm),
               **{key: name_probe(final_lm) for key, name_probe in name_probes(chain_units=400, pair_units=300).items()},
               "env": environment(),
               "recipe": recipe.model_dump(),
               "collapsed_tokens": collapsed_tokens(model, tokenizer, sample)}
    atomic_write_json(final_dir / "pretrain_summary.json", summary)
    if log_path.exists():
        shutil.copy(log_path, final_dir / "pretrain_log.jsonl")
    write_model_card(final_dir, recipe, command, earlier)
    log("final probe (ICL): " + " ".join(f"{k} {v:.3f}" for k, v in icl.items()))
    log("final probe (no context): " + " ".join(f"{k} {v:.3f}" for k, v in none.items()))
    if recipe.install:
        dest = ASSETS / recipe.install
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(final_dir, dest)
        log(f"installed as '{recipe.install}' in {dest}")
    return summary
