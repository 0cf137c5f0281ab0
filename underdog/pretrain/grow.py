"""Grow a trained Llama wider without changing what it computes (Net2Net-style function-preserving widening).

``widen_state_dict(state, factor)`` turns the weights of a Llama with hidden size h, n heads and MLP size m
into weights for hidden ``factor*h``, ``factor*n`` heads of the same head size and MLP ``factor*m``: the
residual stream becomes ``factor`` copies of the old one, every head and MLP unit is copied ``factor`` times,
and every linear map is tiled ``factor x factor`` and divided by ``factor``, so each copy receives exactly the
old input. RMSNorm of a tiled vector equals the tiled RMSNorm, so the norms are tiled too; the final norm is
divided by ``factor`` because the output embedding (tied or untied, tiled alike) sums the ``factor`` copies.
The grown model's logits equal the small model's (tested), and ``perturb`` adds a little noise so that
training can make the copies differ. This is how ``builtin-large`` starts from ``builtin`` when compute is too
short to train it from scratch (``init_from`` a smaller model in a pretraining recipe).

``deepen_state_dict(state, n_layers)`` grows depth instead: each new layer is a copy of the old layer it
follows, with its attention output and MLP down projections zeroed, so it adds nothing to the residual stream
and the deeper model's logits equal the old ones (tested); training then moves the zeroed projections first
(their inputs are the copied layer's, already useful), as a LoRA B matrix starting at zero does.

``separate_embeddings`` undoes a collapse instead of a shape change: tokens that early training never needed
apart end up with one embedding (the stage-7 ``builtin`` had cosine 0.995 between " more" and " less", and
0.99 between digits), and with tied embeddings such tokens can then be neither told apart in the input nor
predicted apart in the output; the gradient that would separate them vanishes with their difference. Each
group's rows are re-drawn around their mean, so a continued stage can learn to use the difference.
``collapsed_tokens`` finds such groups: frequent tokens whose embeddings nearly coincide.

``interpolate_state_dicts`` is WiSE-FT (Wortsman et al. 2022): the weights a stage ends with, interpolated with
the weights it started from. A stage that trades one skill for another (a gain on some splits, a loss on others)
often keeps most of both at the midpoint.
"""

from __future__ import annotations

import torch


def _tile(w: torch.Tensor, factor: int, dims: tuple[int, ...]) -> torch.Tensor:
    reps = [factor if d in dims else 1 for d in range(w.dim())]
    return w.repeat(*reps)


def widen_state_dict(state: dict[str, torch.Tensor], factor: int) -> dict[str, torch.Tensor]:
    """Weights of a ``factor``-times wider Llama computing the same function (tied or untied)."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    out: dict[str, torch.Tensor] = {}
    for name, w in state.items():
        if name.endswith("embed_tokens.weight") or name == "lm_head.weight":
            out[name] = _tile(w, factor, (1,))
        elif name.endswith("norm.weight"):
            tiled = _tile(w, factor, (0,))
            out[name] = tiled / factor if name == "model.norm.weight" else tiled
        elif w.dim() == 2:  # q, k, v, o, gate, up, down projections
            out[name] = _tile(w, factor, (0, 1)) / factor
        elif name.endswith("rotary_emb.inv_freq"):
            out[name] = w
        else:
            raise ValueError(f"do not know how to widen {name} {tuple(w.shape)}")
    return out


def perturb(model: torch.nn.Module, scale: float = 1e-3, seed: int = 0) -> None:
    """Add noise of ``scale`` times each weight matrix's std, so duplicated units can diverge in training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.add_(torch.randn(p.shape, generator=g) * p.std() * scale)


def interpolate_state_dicts(start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor],
                            weight: float) -> dict[str, torch.Tensor]:
    """``(1 - weight) * start + weight * trained``, tensor by tensor (both of one shape)."""
    if start.keys() != trained.keys():
        raise ValueError(f"the weights differ in names: {sorted(set(start) ^ set(trained))[:5]}")
    return {k: ((1 - weight) * start[k].float() + weight * trained[k].float()).to(trained[k].dtype)
            for k in trained}


