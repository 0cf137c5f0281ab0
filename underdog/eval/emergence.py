"""Scale arithmetic and the two analyses of scale: Chinchilla's parametric law, and emergence vs the metric.

Counting: ``parameter_counts(model)`` gives ``total`` and ``non_embedding`` parameters (every parameter not in an
``nn.Embedding`` or the output layer: token and learned position embeddings, and an untied LM head, are left
out, as Kaplan et al. count N); training FLOPs are ``C = 6 N D`` and evaluation FLOPs ``2 N T`` for T tokens
read (forward only). The law: ``L(N, D) = E + A / N^alpha + B / D^beta`` fitted as Hoffmann et al. (2022) fit
it: the Huber loss (``delta`` = 1e-3) between the log of the predicted and of the observed loss, with the
prediction written ``LSE(a - alpha log N, b - beta log D, e)`` (``A = e^a``, ``B = e^b``, ``E = e^e``),
minimised by L-BFGS from the best starts of their grid; bootstrap CIs resample the points. The
compute-optimal split of a budget C follows from the fitted law in closed form, and ``leave_largest_out``
is the honest test of a law: fit without the largest model, predict its loss.
Emergence (Wei et al. 2022 vs Schaeffer et al. 2023): ``emergence_score`` of one metric over a family ordered
by compute is taken on its frontier (the best value at or below each compute): the largest rise between
neighbouring scales as a share of the whole rise (1/k for an even rise over k steps, 1 when it all happens in one
step) and the R^2 of a straight line in log-compute; a curve
"looks emergent" when it rises by at least a margin, its sharpness is >= 0.5 and that line explains < 90% of
it, unless that jump spans more than a third of the family's log-compute range ("unresolved": the scales in
the gap were not measured). ``first_above_chance`` finds the smallest scale whose mean beats chance by a margin with its 95% CI above
chance, and bootstraps the questions (the same resample for every model) for a CI on that scale.
``pl_check`` compares exact match with p^L, p the per-token probability of the answer's L tokens.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

HUBER_DELTA = 1e-3
PARAMS = ("E", "A", "B", "alpha", "beta")
# Hoffmann et al.'s grid of starting points: alpha, beta, e, a, b
GRID = (np.arange(0.0, 2.01, 0.5), np.arange(0.0, 2.01, 0.5), np.arange(-1.0, 1.01, 0.5),
        np.arange(0.0, 25.1, 5.0), np.arange(0.0, 25.1, 5.0))
BOUNDS = [(0.0, 5.0), (0.0, 5.0), (-5.0, 5.0), (-10.0, 60.0), (-10.0, 60.0)]  # wide; only keep exp() finite
EMERGENT_SHARPNESS = 0.5
EMERGENT_MAX_R2 = 0.9
MAX_JUMP_SPAN = 1 / 3  # share of the family's log-compute range the largest jump may span to count as sharp


def parameter_counts(model) -> dict[str, int]:
    """``{"total", "non_embedding", "embedding"}`` parameters of a torch model (shared tensors counted once)."""
    import torch

    seen: dict[int, tuple[int, bool]] = {}
    embedding_ids = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            embedding_ids.add(id(module.weight))
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None:
        embedding_ids.update(id(p) for p in output.parameters())
    for p in model.parameters():
        seen.setdefault(id(p), (p.numel(), id(p) in embedding_ids))
    total = sum(n for n, _ in seen.values())
    embedding = sum(n for n, emb in seen.values() if emb)
    return {"total": int(total), "non_embedding": int(total - embedding), "embedding": int(embedding)}


def train_flops(n_params: float, tokens: float) -> float:
    """Training compute C = 6 N D (forward + backward)."""
    return 6.0 * float(n_params) * float(tokens)


def eval_flops(n_params: float, tokens: float) -> float:
    """Evaluation compute: 2 N per token read (forward only)."""
    return 2.0 * float(n_params) * float(tokens)


# ---------------------------------------------------------------------------------------------------- the law
@dataclass
class LawFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float  # summed Huber loss at the optimum
    n_points: int
    ci95: dict[str, list[float]] | None = None

    def predict(self, n: float | np.ndarray, d: float | np.ndarray) -> np.ndarray:
        return self.E + self.A / np.power(n, self.alpha) + self.B / np.power(d, self.beta)

    def as_dict(self) -> dict:
        return asdict(self)


def _objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
               delta: float) -> tuple[float, np.ndarray]:
    """Summed Huber loss of log-loss residuals and its gradient, theta = (alpha, beta, e, a, b)."""
    alpha, beta, e, a, b = theta
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    top = terms.max(0)
    w = np.exp(terms - top)
    lse = top + np.log(w.sum(0))
    soft = w / w.sum(0)
    r = lse - log_l
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum()
    dr = np.where(small, r, delta * np.sign(r))
    grad = np.array([(dr * soft[0] * -log_n).sum(), (dr * soft[1] * -log_d).sum(), (dr * soft[2]).sum(),
                     (dr * soft[0]).sum(), (dr * soft[1]).sum()])
    return float(loss), grad


def _grid_objective(log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray, delta: float) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """Every grid start and its objective, vectorised."""
    starts = np.array(list(itertools.product(*GRID)))
    alpha, beta, e, a, b = (starts[:, i:i + 1] for i in range(5))
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(starts), len(log_n)))])
    lse = np.logaddexp.reduce(terms, axis=0)
    r = np.abs(lse - log_l)
    loss = np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)).sum(1)
    return starts, loss


def _minimise(starts: np.ndarray, log_n, log_d, log_l, delta: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize

    best, best_loss = None, np.inf
    for start in starts:
        res = minimize(_objective, start, args=(log_n, log_d, log_l, delta), jac=True, method="L-BFGS-B",
                       bounds=BOUNDS, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if res.fun < best_loss:
            best, best_loss = res.x, float(res.fun)
    return best, best_loss


def _law(theta: np.ndarray, loss: float, n: int) -> LawFit:
    alpha, beta, e, a, b = (float(v) for v in theta)
    return LawFit(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=alpha, beta=beta,
                  objective=loss, n_points=n)


def fit_law(params: Sequence[float], tokens: Sequence[float], loss: Sequence[float], delta: float = HUBER_DELTA,
            n_starts: int = 8, n_boot: int = 100, seed: int = 0) -> LawFit:
    """Fit ``L = E + A/N^alpha + B/D^beta`` (see the module docstring); ``ci95`` from ``n_boot`` bootstrap
    resamples of the points (each refit from the full fit and the best grid start of its resample). BLAS runs
    on one thread here: L-BFGS-B's tiny matrix steps are 20x slower on a busy multi-threaded BLAS."""
    import scipy.optimize  # noqa: F401  (loads its BLAS first, so that the limit below reaches it)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _fit_law(params, tokens, loss, delta, n_starts, n_boot, seed)


