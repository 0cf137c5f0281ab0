"""Scoring: batched equals unbatched, context sharing changes nothing, and lm-eval's HFLM agrees within 1e-4."""

import random

import pytest

from underdog.lm import score
from underdog.lm.score import encode_pair


def _requests(n=40, seed=0):
    rng = random.Random(seed)
    words = "the cat dog sat on a mat red blue green big small ran far near house tree".split()
    contexts, conts = [], []
    for _ in range(n // 4):
        ctx = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
        for _ in range(4):
            contexts.append(ctx + rng.choice(["", " "]))
            conts.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 5))))
    contexts.append("")  # empty context uses the prefix token
    conts.append("the cat")
    return contexts, conts


def test_batched_equals_unbatched(tiny_lm):
    contexts, conts = _requests()
    batched = score(tiny_lm, contexts, conts, batch_size=7)
    single = [score(tiny_lm, [c], [x], batch_size=1, share_context=False)[0] for c, x in zip(contexts, conts)]
    for b, s in zip(batched, single):
        assert abs(b.logprob - s.logprob) < 1e-4
        assert len(b.token_logprobs) == len(s.token_logprobs)
        assert b.is_greedy == s.is_greedy
    unshared = score(tiny_lm, contexts, conts, batch_size=5, share_context=False)
    assert max(abs(a.logprob - b.logprob) for a, b in zip(unshared, batched)) < 1e-4


def test_order_and_sum(tiny_lm):
    contexts, conts = _requests(12, seed=1)
    fwd = score(tiny_lm, contexts, conts)
    rev = score(tiny_lm, contexts[::-1], conts[::-1])
    assert [round(s.logprob, 4) for s in fwd] == [round(s.logprob, 4) for s in rev[::-1]]
    for s in fwd:
        assert s.logprob == pytest.approx(sum(s.token_logprobs), rel=1e-6, abs=1e-4)
        assert s.logprob < 0


def test_trailing_space_moves_to_continuation(tiny_lm):
    a = encode_pair(tiny_lm.tokenizer, "the cat ", "sat")
    b = encode_pair(tiny_lm.tokenizer, "the cat", " sat")
    assert a == b


def test_long_context_is_left_truncated(tiny_lm):
    long_ctx = " ".join(["the cat sat"] * 200)
    s = score(tiny_lm, [long_ctx], [" on a mat"])[0]
    assert s.n_tokens > 0 and s.logprob < 0


def test_matches_lm_eval_hflm(tiny_lm):
    pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra")  # CI installs dev; never skipped there
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    contexts, conts = _requests(60, seed=2)
    hflm = HFLM(pretrained=tiny_lm.model, tokenizer=tiny_lm.tokenizer, batch_size=8, device="cpu")
    requests = [Instance("loglikelihood", {}, (c, x), i) for i, (c, x) in enumerate(zip(contexts, conts))]
    theirs = hflm.loglikelihood(requests, disable_tqdm=True)
    ours = score(tiny_lm, contexts, conts, batch_size=16)
    assert max(abs(o.logprob - t[0]) for o, t in zip(ours, theirs)) < 1e-4
    assert [o.is_greedy for o in ours] == [bool(t[1]) for t in theirs]


def _reference_encode_pair(tokenizer, context, continuation):
    """lm-eval's split, one ``tokenizer.encode`` call at a time (what ``encode_pairs`` batches)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    if not context:
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [bos], tokenizer.encode(continuation, add_special_tokens=False)
    ctx = tokenizer.encode(context)
    return ctx, tokenizer.encode(context + continuation)[len(ctx):]


def test_batched_encoding_equals_one_call_at_a_time(tiny_lm):
    from underdog.lm.score import encode_pairs

    contexts, conts = _requests(40, seed=3)
    contexts += ["", "the  ", "a\n", "the cat"]
    conts += ["dog", "cat", " mat", "sat"]
    tok = tiny_lm.tokenizer
    expected = [_reference_encode_pair(tok, c, x) for c, x in zip(contexts, conts)]
    assert encode_pairs(tok, contexts, conts) == expected
    # a backend left truncating (a tokenizer.json that sets it) goes through the transformers call instead
    tok.backend_tokenizer.enable_truncation(max_length=3)
    try:
        assert encode_pairs(tok, contexts, conts) == expected
    finally:
        tok.backend_tokenizer.no_truncation()


def test_every_attention_path_gives_the_same_numbers(llama_dir, monkeypatch):
    """sdpa (boolean 4D mask), eager (additive float mask), and no custom mask at all (each request its own row,
    as for flash attention) agree, with long contexts cut to the window and continuations of 1-5 tokens."""
    import importlib

    from underdog.lm import load

    score_module = importlib.import_module("underdog.lm.score")
    contexts, conts = _requests(40, seed=4)
    contexts += [" ".join(["the cat sat"] * 150)] * 3  # past the 256-token window
    conts += [" on", " on a mat", " a big red dog ran far near"]
    lm = load(llama_dir, device="cpu")
    reference = score(lm, contexts, conts, batch_size=1, share_context=False)
    assert score_module.mask_kind(lm.model) == "bool"
    runs = {"sdpa": score(lm, contexts, conts, batch_size=6)}
    lm.model.set_attn_implementation("eager")
    assert score_module.mask_kind(lm.model) == "float"
    runs["eager"] = score(lm, contexts, conts, batch_size=6)
    monkeypatch.setattr(score_module, "mask_kind", lambda model: None)
    runs["no 4D mask"] = score(lm, contexts, conts, batch_size=6)
    for name, got in runs.items():
        assert max(abs(a.logprob - b.logprob) for a, b in zip(got, reference)) < 1e-4, name
        assert [a.is_greedy for a in got] == [b.is_greedy for b in reference], name
        assert [a.n_tokens for a in got] == [b.n_tokens for b in reference], name
