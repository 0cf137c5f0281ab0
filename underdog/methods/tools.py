"""Tool use, Toolformer-style (Schick et al. 2023): a small model that calls a calculator vs a larger one that
cannot.

Tasks (``tool_tasks.py``): world word problems with multi-digit numbers and fact questions a lookup answers,
or a user's JSONL ``{"question", "answer"}``. Stages, each cached and resumable: ``tasks``; ``propose``
(candidate calls at candidate positions of every training text ``Question: ... Answer: <answer>.``, from the
programmatic teacher, ``teacher: program``, or from the model itself with a few-shot prompt, ``teacher:
model``), each call executed by the tool runtime; ``filter-<model>`` (Toolformer's filter with the model
that will be fine-tuned: with the weighted loss ``L_i(z) = -sum_j w_j log p(x_{i+j} | z, x_{<i+j})``,
``w_j ∝ max(0, 1 - 0.2 j)``, the call is kept when ``min(L_i(ε), L_i(call without result)) - L_i(call with
result) >= tau``; the call is inline where it goes in training, ``insert: inline``, or a prefix of the text,
as in the paper; a call of a chain, ``calls: chain``, one calculator call per operation, is scored with the
chain's earlier calls before it, on the tokens from the next call's operands on, or the answer; with
``seed_demos`` > 0 the filter model is first fine-tuned on that many teacher-annotated texts (at most half),
a tiny model's stand-in for the paper's few-shot prompt, and those texts train with their calls); then one
stage per arm (``small``, ``small+tools``, ``large``, ``large+tools``, two at a time; a ``+tools`` arm starts
once its model's filter is done): fine-tune through ``underdog.train`` on the training texts, with the kept
calls inline for ``+tools`` arms, and answer the test questions (``lm.toolgen``, tools on for ``+tools`` arms,
with ``ground_numbers`` a call's numbers restricted to those of the question and earlier results, see
``tools.grounding``; the same model is also decoded without that restriction). Accuracy per arm with 95% CIs,
by digits and operation count and task (and ``ungrounded_accuracy`` for ``+tools`` arms); proposed / executed
/ kept per tool and per kind of proposal; the verdict small+tools vs large on arithmetic (``verdict``) and on
each other task (``verdict_by_task``).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from underdog.config import Strict, TrainSettings, check_known
from underdog.eval.metrics import mean_with_ci
from underdog.eval.verdict import verdict
from underdog.io import read_jsonl, write_jsonl
from underdog.lm import load
from underdog.lm.load import weights_stamp
from underdog.lm.score import score
from underdog.lm.toolgen import generate_with_tools
from underdog.methods.tool_tasks import call_text, load_tasks, propose_program
from underdog.report import write_report
from underdog.runs import Run
from underdog.tools import ToolRegistry, default_registry
from underdog.tools.lookup import Lookup, from_jsonl, lookup_tool
from underdog.tools.runtime import run_call

ARMS = ("small", "small+tools", "large", "large+tools")
NAME = "tools"
DEMO_SECONDS = 52


class ToolsRecipe(Strict):
    model: str = "builtin"
    compare_model: str | None = "builtin-large"
    seed: int = 0
    out: str = "runs/tools"
    device: str = "auto"
    questions: str | None = None  # a user's JSONL of {"question", "answer"} instead of the built-in tasks
    passages: str | None = None  # a user's JSONL of {"text"} passages for the Lookup tool (default: the world's)
    test_fraction: float = Field(0.3, gt=0, lt=1)  # share of a user's questions held out for the test
    n_train: int = Field(8000, ge=0)  # arithmetic training questions
    n_test: int = Field(360, ge=0)  # arithmetic test questions
    n_fact_train: int = Field(90, ge=0)  # lookup questions (parents of the world's leaf names)
    n_fact_test: int = Field(60, ge=0)
    digits: list[int] = [1, 2, 3, 4]
    ops: list[int] = [1, 2, 3]
    teacher: Literal["program", "model"] = "program"
    calls: Literal["chain", "expression"] = "chain"  # useful calls: one per operation, or one whole expression
    seed_demos: int = Field(4000, ge=0)  # texts with the teacher's calls the filter model is warmed up on first
    warmup: TrainSettings = TrainSettings(lr=3e-3, epochs=2, batch_size=16, max_length=192, warmup_ratio=0.05)
    large_warmup: TrainSettings | None = TrainSettings(lr=3e-3, epochs=1, batch_size=16, max_length=192,
                                                       warmup_ratio=0.05)  # None: the larger filter uses `warmup`
    tau: float = Field(1.0, ge=0)  # Toolformer's filtering threshold (loss units)
    insert: Literal["prefix", "inline"] = "inline"
    window: int = Field(5, gt=0)  # tokens weighted by the filter: w_j ∝ max(0, 1 - j / window)
    arms: list[str] = list(ARMS)
    train: TrainSettings = TrainSettings(lr=3e-3, epochs=2, batch_size=16, max_length=192, warmup_ratio=0.05)
    large_train: TrainSettings | None = TrainSettings(lr=2e-3, epochs=1, batch_size=16, max_length=192,
                                                      warmup_ratio=0.05)
    lanes: int = Field(2, gt=0)  # arms trained side by side (each on 1/lanes of the threads)
    max_calls: int = Field(3, ge=0)
    ground_numbers: bool = True  # +tools arms: a call's numbers must be in the question or an earlier result
    max_new_tokens: int = Field(128, gt=0)  # a chain of three calls needs about 128
    batch_size: int = Field(64, gt=0)

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, v: list[str]) -> list[str]:
        return check_known(v, ARMS, "arm")

    @field_validator("digits")
    @classmethod
    def _digits(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 6 for d in v):
            raise ValueError("digits must be a non-empty list of 1..6")
        return v

    @field_validator("ops")
    @classmethod
    def _ops(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 or k > 4 for k in v):
            raise ValueError("ops must be a non-empty list of 1..4")
        return v


Recipe = ToolsRecipe


# ---- the Toolformer filter ---------------------------------------------------------------------------------

def weights(window: int) -> list[float]:
    """Toolformer's loss weights over the tokens after the call: ``max(0, 1 - j / window)``, normalised."""
    raw = [max(0.0, 1.0 - j / window) for j in range(window)]
    return [w / sum(raw) for w in raw]


