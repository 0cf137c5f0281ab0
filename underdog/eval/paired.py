"""Paired comparison of two models on the same questions: is B better than A, by how much, and how sure?

Two accuracies from separate runs each carry their own bootstrap CI, and comparing the CIs wastes the pairing:
both models answered the very same questions. ``paired_difference`` bootstraps the per-question difference
(B correct minus A correct) instead, and counts the questions only one of them gets right. ``compare_runs``
applies it to ``underdog generalization`` runs: pairs of run folders, one per world, checked to hold the same
world and questions, pooled by split (``underdog compare``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from underdog import UnderdogError
from underdog.eval.metrics import bootstrap_ci
from underdog.world.questions import SPLITS


class CompareError(UnderdogError):
    """Two runs that cannot be compared question by question."""


def paired_difference(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict:
    """``{"value", "ci95", "n", "only_a", "only_b"}``: mean of ``b - a`` over paired per-question scores (0/1
    for accuracy) with its 95% bootstrap interval, and how many questions only A (only B) scores higher on."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired scores need equal lengths, got {len(x)} and {len(y)}")
    d = y - x
    lo, hi = bootstrap_ci(d, seed=seed)
    return {"value": float(d.mean()) if len(d) else float("nan"), "ci95": [lo, hi], "n": int(len(d)),
            "only_a": int((d < 0).sum()), "only_b": int((d > 0).sum())}


def _answers(run_dir: Path, method: str) -> tuple[dict, dict[str, tuple[str, bool]]]:
    results, stage = run_dir / "results.json", run_dir / "stages" / method / "result.json"
    if not results.is_file():
        raise CompareError(f"{run_dir}: no results.json (not a finished `underdog generalization` run)")
    if not stage.is_file():
        done = sorted(p.name for p in (run_dir / "stages").glob("*") if (p / "result.json").is_file())
        raise CompareError(f"{run_dir}: no answers of method {method!r}; methods in this run: {done}")
    world = json.loads(results.read_text()).get("world", {})
    answers = json.loads(stage.read_text())["result"]["answers"]
    return world, {a["id"]: (a["split"], bool(a["correct"])) for a in answers}


def compare_runs(runs_a: Sequence[str | Path], runs_b: Sequence[str | Path], method: str = "icl",
                 seed: int = 0) -> dict:
    """Paired B-minus-A accuracy by split, pooled over the pairs ``(runs_a[i], runs_b[i])``; each pair must be
    runs on the same world with the same questions. Returns ``{"method", "pairs", "by_split": {split: ...}}``."""
    if len(runs_a) != len(runs_b) or not runs_a:
        raise CompareError(f"give as many B runs as A runs (one pair per world): got {len(runs_a)} and {len(runs_b)}")
    pooled: dict[str, tuple[list[bool], list[bool]]] = {}
    for ra, rb in zip(runs_a, runs_b):
        (world_a, a), (world_b, b) = _answers(Path(ra), method), _answers(Path(rb), method)
        if world_a != world_b:
            raise CompareError(f"{ra} and {rb} ran on different worlds: {world_a} vs {world_b}")
        if a.keys() != b.keys():
            raise CompareError(f"{ra} and {rb} answered different questions ({len(a)} vs {len(b)}; "
                               f"{len(a.keys() ^ b.keys())} not in both): run both with the same --max-per-split")
        for qid, (split, correct) in a.items():
            xs, ys = pooled.setdefault(split, ([], []))
            xs.append(correct)
            ys.append(b[qid][1])
    by_split = {split: {"a": float(np.mean(pooled[split][0])), "b": float(np.mean(pooled[split][1])),
                        **paired_difference(*pooled[split], seed=seed)}
                for split in SPLITS if split in pooled}  # worlds are checked to use only these splits
    return {"method": method, "pairs": [[str(ra), str(rb)] for ra, rb in zip(runs_a, runs_b)],
            "by_split": by_split}


def comparison_table(result: dict) -> str:
    """Markdown: one row per split, A and B accuracy, B - A with its 95% CI, questions only A / only B got."""
    lines = ["| split | n | A | B | B - A [95% CI] | only A right | only B right |", "|---" * 7 + "|"]
    for split, r in result["by_split"].items():
        lo, hi = r["ci95"]
        lines.append(f"| {split} | {r['n']} | {r['a']:.3f} | {r['b']:.3f} | {r['value']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                     f"| {r['only_a']} | {r['only_b']} |")
    return "\n".join(lines)
