"""Tasks and call proposers of the tools study (``methods.tools``).

Tasks: world word problems (``arith``: a name from the world's families holds some of a category's
creatures, then one to three operations change the count; every operand has the same number of digits, 1 to
4; the answer is exact), fact questions a lookup answers (``facts``: "Who is the parent of Y?" for a leaf name
Y, stated once in the world's documents), or a user's JSONL ``{"question", "answer"}`` split into train and
test. Each item is ``{"id", "task", "question", "prompt", "completion", "answers", ...}`` with prompt
``Question: <q> Answer:`` and completion `` <answer>.``.

Proposers of candidate calls (step 1 of Toolformer's annotation): ``propose_program`` is a programmatic
teacher: at the answer position, the calls that compute the answer (``calls="chain"``: one calculator call
per operation, as Toolformer's calculator calls are, each starting from the previous result, `` [Calculator(
2391 - 874) -> 1517] [Calculator( 1517 * 3) -> 4551] 4551.``; ``calls="expression"``: the problem's whole
expression in one call; a lookup of the question), and one call that does not (two operands of the story
combined another way, the right first call one sentence too early, or, for one-call expressions, the first
operation only; a lookup of a noun for 1 in 10 problems); for a user's questions, the operations over the first
two numbers in the question and a lookup of its words. ``propose_with_model`` asks a model, few-shot, to write
the call after ``[`` at the answer position (sampling, 2 per text). The filter (``methods.tools``) decides.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from underdog.io import read_jsonl, write_jsonl
from underdog.lm.generate import generate
from underdog.tools.runtime import parse_call
from underdog.world import make_world

OP_TEXT = {
    "+": ("{n} gets {x} more.", "{n} finds {x} more."),
    "-": ("{n} gives away {x}.", "{n} loses {x}."),
    "*": ("Then {n} has {x} times as many.",),
    "/": ("Then {n} splits them into {x} equal groups and keeps one.",),
}


def call_text(tool: str, arg: str, output: str | None) -> str:
    """``[Tool(arg) -> output]``, or ``[Tool(arg) ->]`` for the call without its result."""
    return f"[{tool}({arg}) ->]" if output is None else f"[{tool}({arg}) -> {output}]"


def _operand(rng: random.Random, d: int, low: int = 0) -> int:
    return rng.randint(max(low, 10 ** (d - 1)), 10**d - 1)


def word_problem(rng: random.Random, name: str, creature: str, d: int, k: int) -> dict:
    """One problem with ``k`` operations on ``d``-digit operands; the expression mirrors the story."""
    value = _operand(rng, d, 1)
    expr, additive = f" {value}", False  # every number space-first, tokenized as in the question
    sentences = [f"{name} has {value} {creature}."]
    ops, steps = [], []
    for _ in range(k):
        op = rng.choice("+-*/")
        x = None
        if op == "-" and value >= 10 ** (d - 1):
            x = rng.randint(10 ** (d - 1), min(value, 10**d - 1))
        elif op == "*":
            x = _operand(rng, d, 2)
        elif op == "/":
            lo, hi = max(2, 10 ** (d - 1)), min(10**d - 1, value)
            divisors = [q for q in range(lo, hi + 1) if value % q == 0][:50] if hi >= lo else []
            x = rng.choice(divisors) if divisors else None
        if x is None:
            op, x = "+", _operand(rng, d, 1)
        sentences.append(rng.choice(OP_TEXT[op]).format(n=name, x=x, c=creature))
        if op in "*/" and additive:
            expr, additive = f"({expr}) {op} {x}", False
        else:
            expr, additive = f"{expr} {op} {x}", additive or op in "+-"
        new = {"+": value + x, "-": value - x, "*": value * x, "/": value // x}[op]
        steps.append([value, op, x, new])
        value = new
        ops.append(op)
    question = " ".join(sentences) + f" How many {creature} does {name} have now?"
    return {"question": question, "answer": str(value), "expr": expr, "digits": d, "ops": k, "op_list": ops,
            "steps": steps}


def _item(i: str, task: str, question: str, answers: list[str], **extra) -> dict:
    return {"id": i, "task": task, "question": question, "prompt": f"Question: {question} Answer:",
            "completion": f" {answers[0]}.", "answers": answers, **extra}


def world_tasks(seed: int, n_train: int, n_test: int, n_fact_train: int, n_fact_test: int, digits: list[int],
                ops: list[int]) -> tuple[list[dict], list[dict], list[str]]:
    world = make_world(seed)
    family = [f for f in world.facts if f.kind == "family" and f.rel == "parent"]
    names = sorted({f.a for f in family} | {f.b for f in family})
    creatures = sorted({f.a + "s" for f in world.facts if f.kind == "hierarchy" and f.rel == "isa"})
    split = {}
    for part, n in (("train", n_train), ("test", n_test)):
        rng = random.Random(f"tools-{seed}-{part}")
        items, seen = [], set()
        cells = [(d, k) for d in digits for k in ops]
        while len(items) < n:
            d, k = cells[len(items) % len(cells)]
            p = word_problem(rng, rng.choice(names), rng.choice(creatures), d, k)
            if p["question"] in seen:
                continue
            seen.add(p["question"])
            items.append(_item(f"{part}-arith-{len(items):05d}", "arith", p.pop("question"), [p.pop("answer")], **p))
        split[part] = items
    parents = {f.b: f.a for f in family}
    leaves = sorted(set(parents) - {f.a for f in family})
    random.Random(f"tools-{seed}-facts").shuffle(leaves)
    for part, chosen in (("train", leaves[:n_fact_train]), ("test", leaves[n_fact_train:n_fact_train + n_fact_test])):
        split[part] += [_item(f"{part}-facts-{k:05d}", "facts", f"Who is the parent of {y}?", [parents[y]],
                              query=f"parent of {y}", subject=y) for k, y in enumerate(chosen)]
    return split["train"], split["test"], list(world.sentence_index[0].sentences)


def user_tasks(path: str, test_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    from underdog import UnderdogError

    rows = read_jsonl(path, required={"question": str, "answer": (str, int, float)}, optional={"id": str})
    if len(rows) < 2:
        raise UnderdogError(f"{path}: needs at least 2 questions (train and test), got {len(rows)}")
    items = [_item(str(r.get("id") or f"q{k:05d}"), "user", r["question"].strip(), [str(r["answer"]).strip()])
             for k, r in enumerate(rows)]
    random.Random(f"tools-{seed}-user").shuffle(items)
    n_test = max(1, round(len(items) * test_fraction))
    return items[n_test:], items[:n_test]


def load_tasks(recipe, tmp: Path) -> dict:
    """Write ``train.jsonl``, ``test.jsonl`` (and the world's sentences as ``passages.jsonl``); counts."""
    if recipe.questions:
        train, test = user_tasks(recipe.questions, recipe.test_fraction, recipe.seed)
        passages: list[str] = []
    else:
        train, test, passages = world_tasks(recipe.seed, recipe.n_train, recipe.n_test, recipe.n_fact_train,
                                            recipe.n_fact_test, recipe.digits, recipe.ops)
    write_jsonl(tmp / "train.jsonl", train)
    write_jsonl(tmp / "test.jsonl", test)
    if passages:
        write_jsonl(tmp / "passages.jsonl", [{"text": s} for s in passages])
    return {"train": len(train), "test": len(test), "passages": len(passages)}


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text)