def weighted_losses(lm, contexts: list[str], continuations: list[str], window: int, batch_size: int = 64):
    """``L = -sum_j w_j log p(token_j | context, tokens_<j)`` over the first ``window`` continuation tokens."""
    w = weights(window)
    unique = list(dict.fromkeys(zip(contexts, continuations)))  # e.g. the no-call context, shared by a text's calls
    loss = {}
    for pair, s in zip(unique, score(lm, [c for c, _ in unique], [x for _, x in unique], batch_size=batch_size)):
        lps = s.token_logprobs[:window]
        ww = w[: len(lps)]
        loss[pair] = -sum(a * b for a, b in zip(ww, lps)) / max(sum(ww), 1e-9)
    return [loss[pair] for pair in zip(contexts, continuations)]


def chain_around(c: dict) -> tuple[str, str]:
    """For a call of a chain (``step``, ``chain``, ``chain_out``): the chain's earlier calls (with their results),
    which precede it, and its later calls, which follow it; ``("", "")`` for a call on its own."""
    if c.get("step") is None:
        return "", ""
    calls = [" " + call_text(c["tool"], a, o) for a, o in zip(c["chain"], c["chain_out"])]
    return "".join(calls[: c["step"]]), "".join(calls[c["step"] + 1:])


def toolformer_filter(lm, candidates: list[dict], tau: float, window: int = 5, insert: str = "prefix",
                      batch_size: int = 64) -> list[dict]:
    """Score every executed candidate ``{"text", "pos", "tool", "input", "output", "ok"}``; add ``loss_none``,
    ``loss_empty``, ``loss_result``, ``gain`` (min of the first two minus the last) and ``kept``
    (``gain >= tau``). Failed calls (``ok`` false) are never kept. A call of a chain is scored with the chain's
    earlier calls before it in all three contexts, and the following tokens are the chain's next call from its
    operands on (the next call's opening ``[Tool(`` is syntax, in the context of all three) or the answer."""
    rows = [c for c in candidates if c["ok"]]
    contexts, conts = [], []
    for c in rows:
        prev, nxt = chain_around(c)
        before, after = c["text"][: c["pos"]] + prev, nxt + c["text"][c["pos"]:]
        head = after[: after.index("(") + 1] if nxt else ""
        after = after[len(head):]
        for z in ("", call_text(c["tool"], c["input"], None), call_text(c["tool"], c["input"], c["output"])):
            if not z:
                contexts.append(before + head)
            elif insert == "prefix":
                contexts.append(z + "\n" + before + head)
            else:
                contexts.append(before + " " + z + head)
            conts.append(after)
    losses = weighted_losses(lm, contexts, conts, window, batch_size) if rows else []
    out = []
    for k, c in enumerate(rows):
        none, empty, result = losses[3 * k: 3 * k + 3]
        gain = min(none, empty) - result
        out.append({**c, "loss_none": none, "loss_empty": empty, "loss_result": result, "gain": gain,
                    "kept": gain >= tau})
    return out + [{**c, "kept": False, "gain": None} for c in candidates if not c["ok"]]