def widen_factor(small: dict, large: dict) -> int:
    """The integer factor from config ``small`` to ``large`` (hidden, heads and MLP all scaled by it)."""
    factor = large["hidden_size"] // small["hidden_size"]
    same = (small["vocab_size"] == large["vocab_size"]
            and small["hidden_size"] * factor == large["hidden_size"]
            and small["num_attention_heads"] * factor == large["num_attention_heads"]
            and small.get("num_key_value_heads", small["num_attention_heads"]) * factor
            == large.get("num_key_value_heads", large["num_attention_heads"])
            and small["intermediate_size"] * factor == large["intermediate_size"]
            and small["hidden_size"] // small["num_attention_heads"]
            == large["hidden_size"] // large["num_attention_heads"])
    if factor < 1 or not same:
        raise ValueError("can only widen a model by one integer factor over hidden, heads and MLP size "
                         "(same vocabulary and head size)")
    return factor


def deepen_state_dict(state: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Weights of a Llama with ``n_layers`` layers computing the same function as ``state``'s: new layer ``k``
    takes old layer ``k * old // n_layers``; each old layer's first copy is itself, later copies are zeroed in
    ``o_proj`` and ``down_proj`` (so 4 -> 6 layers gives 0, 0', 1, 2, 2', 3)."""
    prefix = "model.layers."
    old = 1 + max(int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix))
    if n_layers < old:
        raise ValueError(f"can only deepen: {old} layers -> {n_layers}")
    out = {k: v for k, v in state.items() if not k.startswith(prefix)}
    seen: set[int] = set()
    for k in range(n_layers):
        src = k * old // n_layers
        for name, w in state.items():
            if name.startswith(f"{prefix}{src}."):
                rest = name[len(f"{prefix}{src}."):]
                silent = src in seen and rest in ("self_attn.o_proj.weight", "mlp.down_proj.weight")
                out[f"{prefix}{k}.{rest}"] = torch.zeros_like(w) if silent else w.clone()
        seen.add(src)
    return out


def separate_embeddings(model, groups: list[list[int]], scale: float = 0.5, seed: int = 0) -> None:
    """Re-draw the embedding rows of each group of token ids as their mean plus Gaussian noise of ``scale``
    times the embedding matrix's std, seeded. An untied output embedding gets the same noise (in its own std),
    so a token's input and output rows stay aligned as tied ones are: a circuit that copies a token from the
    context to the output (trained on every other token) then carries the new difference too."""
    g = torch.Generator().manual_seed(seed)
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not matrices[0]:
        matrices.append(output.weight)
    with torch.no_grad():
        stds = [weight.std() for weight in matrices]
        for ids in groups:
            noise = torch.randn((len(ids), matrices[0].shape[1]), generator=g)
            for weight, std in zip(matrices, stds):
                weight[ids] = weight[ids].mean(0) + noise * std * scale


def collapsed_tokens(model, tokenizer, texts: list[str], min_count: int = 30,
                     threshold: float = 0.98) -> list[tuple[str, str, float]]:
    """Pairs of tokens seen at least ``min_count`` times in ``texts`` whose input embeddings have cosine
    similarity >= ``threshold``, most similar first, as (token, token, cosine). Synonyms ("kind"/"type")
    legitimately show up; opposites ("more"/"less") are a model that cannot tell them apart."""
    from collections import Counter

    counts = Counter(i for t in texts for i in tokenizer.encode(t, add_special_tokens=False))
    ids = sorted(i for i, n in counts.items() if n >= min_count)
    if len(ids) < 2:
        return []
    with torch.no_grad():
        emb = torch.nn.functional.normalize(model.get_input_embeddings().weight[ids].float(), dim=1)
        sim = torch.triu(emb @ emb.T, diagonal=1)
    rows, cols = torch.nonzero(sim >= threshold, as_tuple=True)
    pairs = [(tokenizer.decode([ids[r]]), tokenizer.decode([ids[c]]), round(float(sim[r, c]), 3))
             for r, c in zip(rows.tolist(), cols.tolist())]
    return sorted(pairs, key=lambda p: -p[2])
