"""eval.emergence: parameter counts, the Chinchilla fit, the compute-optimal split, and the emergence scores."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_models import build_model, make_tokenizer
from underdog.eval import emergence as em

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def chinchilla(n, d):
    c = CHINCHILLA
    return c["E"] + c["A"] / np.power(n, c["alpha"]) + c["B"] / np.power(d, c["beta"])


def chinchilla_points(noise: float = 0.005, seed: int = 0, k: int = 10):
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e10, k), np.geomspace(1e9, 1e12, k)))
    loss = chinchilla(n, d) * (1 + noise * np.random.default_rng(seed).standard_normal(n.size))
    return n, d, loss


def test_parameter_counts_leave_out_embeddings():
    tok = make_tokenizer()
    llama = build_model("llama", tok)
    counts = em.parameter_counts(llama)
    emb = llama.get_input_embeddings().weight.numel()
    out = 0 if llama.config.tie_word_embeddings else llama.get_output_embeddings().weight.numel()
    assert counts["total"] == sum(p.numel() for p in llama.parameters())
    assert counts["non_embedding"] == counts["total"] - emb - out
    gpt2 = build_model("gpt2", tok)
    c2 = em.parameter_counts(gpt2)
    wpe = gpt2.transformer.wpe.weight.numel()
    assert c2["non_embedding"] == c2["total"] - gpt2.transformer.wte.weight.numel() - wpe  # tied head, learned pos


def test_flops():
    assert em.train_flops(1e6, 2e7) == 6 * 1e6 * 2e7
    assert em.eval_flops(1e6, 10) == 2e7


def test_fit_recovers_chinchilla_and_predicts_far_beyond():
    n, d, loss = chinchilla_points()
    fit = em.fit_law(n, d, loss, n_boot=8)
    assert abs(fit.alpha - 0.34) < 0.05 and abs(fit.beta - 0.28) < 0.05
    assert abs(fit.E / 1.69 - 1) < 0.05
    far = (1e12, 2e13)  # 100x the largest N, 20x the largest D
    assert abs(float(fit.predict(*far)) / chinchilla(*far) - 1) < 0.02
    for k in em.PARAMS:
        lo, hi = fit.ci95[k]
        assert lo <= hi


def test_fit_needs_five_positive_points():
    with pytest.raises(ValueError, match="at least 5"):
        em.fit_law([1, 2, 3], [1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="positive"):
        em.fit_law([1, 2, 3, 4, 0], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], n_boot=0)


def test_compute_optimal_is_the_minimum_on_the_isoflop():
    fit = em.LawFit(objective=0.0, n_points=0, **CHINCHILLA)
    c = 5.76e23
    opt = em.compute_optimal(fit, c)
    assert opt["params"] * opt["tokens"] * 6 == pytest.approx(c)
    for f in (0.8, 1.25):
        n = opt["params"] * f
        assert chinchilla(n, c / 6 / n) > opt["loss"]
    assert 1e10 < opt["params"] < 1e11  # Chinchilla's own budget: tens of billions of parameters


def test_leave_largest_out_on_a_clean_law():
    n, d, loss = chinchilla_points(noise=0.002, k=6)
    out = em.leave_largest_out(n, d, loss)
    assert out["headline"]["params"] == n.max()
    assert abs(out["headline"]["rel_error"]) < 0.02


def test_emergence_score_tells_a_step_from_a_ramp():
    c = np.geomspace(1e10, 1e15, 6)
    step = em.emergence_score(c, [0.25, 0.25, 0.26, 0.25, 0.9, 0.92])
    assert step["sharpness"] > 0.9 and step["emergent"] == "yes" and step["jump_at"] == 4
    ramp = em.emergence_score(c, np.linspace(0.25, 0.9, 6))
    assert ramp["sharpness"] == pytest.approx(0.2) and ramp["r2_log_linear"] > 0.99 and ramp["emergent"] == "no"
    lower_better = em.emergence_score(c, [3.0, 3.0, 3.0, 3.0, 1.0, 1.0], higher_is_better=False)
    assert lower_better["rise"] == pytest.approx(2.0) and lower_better["emergent"] == "yes"
    gap = em.emergence_score([1e9, 1e10, 1e11, 1e12, 1e16], [0.25, 0.25, 0.25, 0.26, 0.9])
    assert gap["sharpness"] > 0.9 and gap["emergent"].startswith("unresolved")
    flat = em.emergence_score(c, [0.25] * 6)
    assert flat["emergent"] == "no" and flat["sharpness"] == 0.0


def test_first_above_chance_with_a_ci():
    rng = np.random.default_rng(0)
    c = [1e9, 1e10, 1e11, 1e12]
    rates = [0.25, 0.27, 0.7, 0.9]
    items = [(rng.random(400) < r).astype(float) for r in rates]
    out = em.first_above_chance(c, items, chance=0.25, margin=0.05, n_boot=200)
    assert out["index"] == 2 and out["compute"] == 1e11
    assert out["ci95"][0] <= 1e11 <= out["ci95"][1]
    never = em.first_above_chance(c, [np.zeros(50)] * 4, chance=0.25)
    assert never["index"] is None and never["ci95"][1] is None


def test_pl_check_matches_exact_match_that_follows_p_to_the_l():
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 5, 2000)
    exact, probs = [], []
    for p in (0.3, 0.6, 0.9):
        exact.append((rng.random(len(lengths)) < p ** lengths).astype(float))
        probs.append(np.full(len(lengths), p))
    out = em.pl_check(exact, probs, lengths)
    assert out["mean_abs_gap"] < 0.03 and out["correlation"] > 0.99