def annotate(items: list[dict], filtered: list[dict]) -> list[dict]:
    """Training examples: each item's text with its best kept call (largest gain) inline at its position; the
    kept calls of a chain count as one (their largest gain) and go in together, in chain order."""
    best: dict[str, tuple[float, list[dict]]] = {}
    chains: dict[str, list[dict]] = {}
    for c in filtered:
        if not c["kept"]:
            continue
        if c.get("step") is not None:
            chains.setdefault(c["item"], []).append(c)
        elif c["item"] not in best or c["gain"] > best[c["item"]][0]:
            best[c["item"]] = (c["gain"], [c])
    for item, calls in chains.items():
        gain = max(c["gain"] for c in calls)
        if item not in best or gain > best[item][0]:
            best[item] = (gain, sorted(calls, key=lambda c: c["step"]))
    examples = []
    for it in items:
        prompt, completion = it["prompt"], it["completion"]
        if it["id"] in best:
            calls = best[it["id"]][1]
            text = prompt + completion
            pos = calls[0]["pos"]
            z = " ".join(call_text(c["tool"], c["input"], c["output"]) for c in calls)
            full = text[:pos] + " " + z + text[pos:]
            if pos >= len(prompt):
                completion = full[len(prompt):]
            else:
                prompt, completion = full[: len(full) - len(completion)], completion
        examples.append({"prompt": prompt, "completion": completion})
    return examples


def call_stats(filtered: list[dict], by: str = "tool") -> dict:
    """Proposed / executed / kept (and the mean gain of executed calls) per tool, or per ``kind``."""
    stats: dict[str, dict] = {}
    gains: dict[str, list[float]] = {}
    for c in filtered:
        key = c.get(by) or "(malformed)"
        s = stats.setdefault(key, {"proposed": 0, "executed": 0, "kept": 0})
        s["proposed"] += 1
        s["executed"] += int(c["ok"])
        s["kept"] += int(bool(c["kept"]))
        if c.get("gain") is not None:
            gains.setdefault(key, []).append(c["gain"])
    for key, s in stats.items():
        g = gains.get(key)
        s["mean_gain"] = sum(g) / len(g) if g else None
    return stats


# ---- stages --------------------------------------------------------------------------------------------------

def _registry(recipe: ToolsRecipe, task_dir: Path):
    if recipe.passages:
        source = from_jsonl(recipe.passages)
    else:
        path = task_dir / "passages.jsonl"
        source = Lookup([r["text"] for r in read_jsonl(path, required={"text": str})]) if path.is_file() else None
    return default_registry(*([lookup_tool(source)] if source is not None else []))


def run_propose(recipe: ToolsRecipe, task_dir: Path, lm=None) -> list[dict]:
    registry = _registry(recipe, task_dir)
    train = read_jsonl(task_dir / "train.jsonl")
    if recipe.teacher == "program":
        proposals = propose_program(train, recipe.seed, recipe.calls)
    else:
        from underdog.methods.tool_tasks import propose_with_model

        proposals = propose_with_model(lm, train, registry, recipe.seed, recipe.batch_size)
    out = []
    for p in proposals:
        call = run_call(registry, f"{p['tool']}({p['input']})")
        out.append({**p, "output": call.output, "ok": call.ok})
    results = {(c["item"], c["step"]): c["output"] for c in out if c.get("step") is not None}
    for c in out:
        if c.get("step") is not None:
            c["chain_out"] = [results[(c["item"], k)] for k in range(len(c["chain"]))]
    return out


def _model_name(recipe: ToolsRecipe, arm: str) -> str:
    return recipe.model if arm.startswith("small") else str(recipe.compare_model)


def _arm_settings(recipe: ToolsRecipe, arm: str) -> TrainSettings:
    return recipe.train if arm.startswith("small") or recipe.large_train is None else recipe.large_train


