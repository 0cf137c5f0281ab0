"""Generation: seeded sampling is deterministic, batching does not change greedy output, beams are best first."""

from underdog.lm.generate import generate
from underdog.lm.score import score_tokens

PROMPTS = ["the cat", "a big dog ran far", "yes", "green house tree river stone"]


def test_greedy_batched_equals_single(tiny_lm):
    batched = generate(tiny_lm, PROMPTS, max_new_tokens=8, batch_size=4)
    for p, b in zip(PROMPTS, batched):
        single = generate(tiny_lm, [p], max_new_tokens=8, batch_size=1)[0][0]
        assert single.token_ids == b[0].token_ids
        assert abs(single.logprob - b[0].logprob) < 1e-3


def test_greedy_logprobs_match_scoring(tiny_lm):
    out = generate(tiny_lm, PROMPTS, max_new_tokens=6)
    for p, samples in zip(PROMPTS, out):
        s = samples[0]
        ctx = tiny_lm.tokenizer.encode(p)
        ref = score_tokens(tiny_lm, [(ctx, s.token_ids)])[0]
        assert abs(ref.logprob - s.logprob) < 1e-3
        assert ref.is_greedy


def test_sampling_is_seeded(tiny_lm):
    a = generate(tiny_lm, PROMPTS, n=3, method="sample", seed=7, max_new_tokens=6)
    b = generate(tiny_lm, PROMPTS, n=3, method="sample", seed=7, max_new_tokens=6)
    c = generate(tiny_lm, PROMPTS, n=3, method="sample", seed=8, max_new_tokens=6)
    assert [[s.token_ids for s in x] for x in a] == [[s.token_ids for s in x] for x in b]
    assert [[s.token_ids for s in x] for x in a] != [[s.token_ids for s in x] for x in c]
    assert all(len(x) == 3 for x in a)


def test_beams_best_first(tiny_lm):
    out = generate(tiny_lm, PROMPTS, n=4, method="beam", max_new_tokens=5)
    for samples in out:
        assert len(samples) == 4
        lps = [s.logprob for s in samples]
        assert lps == sorted(lps, reverse=True)
        assert len({tuple(s.token_ids) for s in samples}) == 4
    greedy = generate(tiny_lm, PROMPTS, max_new_tokens=5)
    for g, b in zip(greedy, out):
        assert b[0].logprob >= g[0].logprob - 1e-4  # the best beam is at least as likely as greedy


def test_stop_strings_and_finish_reasons(tiny_lm):
    free = generate(tiny_lm, PROMPTS, max_new_tokens=8)
    assert all(s[0].finish_reason in {"length", "eos"} for s in free)
    text = free[1][0].text
    stop = text[2:4] if len(text) >= 4 else text[-1:]
    out = generate(tiny_lm, [PROMPTS[1]], max_new_tokens=8, stop=[stop])[0][0]
    assert out.finish_reason == "stop"
    assert stop not in out.text
    assert text.startswith(out.text)
    assert len(out.token_logprobs) == len(out.token_ids)