def _fit_law(params, tokens, loss, delta: float, n_starts: int, n_boot: int, seed: int) -> LawFit:
    n, d, lo = (np.asarray(x, dtype=float) for x in (params, tokens, loss))
    if not (len(n) == len(d) == len(lo)):
        raise ValueError("params, tokens and loss must have the same length")
    if len(n) < 5:
        raise ValueError(f"the law has 5 parameters: it needs at least 5 points, got {len(n)}")
    if (n <= 0).any() or (d <= 0).any() or (lo <= 0).any():
        raise ValueError("params, tokens and loss must all be positive")
    log_n, log_d, log_l = np.log(n), np.log(d), np.log(lo)
    starts, grid_loss = _grid_objective(log_n, log_d, log_l, delta)
    theta, best = _minimise(starts[np.argsort(grid_loss)[:n_starts]], log_n, log_d, log_l, delta)
    fit = _law(theta, best, len(n))
    if n_boot:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_boot):
            i = rng.integers(0, len(n), len(n))
            s, g = _grid_objective(log_n[i], log_d[i], log_l[i], delta)
            th, loss_b = _minimise(np.vstack([theta, s[np.argmin(g)]]), log_n[i], log_d[i], log_l[i], delta)
            b = _law(th, loss_b, len(n))
            draws.append([getattr(b, k) for k in PARAMS])
        arr = np.array(draws)
        fit.ci95 = {k: [float(np.quantile(arr[:, j], 0.025)), float(np.quantile(arr[:, j], 0.975))]
                    for j, k in enumerate(PARAMS)}
    return fit