def chain_calls(steps: list[list]) -> list[str]:
    """The problem's one-operation calculator inputs, in story order: `` 2391 - 874``, then `` 1517 * 3``, each
    combining the previous result with the next number of the story."""
    return [f" {a} {op} {x}" for a, op, x, _ in steps]


def propose_program(items: list[dict], seed: int, calls: str = "chain") -> list[dict]:
    """Candidate calls ``{"item", "text", "pos", "tool", "input", "kind"}`` (see the module docstring). With
    ``calls="chain"`` the useful calls of a word problem are one operation each, chained at the answer position:
    candidate ``k`` (``kind`` ``step``, the last one ``answer``) carries ``step``, its place in the chain, and
    ``chain``, the chain's inputs, so the filter can score it with the chain's other calls around it."""
    rng = random.Random(f"tools-propose-{seed}")
    out = []
    for it in items:
        text, pos = it["prompt"] + it["completion"], len(it["prompt"])
        first_stop = it["prompt"].find(". ")

        def add(tool, arg, kind, at=pos, it=it, text=text, **extra):
            out.append({"item": it["id"], "text": text, "pos": at, "tool": tool, "input": arg, "kind": kind,
                        **extra})

        if it["task"] == "arith":
            nums = _numbers(it["question"])
            if calls == "chain" and it.get("steps"):
                chain = chain_calls(it["steps"])
                for k, arg in enumerate(chain):
                    add("Calculator", arg, "answer" if k == len(chain) - 1 else "step", step=k, chain=chain)
                first = chain[0]
                kinds = ["random-pair", "too-early"] if first_stop > 0 else ["random-pair"]
            else:
                add("Calculator", it["expr"], "answer")
                first = it["expr"]
                kinds = ["first-op", "random-pair", "too-early"] if it["ops"] > 1 and first_stop > 0 \
                    else ["random-pair"]
            distractor = rng.choice(kinds)
            if distractor == "first-op":
                add("Calculator", f" {nums[0]} {it['op_list'][0]} {nums[1]}", "first-op")
            elif distractor == "too-early":
                add("Calculator", first, "too-early", first_stop + 1)
            else:
                a, b = rng.sample(nums, 2)
                add("Calculator", f" {a} {rng.choice('+-*')} {b}", "random-pair")
            if rng.random() < 0.1:
                add("Lookup", it["question"].split(" How many ")[-1].split()[0], "noun")
        elif it["task"] == "facts":
            add("Lookup", it["query"], "answer")
            add("Lookup", rng.choice(["parent", "child"]), "vague")
        else:
            nums = _numbers(it["question"])
            if len(nums) >= 2:
                for op in "+-*/":
                    add("Calculator", f" {nums[0]} {op} {nums[1]}", f"pair{op}")
            words = " ".join(w for w in re.findall(r"[A-Za-z]+", it["question"]) if len(w) > 3)[:80]
            if words:
                add("Lookup", words, "words")
    return out


