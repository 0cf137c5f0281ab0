"""The two heavy stages of `underdog scale`: training a model family and evaluating one model of it.

``train_size`` trains one size of the default family from scratch: the built-in architecture (``pretrain.recipe.
build_model``, a Llama of ``hidden`` x ``layers``) and tokenizer, on texts of the built-in pretraining mix
(``world.episodes.pretraining_texts``) through the one training loop (``underdog.train``): one run per size at
a constant learning rate after warmup, and at each token budget either that run's model as it passes the budget
or, with ``cooldown`` > 0, an annealed one: a branch resumed from the run's checkpoint that decays the rate to
0 over the budget's last steps (warmup-stable-decay, Hägele et al. 2024), which stands in for a cosine run of
that length, as Hoffmann et al. train each point of their law. ``evaluate_model`` reads one model (a checkpoint,
a user's directory or a shipped model) on: the held-out loss of pretraining-mix texts (``lm.score``, per token), the
multiple-choice world splits with the knowledge in context, zero-shot and k-shot (k solved questions of the
same split before the question, as pretraining's ICL episodes lay them out), with per question the accuracy,
the log-probability of the correct choice and the Brier score of the choice distribution, and on the splits
whose questions take steps k-shot chain of thought too (``tasks.cot``: the model writes the steps); and the
multi-token task ``names``: forward questions whose answer is a nonsense name of two or more tokens,
generated greedily (``lm.generate``) and scored by exact match, per-token accuracy (generated token i equals
answer token i), token edit distance, and the teacher-forced log-probability of the answer's tokens.
Both are module-level functions of plain arguments so that ``Run.stages_in_lanes`` can run them in workers.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np

from underdog.eval.emergence import parameter_counts
from underdog.eval.metrics import edit_distance, normalize_answer
from underdog.lm import load
from underdog.lm.generate import generate
from underdog.lm.score import encode_pair, prefix_token_id, score, score_tokens
from underdog.pretrain.recipe import PretrainRecipe, build_model
from underdog.tasks import cot
from underdog.tasks.choice import score_choices
from underdog.tasks.icl import retrieved_contexts
from underdog.train import TrainConfig, pack_examples, tokenize_examples, train
from underdog.world import make_world

MC_SPLITS = ("forward", "reversal", "syllogism", "two_hop")
STOP = ("\n", ".")


def read_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]


def parse_size(size: str) -> tuple[int, int]:
    hidden, layers = size.lower().split("x")
    return int(hidden), int(layers)


def size_shape(size: str, context: int) -> dict:
    """The ``pretrain.recipe.ModelShape`` of a size ``"<hidden>x<layers>"``: heads of 16 dims, MLP 2.75 x hidden
    (the built-in model's ratio)."""
    hidden, layers = parse_size(size)
    return {"hidden": hidden, "layers": layers, "heads": max(1, hidden // 16),
            "intermediate": int(round(2.75 * hidden)), "context": context, "tied": True}


def train_size(tmp: Path, size: str, texts_path: str, tokenizer_dir: str, budgets: list[int], seq_len: int,
               batch_size: int, lr: float, warmup_ratio: float, seed: int, cooldown: float = 0.0) -> dict:
    """Train one size to ``max(budgets)`` tokens, saving ``tmp/<budget>/`` at each budget. ``cooldown`` 0: the
    constant-rate run's model as it passes each budget. ``cooldown`` c > 0: warmup-stable-decay from one run
    (Hägele et al. 2024): the constant-rate trunk is checkpointed (optimizer included) at ``1 - c`` of each
    budget's steps, and a branch resumed from there decays the rate linearly to 0 over the budget's last c of
    its steps, so each saved model is annealed, as a cosine run of that length would be."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    recipe = PretrainRecipe(model=size_shape(size, seq_len), seed=seed, seq_len=seq_len)
    model = build_model(recipe, tokenizer)  # seeded by the recipe: every build is this same model
    counts = parameter_counts(model)
    examples = [{"text": t} for t in read_texts(Path(texts_path))]
    rows = pack_examples(tokenize_examples(examples, tokenizer, max_length=seq_len, completion_only=False), seq_len)
    # tokens an optimizer step reads (a batch is never larger than the data)
    per_step = min(batch_size, len(rows)) * sum(len(r["input_ids"]) for r in rows) / len(rows)
    steps = max(1, int(np.ceil(max(budgets) / per_step)))
    # the run stops at the last budget; a few spare steps cover rounding (they are never reached otherwise)
    config = TrainConfig(lr=lr, max_steps=steps + 2, batch_size=batch_size, max_length=seq_len, packing=True,
                         completion_only=False, warmup_ratio=warmup_ratio, lr_schedule="constant",
                         weight_decay=0.01, seed=seed, log_every=50)
    if cooldown:
        return _train_cooldown(tmp, size, tokenizer, recipe, examples, config, budgets, per_step, cooldown, counts)
    todo = sorted(budgets)
    saved: list[dict] = []

    def save(tokens: int, step: int, loss: float) -> None:
        folder = tmp / str(todo.pop(0))
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        saved.append({"budget": int(folder.name), "tokens": tokens, "dir": folder.name, "step": step,
                      "train_loss": loss})

    def on_step(info: dict) -> bool:
        while todo and info["tokens_seen"] >= todo[0]:
            save(int(info["tokens_seen"]), int(info["step"]), float(info["loss"]))
        return not todo

    result = train(model, tokenizer, examples, config, callback=on_step)
    if todo:  # not reached within the steps: the final model once, as the largest budget, with its tokens
        del todo[:-1]
        save(int(result.tokens_seen), int(result.final_step), float(result.losses[-1]))
    return {"size": size, "params": counts, "checkpoints": saved, "seconds": result.wall_time_s,
            "tokens_per_s": result.tokens_per_s}


def _train_cooldown(tmp: Path, size: str, tokenizer, recipe: PretrainRecipe, examples: list[dict],
                    config: TrainConfig, budgets: list[int], per_step: float, cooldown: float, counts: dict) -> dict:
    """``train_size`` with a cooldown branch per budget: the trunk runs in segments (each stopped at a branch
    point, where the loop checkpoints it, and resumed), every branch resumes a copy of its checkpoint with the
    "wsd" schedule; one schedule (``config.max_steps``) for every trunk segment, so the warmup is the same."""
    trunk, branch = tmp / "trunk", tmp / "branch"
    saved: list[dict] = []
    seconds = trained = 0.0  # over every call: trunk segments and branches
    for budget in sorted(budgets):
        end = max(2, int(np.ceil(budget / per_step)))  # the branch's last step: the budget's tokens
        start = end - max(1, int(round(cooldown * end)))
        if not (trunk / "checkpoints" / f"step_{start}").is_dir():  # (two budgets can share a branch point)
            result = train(build_model(recipe, tokenizer), tokenizer, examples,
                           config.model_copy(update={"output_dir": str(trunk)}), resume=True,
                           callback=lambda info, start=start: info["step"] >= start)
            seconds, trained = seconds + result.wall_time_s, trained + result.tokens_per_s * result.wall_time_s
        shutil.rmtree(branch, ignore_errors=True)
        shutil.copytree(trunk / "checkpoints" / f"step_{start}", branch / "checkpoints" / f"step_{start}")
        cool = config.model_copy(update={"output_dir": str(branch), "max_steps": end, "lr_schedule": "wsd",
                                         "decay_ratio": (end - start) / end, "warmup_ratio": 0.0})
        result = train(build_model(recipe, tokenizer), tokenizer, examples, cool, resume=True)
        seconds, trained = seconds + result.wall_time_s, trained + result.tokens_per_s * result.wall_time_s
        folder = tmp / str(budget)
        result.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        saved.append({"budget": budget, "tokens": int(result.tokens_seen), "dir": folder.name,
                      "step": int(result.final_step), "branch_step": start, "train_loss": float(result.losses[-1])})
    shutil.rmtree(trunk, ignore_errors=True)
    shutil.rmtree(branch, ignore_errors=True)
    return {"size": size, "params": counts, "checkpoints": saved, "seconds": seconds,
            "tokens_per_s": trained / max(seconds, 1e-9)}


def eval_questions(world_seed: int, per_split: int, names: int, shots: int) -> dict:
    """The fixed questions every model answers: ``per_split`` of each multiple-choice split, ``shots`` solved
    demonstrations per question (other questions of its split), and ``names`` forward questions for generation."""
    world = make_world(world_seed, pool="eval")
    rng = random.Random(world_seed)
    out: dict = {"documents": world.documents, "mc": [], "demos": {}, "cot_demos": {}, "names": []}
    for split in MC_SPLITS:
        pool = [q for q in world.questions if q["split"] == split]
        chosen = rng.sample(pool, min(per_split, len(pool)))
        rest = [q for q in pool if q not in chosen]
        out["mc"] += chosen
        for q in chosen:
            out["demos"][q["id"]] = rng.sample(rest, min(shots, len(rest)))
            if split in cot.STEP_SPLITS:
                out["cot_demos"][q["id"]] = cot.demonstrations(world, out["demos"][q["id"]])
    taken = {q["id"] for q in out["mc"]}
    forward = [q for q in world.questions if q["split"] == "forward" and q["id"] not in taken]
    out["names"] = rng.sample(forward, min(names * 2, len(forward)))  # trimmed to multi-token answers per model
    return out


def _demo_lines(demos: list[dict]) -> str:
    return "".join(f"{d['question']} {d['choices'][d['answer']]}.\n" for d in demos)


def _prompts(lm, questions: list[dict], documents: list[dict], budget: int, blocks: dict[str, str] | None,
             ask: bool = True) -> list[str]:
    """Retrieved-knowledge prompts (``tasks.icl``); with ``blocks`` (rendered demonstrations by question id), the
    block goes between the knowledge and the question, and the farthest knowledge lines are dropped until the
    prompt fits ``budget``. ``ask=False`` ends the prompt after the block (chain of thought: the model writes
    its steps there, then the question follows), keeping room for the steps."""
    out = []
    for q, ctx in zip(questions, retrieved_contexts(lm.tokenizer, documents, questions, budget)):
        knowledge = ctx.text[: len(ctx.text) - len(q["question"])]
        if blocks:
            block = blocks[q["id"]]
            lines = knowledge.rstrip("\n").split("\n") if knowledge.strip() else []
            room = budget - len(lm.tokenizer.encode(block + q["question"], add_special_tokens=False)) - 16
            room -= 0 if ask else cot.MAX_STEP_TOKENS
            sizes = [len(lm.tokenizer.encode(x + "\n", add_special_tokens=False)) for x in lines]
            while lines and sum(sizes) > room:
                lines.pop()
                sizes.pop()
            knowledge = "".join(x + "\n" for x in lines) + "\n" + block
        out.append(knowledge + (q["question"] if ask else ""))
    return out


def _choice_rows(questions: list[dict], logprobs: list[list[float]]) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {"accuracy": [], "logprob": [], "brier": []}
    for q, lps in zip(questions, logprobs):
        lp = np.asarray(lps, dtype=float)
        p = np.exp(lp - lp.max())
        p /= p.sum()
        y = np.zeros_like(p)
        y[q["answer"]] = 1.0
        rows["accuracy"].append(float(int(np.argmax(lp)) == q["answer"]))
        rows["logprob"].append(float(lp[q["answer"]]))
        rows["brier"].append(float(np.sum((p - y) ** 2)))
    return rows


def _names_rows(lm, questions: list[dict], documents: list[dict], budget: int, limit: int) -> dict:
    prompts = _prompts(lm, questions, documents, budget, None)
    keep = []
    for q, prompt in zip(questions, prompts):
        answer = q["choices"][q["answer"]]
        target = encode_pair(lm.tokenizer, prompt, " " + answer)[1]
        if len(target) >= 2:
            keep.append((q, prompt, answer, target))
    keep = keep[:limit]
    if not keep:
        return {"ids": [], "length": [], "rows": {}}
    scores = score(lm, [k[1] for k in keep], [" " + k[2] for k in keep])
    samples = generate(lm, [k[1] for k in keep], max_new_tokens=max(len(k[3]) for k in keep) + 2, stop=STOP)
    rows: dict[str, list[float]] = {"exact_match": [], "token_accuracy": [], "token_edit_distance": [],
                                    "logprob": [], "token_prob": []}
    for (_q, _, answer, target), s, gen in zip(keep, scores, samples):
        ids = gen[0].token_ids
        rows["exact_match"].append(float(normalize_answer(gen[0].text) == normalize_answer(answer)))
        rows["token_accuracy"].append(float(np.mean([i < len(ids) and ids[i] == t for i, t in enumerate(target)])))
        rows["token_edit_distance"].append(float(edit_distance(ids, target)))
        rows["logprob"].append(float(s.logprob))
        rows["token_prob"].append(float(np.exp(s.mean_logprob)))
    return {"ids": [k[0]["id"] for k in keep], "length": [len(k[3]) for k in keep], "rows": rows}


def held_out_loss(lm, texts: list[str], max_tokens: int) -> tuple[float, int]:
    """Mean next-token loss (nats) over ``texts``, each cut to its first ``max_tokens`` tokens (and the window)
    and scored after the BOS/EOS prefix token (``lm.score``)."""
    keep = min(max_tokens, lm.max_length - 1)
    start = [prefix_token_id(lm.tokenizer)]
    pairs = [(start, ids[:keep]) for ids in (lm.tokenizer.encode(t, add_special_tokens=False) for t in texts) if ids]
    scores = score_tokens(lm, pairs, share_context=False)
    n = sum(s.n_tokens for s in scores)
    return -sum(s.logprob for s in scores) / max(n, 1), n


def evaluate_model(tmp: Path, model: str, questions_path: str, loss_texts_path: str, budget: int, names: int,
                   device: str) -> dict:
    """Every task and metric of one model (see the module docstring), per question."""
    lm = load(model, device=device)
    qs = json.loads(Path(questions_path).read_text(encoding="utf-8"))
    counts = parameter_counts(lm.model)
    loss, loss_tokens = held_out_loss(lm, read_texts(Path(loss_texts_path)), budget + 64)
    out: dict = {"params": counts, "loss": loss, "loss_tokens": loss_tokens, "mc": {}}
    read = loss_tokens
    k_shot = {i: _demo_lines(d) for i, d in qs["demos"].items()}
    for shots, blocks in (("0-shot", None), ("k-shot", k_shot)):
        prompts = _prompts(lm, qs["mc"], qs["documents"], budget, blocks)
        read += sum(len(lm.tokenizer.encode(p)) for p in prompts)
        out["mc"][shots] = _choice_rows(qs["mc"], score_choices(lm, prompts, [q["choices"] for q in qs["mc"]]))
    out["mc_split"] = [q["split"] for q in qs["mc"]]
    steps = [i for i, q in enumerate(qs["mc"]) if q["id"] in qs.get("cot_demos", {})]
    if steps:  # k-shot chain of thought on the questions that take steps
        questions = [qs["mc"][i] for i in steps]
        prompts = _prompts(lm, questions, qs["documents"], budget, qs["cot_demos"], ask=False)
        logprobs, written = cot.choice_logprobs(lm, prompts, questions, max_new_tokens=cot.MAX_STEP_TOKENS)
        read += sum(len(lm.tokenizer.encode(p)) + cot.MAX_STEP_TOKENS for p in prompts)
        out["cot"] = {"index": steps, "rows": _choice_rows(questions, logprobs), "steps": written}
    out["names"] = _names_rows(lm, qs["names"], qs["documents"], budget, names)
    read += len(out["names"]["ids"]) * budget
    out["eval_tokens"] = read
    return out