def compute_optimal(fit: LawFit, compute: float) -> dict[str, float]:
    """The N and D minimising the fitted loss at ``C = 6 N D`` (Hoffmann et al., eq. 4), and that loss; a law
    with alpha or beta at 0 has no optimum (ValueError)."""
    if fit.alpha <= 0 or fit.beta <= 0 or fit.A <= 0 or fit.B <= 0:
        raise ValueError(f"the fitted law (alpha={fit.alpha:.3g}, beta={fit.beta:.3g}) has no compute optimum")
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / (fit.alpha + fit.beta))
    a = fit.beta / (fit.alpha + fit.beta)
    n_opt = g * (compute / 6.0) ** a
    d_opt = compute / 6.0 / n_opt
    return {"compute": float(compute), "params": float(n_opt), "tokens": float(d_opt),
            "loss": float(fit.predict(n_opt, d_opt))}


def leave_largest_out(params: Sequence[float], tokens: Sequence[float], loss: Sequence[float],
                      delta: float = HUBER_DELTA, seed: int = 0) -> dict:
    """Fit on every point of the models smaller than the largest N, predict the largest model's points; the
    headline is its point with the most tokens. Returns the fit, and per point the predicted and observed loss
    with the relative error."""
    n, d, lo = (np.asarray(x, dtype=float) for x in (params, tokens, loss))
    largest = n == n.max()
    fit = fit_law(n[~largest], d[~largest], lo[~largest], delta=delta, n_boot=0, seed=seed)
    points = []
    for ni, di, li in zip(n[largest], d[largest], lo[largest]):
        pred = float(fit.predict(ni, di))
        points.append({"params": float(ni), "tokens": float(di), "observed": float(li), "predicted": pred,
                       "rel_error": (pred - li) / li})
    head = max(points, key=lambda p: p["tokens"])
    return {"fit": fit.as_dict(), "points": points, "headline": head}


# ------------------------------------------------------------------------------------------------- emergence
def emergence_score(compute: Sequence[float], values: Sequence[float], higher_is_better: bool = True,
                    margin: float = 0.1) -> dict:
    """Sharpness of one metric's curve over a family (see the module docstring): ``sharpness`` (largest rise
    between neighbouring scales / (best - worst)), ``r2_log_linear`` (R^2 of value ~ log10 compute), ``rise``
    (last - first, in the better direction), ``jump_at`` (index of the scale after the largest jump) and
    ``emergent`` ("yes"/"no")."""
    c, y = np.asarray(compute, dtype=float), np.asarray(values, dtype=float)
    order = np.argsort(c, kind="stable")
    c, y = c[order], y[order]
    # the compute frontier: the best value reached at or below each compute (checkpoints of several sizes
    # interleave in compute, so the raw sequence zig-zags; Wei et al.'s curves are one model per scale)
    s = np.maximum.accumulate(y if higher_is_better else -y)
    steps = np.diff(s)
    span = float(s.max() - s.min())
    sharp = float(steps.max() / span) if len(steps) and span > 0 and steps.max() > 0 else 0.0
    x = np.log10(c)
    if len(y) >= 3 and np.var(s) > 0 and np.var(x) > 0:
        slope, icpt = np.polyfit(x, s, 1)
        r2 = float(1 - np.sum((s - (slope * x + icpt)) ** 2) / np.sum((s - s.mean()) ** 2))
    else:
        r2 = float("nan")
    rise = float(s[-1] - s[0]) if len(s) else 0.0
    emergent = rise >= margin and sharp >= EMERGENT_SHARPNESS and not (r2 >= EMERGENT_MAX_R2)
    # a jump across a wide gap in compute is not resolved: the rise may be smooth in the scales not measured
    span = float(np.diff(x)[int(np.argmax(steps))] / (x[-1] - x[0])) if len(steps) and x[-1] > x[0] else 0.0
    label = ("unresolved (the jump spans a compute gap)" if span > MAX_JUMP_SPAN else "yes") if emergent else "no"
    return {"sharpness": sharp, "r2_log_linear": r2, "rise": rise,
            "jump_at": int(order[int(np.argmax(steps)) + 1]) if len(steps) else None, "jump_span": span,
            "emergent": label}