def _stage_name(arm: str) -> str:
    return f"arm-{arm.replace('+', '-')}"


def seed_demos(candidates: list[dict], items: list[dict], k: int) -> tuple[list[dict], set[str]]:
    """``k`` training texts spread evenly over the list, so every task has some (at most half of them, so that
    the filter still decides on the rest), with the teacher's answer-position calls inline (the demonstrations
    a Toolformer prompt shows), and their ids."""
    k = min(k, len(items) // 2)
    chosen = {items[i * len(items) // k]["id"] for i in range(k)}
    demos = [{**c, "kept": True, "gain": 0.0, "seed": True} for c in candidates
             if c["item"] in chosen and c.get("kind") in ("answer", "step") and c["ok"]]
    return demos, chosen


def _warmup(recipe: ToolsRecipe, model: str) -> TrainSettings:
    return recipe.warmup if model == recipe.model or recipe.large_warmup is None else recipe.large_warmup


def run_filter(recipe: ToolsRecipe, model: str, candidates: list[dict], task_dir: Path, tmp: Path) -> dict:
    """Toolformer's filter scored by ``model``, after a warm-up on the seed demonstrations when
    ``recipe.seed_demos`` > 0 (a tiny model cannot take them in context, as the paper's few-shot prompt does)."""
    from underdog.methods.parts.finetune import finetune

    lm = load(model, device=recipe.device)
    items = read_jsonl(task_dir / "train.jsonl")
    demos, chosen = seed_demos(candidates, items, recipe.seed_demos)
    warm = None
    if demos:
        lm, warm = finetune(lm, annotate([it for it in items if it["id"] in chosen], demos), _warmup(recipe, model),
                            recipe.seed, recipe.device)
    rest = [c for c in candidates if c["item"] not in chosen]
    filtered = toolformer_filter(lm, rest, recipe.tau, recipe.window, recipe.insert, recipe.batch_size)
    write_jsonl(tmp / "calls.jsonl", filtered + demos)  # the seed demonstrations train with their calls
    return {"per_tool": call_stats(filtered), "per_kind": call_stats(filtered, "kind"), "n": len(filtered),
            "seed_demos": len(demos), "warmup": warm}


def extract_answer(text: str) -> str | None:
    """The answer a generation gives: the first number (or, for text answers, the first word) after its last
    tool result."""
    tail = text.rsplit("]", 1)[-1] if "]" in text else text
    m = re.search(r"-?\d+(?:\.\d+)?|[A-Za-z]+", tail)
    return m.group(0) if m else None


def is_correct(pred: str | None, answers: list[str]) -> bool:
    if pred is None:
        return False
    for a in answers:
        try:
            if abs(float(pred) - float(a)) < 1e-6:
                return True
        except ValueError:
            if pred.strip(" .").lower() == a.strip(" .").lower():
                return True
    return False


def run_arm(recipe_dump: dict, arm: str, task_dir: str, calls_path: str | None, tmp: Path) -> list[dict]:
    """Fine-tune one arm's model (with the kept calls inline for a +tools arm) and answer the test questions."""
    from underdog.methods.parts.finetune import finetune

    recipe = ToolsRecipe.model_validate(recipe_dump)
    tools = arm.endswith("+tools")
    task_path = Path(task_dir)
    train = read_jsonl(task_path / "train.jsonl")
    test = read_jsonl(task_path / "test.jsonl")
    if tools:
        examples = annotate(train, read_jsonl(calls_path, allow_empty=True))
    else:
        examples = [{"prompt": it["prompt"], "completion": it["completion"]} for it in train]
    settings = _arm_settings(recipe, arm)
    start = time.time()
    lm, summary = finetune(_model_name(recipe, arm), examples, settings, recipe.seed, recipe.device)
    registry = _registry(recipe, task_path) if tools else ToolRegistry()

    def answer(ground: bool) -> list:
        return generate_with_tools(lm, [it["prompt"] for it in test], registry, max_new_tokens=recipe.max_new_tokens,
                                   max_calls=recipe.max_calls if tools else 0, stop=["\n", "Question:"],
                                   batch_size=recipe.batch_size, seed=recipe.seed, ground_numbers=ground)

    grounded = tools and recipe.ground_numbers
    outs = answer(grounded)
    free = answer(False) if grounded else outs  # the same model with its calls' numbers left unconstrained
    rows = []
    for it, (s,), (f,) in zip(test, outs, free):
        pred = extract_answer(s.text)
        rows.append({"id": it["id"], "task": it["task"], "digits": it.get("digits"), "ops": it.get("ops"),
                     "output": s.text, "pred": pred, "calls": len(s.calls),
                     "correct": int(is_correct(pred, it["answers"])),
                     "correct_ungrounded": int(is_correct(extract_answer(f.text), it["answers"]))})
    write_jsonl(tmp / "answers.jsonl", rows)
    (tmp / "train.json").write_text(json.dumps({**summary, "seconds_total": time.time() - start}))
    return rows


def run(recipe: ToolsRecipe, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the study; returns the results dict written to ``results.json``."""
    run_ = Run(recipe.out, recipe.model_dump(), log=log)
    arms = [a for a in recipe.arms if recipe.compare_model or a.startswith("small")]
    task_key = {k: getattr(recipe, k) for k in ("seed", "questions", "test_fraction", "n_train", "n_test",
                                                  "n_fact_train", "n_fact_test", "digits", "ops", "passages")}
    counts = run_.stage("tasks", task_key, lambda tmp: load_tasks(recipe, tmp))
    task_dir = run_.stage_dir("tasks")
    log(f"tasks: {counts}")
    models = {a: _model_name(recipe, a) for a in arms}
    stamps = {m: weights_stamp(m) for m in set(models.values())}
    prop_key = {"tasks": task_key, "teacher": recipe.teacher, "calls": recipe.calls,
                "model": [recipe.model, stamps[recipe.model]] if recipe.teacher == "model" else None}

    def propose(tmp: Path) -> dict:
        lm = None
        if recipe.teacher == "model":
            lm = load(recipe.model, device=recipe.device)
        cands = run_propose(recipe, task_dir, lm)
        write_jsonl(tmp / "candidates.jsonl", cands)
        return {"n": len(cands)}

    run_.stage("propose", prop_key, propose)
    candidates = read_jsonl(run_.stage_dir("propose") / "candidates.jsonl")
    filter_key = {"propose": prop_key, "tau": recipe.tau, "window": recipe.window, "insert": recipe.insert,
                  "seed_demos": recipe.seed_demos}

    def filter_inputs(m: str) -> dict:
        return {**filter_key, "model": m, "warmup": _warmup(recipe, m).model_dump() if recipe.seed_demos else None}

    label = {m: "small" if m == recipe.model else "large" for m in stamps}  # names the model's filter stage
    tool_models = sorted({models[a] for a in arms if a.endswith("+tools")}, key=lambda m: label[m], reverse=True)
    filter_jobs = [(f"filter-{label[m]}", {**filter_inputs(m), "weights": stamps[m]},
                    functools.partial(run_filter, recipe, m, candidates, task_dir)) for m in tool_models]
    jobs = []
    for arm in arms:
        m = models[arm]
        calls = str(run_.stage_dir(f"filter-{label[m]}") / "calls.jsonl") if arm.endswith("+tools") else None
        settings = _arm_settings(recipe, arm)
        key = {"tasks": task_key, "model": m, "weights": stamps[m], "train": settings.model_dump(),
               "filter": filter_inputs(m) if calls else None, "seed": recipe.seed,
               "gen": [recipe.max_calls, recipe.max_new_tokens, bool(calls) and recipe.ground_numbers]}
        jobs.append((_stage_name(arm), key,
                     functools.partial(run_arm, recipe.model_dump(), arm, str(task_dir), calls)))

    # the longest chain of stages first (the larger model's filter, then its +tools arm), the shortest stage last
    order = ["filter-large", "arm-large-tools", "filter-small", "arm-small-tools", "arm-large", "arm-small"]

    def longest_first(j):
        return order.index(j[0])

    # a +tools arm waits for its model's filter only; everything else shares the lanes from the start
    after = {_stage_name(a): [f"filter-{label[models[a]]}"] for a in arms if a.endswith("+tools")}
    done = run_.stages_in_lanes(sorted(filter_jobs + jobs, key=longest_first), recipe.lanes, after=after)
    filters = {label[m]: done[f"filter-{label[m]}"] for m in tool_models}
    for who, f in filters.items():
        log(f"filter ({who}): {f['per_tool']}")
    answers = {arm: done[_stage_name(arm)] for arm in arms}
    results = summarize(run_, recipe, answers, filters, counts)
    write_report(run_.dir)
    return results


def _groups(rows: list[dict]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for r in rows:
        groups.setdefault(f"task={r['task']}", []).append(r["correct"])
        if r["task"] == "arith":
            groups.setdefault(f"digits={r['digits']}", []).append(r["correct"])
            groups.setdefault(f"ops={r['ops']}", []).append(r["correct"])
    return groups


def _headline(rows: list[dict], key: str = "correct") -> list[int]:
    """``key`` of the arithmetic rows (the headline task), or of every row when there are none (a user's file)."""
    return [r[key] for r in rows if r["task"] == "arith"] or [r[key] for r in rows]


def summarize(run_: Run, recipe: ToolsRecipe, answers: dict[str, list[dict]], filters: dict, counts: dict) -> dict:
    """``filters``: each filter's result by the label of the model that scored it (``small``, ``large``)."""
    metrics, per_split = {}, {}
    for arm, rows in answers.items():
        metrics[f"{arm}/accuracy"] = mean_with_ci(_headline(rows), seed=recipe.seed)
        metrics[f"{arm}/all_tasks_accuracy"] = mean_with_ci([r["correct"] for r in rows], seed=recipe.seed)
        if arm.endswith("+tools") and recipe.ground_numbers:
            metrics[f"{arm}/ungrounded_accuracy"] = mean_with_ci(_headline(rows, "correct_ungrounded"),
                                                                 seed=recipe.seed)
        metrics[f"{arm}/calls_per_answer"] = {"value": sum(r["calls"] for r in rows) / max(1, len(rows)),
                                              "ci95": None}
        for g, vals in sorted(_groups(rows).items()):
            metrics[f"{arm}/{g}"] = mean_with_ci(vals, seed=recipe.seed)
            per_split.setdefault(g, {})[arm] = metrics[f"{arm}/{g}"]

    labels = {"small": recipe.model, "small+tools": f"{recipe.model} + tools",
              "large": str(recipe.compare_model), "large+tools": f"{recipe.compare_model} + tools"}

    def arm_rows(arm):
        rows = answers.get(arm)
        if rows is None:
            return None
        return (labels[arm], _headline(rows))

    best_large = arm_rows("large")  # the larger model as it is: without tools (the thesis comparison)
    small_tools = arm_rows("small+tools") or arm_rows("small")
    the_verdict = None if small_tools is None else verdict(  # None: only larger-model arms were asked for
        "accuracy (arithmetic)", small_tools, arm_rows("small") if "small+tools" in answers else None, best_large,
        seed=recipe.seed)
    by_task = {}
    for task in sorted({r["task"] for rows in answers.values() for r in rows} - {"arith"}):
        rows_of = {arm: [r["correct"] for r in rows if r["task"] == task] for arm, rows in answers.items()}
        if "small+tools" in rows_of and "large" in rows_of and rows_of["large"]:
            by_task[task] = verdict("accuracy", (labels["small+tools"], rows_of["small+tools"]),
                                    (labels["small"], rows_of["small"]) if "small" in rows_of else None,
                                    (labels["large"], rows_of["large"]), seed=recipe.seed)
    extra = {"verdict": the_verdict, "verdict_by_task": by_task, "calls": filters, "counts": counts, "arms": list(answers),
             "teacher": recipe.teacher, "tau": recipe.tau,
             "compare_model": recipe.compare_model,
             "examples": {arm: rows[:3] for arm, rows in answers.items()}}
    return run_.write_results(NAME, recipe.model, "world arithmetic + lookup" if not recipe.questions
                              else recipe.questions, metrics, per_split, extra)


def demo_recipe(out: str, model: str, seed: int, quick: bool) -> ToolsRecipe:
    """The study at demo size: 3,000 training problems (800 quick), half of them the filter's warm-up, and no
    large+tools arm (its filter is the study's longest stage); the full study's figures need ``n_train`` 8,000."""
    scale = 0.27 if quick else 1.0
    n_train = int(3000 * scale)
    return ToolsRecipe(model=model, seed=seed, out=out,
                       compare_model="builtin-large" if model == "builtin" else None,
                       arms=["small", "small+tools", "large"], n_train=n_train, seed_demos=n_train // 2, ops=[1],
                       n_test=max(48, int(160 * scale)), n_fact_train=int(90 * scale), n_fact_test=int(40 * scale))