def propose_with_model(lm, items: list[dict], registry, seed: int, batch_size: int = 32, k: int = 2) -> list[dict]:
    """Candidate calls written by ``lm`` after ``[`` at the answer position, from a few-shot prompt built with
    the program teacher's answer-position calls on three training texts (each tool's first example)."""
    shots = [c for c in propose_program(items[:40], seed, "expression") if c["kind"] == "answer"][:3]
    header = "".join(f"{c['text'][:c['pos']]} {call_text(c['tool'], c['input'], None)[:-1]}\n" for c in shots)
    prompts = [f"{header}{it['prompt']} [" for it in items]
    outs = generate(lm, prompts, n=k, method="sample", max_new_tokens=40, stop=["->", "]", "\n"], seed=seed,
                    batch_size=batch_size)
    cands = []
    for it, samples in zip(items, outs):
        seen = set()
        for s in samples:
            try:
                tool, arg = parse_call(s.text.strip())
            except ValueError:
                tool, arg = "", s.text.strip()[:80]
            if (tool, arg) in seen:
                continue
            seen.add((tool, arg))
            cands.append({"item": it["id"], "text": it["prompt"] + it["completion"], "pos": len(it["prompt"]),
                          "tool": tool or "(malformed)", "input": arg, "kind": "model"})
    return cands