def _first_above(means: np.ndarray, lows: np.ndarray | None, chance: float, margin: float) -> int | None:
    ok = means >= chance + margin
    if lows is not None:
        ok &= lows > chance
    hits = np.flatnonzero(ok)
    return int(hits[0]) if len(hits) else None


def first_above_chance(compute: Sequence[float], items: Sequence[Sequence[float]], chance: float,
                       margin: float = 0.05, n_boot: int = 500, seed: int = 0) -> dict:
    """The smallest-compute model whose mean score over the same questions is >= chance + margin with its
    95% CI above chance. ``items[m]`` holds model m's per-question scores (same questions, same order for all).
    The CI on that scale resamples the questions (one resample for every model at once) and takes the
    2.5/97.5% quantiles of the first scale beating chance + margin in each; a resample where no model does
    counts as beyond the family (CI upper end ``None``)."""
    c = np.asarray(compute, dtype=float)
    order = np.argsort(c, kind="stable")
    x = np.asarray([np.asarray(items[i], dtype=float) for i in order])
    n_q = x.shape[1]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_q, size=(n_boot, n_q))
    boot_means = x[:, idx].mean(2)  # models x resamples
    lows = np.quantile(boot_means, 0.025, axis=1)
    first = _first_above(x.mean(1), lows, chance, margin)
    draws = [_first_above(boot_means[:, b], None, chance, margin) for b in range(n_boot)]
    sorted_c = c[order]
    ranks = np.array([len(c) if d is None else d for d in draws], dtype=float)
    lo_rank, hi_rank = np.quantile(ranks, 0.025), np.quantile(ranks, 0.975)

    def at(rank: float) -> float | None:
        r = int(np.ceil(rank))
        return None if r >= len(c) else float(sorted_c[r])

    return {"compute": None if first is None else float(sorted_c[first]),
            "index": None if first is None else int(order[first]),
            "ci95": [at(lo_rank), at(hi_rank)], "chance": chance, "margin": margin}


def pl_check(exact: Sequence[Sequence[float]], token_prob: Sequence[Sequence[float]],
             lengths: Sequence[int]) -> dict:
    """Schaeffer et al.'s relation per model: observed exact match vs the mean over questions of p_i^L_i, p_i
    the geometric-mean probability of question i's L_i answer tokens (teacher-forced). Returns per model
    ``observed`` and ``predicted``, and over the family the mean absolute gap and the correlation."""
    obs = np.array([np.mean(e) for e in exact], dtype=float)
    lens = np.asarray(lengths, dtype=float)
    pred = np.array([np.mean(np.asarray(p, dtype=float) ** lens) for p in token_prob])
    corr = float(np.corrcoef(obs, pred)[0, 1]) if len(obs) >= 3 and obs.std() > 0 and pred.std() > 0 else None
    return {"observed": obs.tolist(), "predicted": pred.tolist(), "mean_abs_gap": float(np.mean(np.abs(obs - pred))),
            "correlation": corr, "mean_length": float(lens.mean()) if len(lens) else 0.0}
