"""Generation with tool calls: the call runs, its result is in the text, decoding resumes on the same KV cache
(the logits equal a full re-encoding), calls are bounded, and greedy / sampling / beam all work."""

import torch

from tests.tiny_models import build_model, make_tokenizer
from tests.tools.scripted import scripted_lm
from underdog.lm.generate import generate
from underdog.lm.load import LM
from underdog.lm.toolgen import generate_with_tools
from underdog.tools import ToolRegistry, default_registry


def test_without_calls_greedy_and_beam_match_lm_generate():
    tok = make_tokenizer()
    lm = LM(build_model("llama", tok), tok, name="tiny")
    prompts = ["the cat sat on", "a red dog ran far near the"]
    ref = generate(lm, prompts, max_new_tokens=8)
    got = generate_with_tools(lm, prompts, default_registry(), max_new_tokens=8)
    for (a,), (b,) in zip(ref, got):
        assert a.token_ids == b.token_ids and abs(a.logprob - b.logprob) < 1e-4
    ref = generate(lm, prompts, n=2, method="beam", num_beams=3, max_new_tokens=6)
    got = generate_with_tools(lm, prompts, default_registry(), n=2, method="beam", num_beams=3, max_new_tokens=6)
    for a, b in zip(ref, got):
        assert [s.token_ids for s in a] == [s.token_ids for s in b]


def test_call_result_is_appended_and_the_cache_matches_a_full_reencoding():
    lm = scripted_lm(" so [Calculator(37*48) -> it is.")
    prompts = ["a big red dog ran far near the house", "the cat sat"]  # longest first (batch order); padded
    outs = generate_with_tools(lm, prompts, default_registry(), max_new_tokens=60)
    for (s,) in outs:
        assert s.text == " so [Calculator(37*48) -> 1776] it is."
        assert s.calls == [{"tool": "Calculator", "input": "37*48", "output": "1776", "ok": True,
                            "seconds": s.calls[0]["seconds"]}]
        assert s.finish_reason == "eos"
    inner, tok = lm.model.inner, lm.tokenizer
    for r, (p, (s,)) in enumerate(zip(prompts, outs)):
        ids = torch.tensor([tok.encode(p) + s.token_ids[:-1]])  # everything fed before the final EOS
        with torch.no_grad():
            full = inner(input_ids=ids).logits[0, -1]
        assert torch.allclose(full, lm.model.last_inner_logits[r], atol=1e-4)


def test_calls_per_answer_are_bounded_and_stop_strings_skip_results():
    lm = scripted_lm(" [Calculator(7/2) -> [Calculator(1+1) -> [Calculator(2+2) -> end.")
    (s,), = generate_with_tools(lm, ["the cat"], default_registry(), max_calls=2, max_new_tokens=80, stop=["."])
    assert [c["output"] for c in s.calls] == ["3.5", "2", "error: call limit"]
    assert s.text == " [Calculator(7/2) -> 3.5] [Calculator(1+1) -> 2] [Calculator(2+2) -> error: call limit] end"
    assert s.finish_reason == "stop"


def test_sampling_and_beam_run_tools_and_a_user_tool():
    registry = ToolRegistry()
    registry.register("Echo", lambda s: s.upper(), "upper-cases its input")
    lm = scripted_lm(" [Echo(red dog) -> ok.")
    for kwargs in ({"method": "sample", "n": 2, "temperature": 0.7}, {"method": "beam", "n": 2, "num_beams": 3}):
        outs = generate_with_tools(lm, ["the cat", "a dog ran"], registry, max_new_tokens=40, **kwargs)
        for samples in outs:
            assert len(samples) == 2
            assert samples[0].text == " [Echo(red dog) -> RED DOG] ok."
            assert samples[0].calls[0]["output"] == "RED DOG"
