"""Benchmark: a generation with k tool calls resumed on its KV cache vs re-encoding the prefix after each call.

Same model (a ~20M-parameter Llama built in code, random weights, its next token forced by a script so it
writes k calculator calls), one prompt of ~``--prompt-words`` words. ``cache``: ``lm.toolgen`` runs each call
and decodes on through the result on the same cache. ``re-encode``: what a loop around a plain generator does:
decode up to ``->``, run the tool, append the result to the text, and start again, encoding the whole prefix.
Both use the same decoding loop, so the difference is the re-encoding. Prints seconds and the ratio per k.

    python benchmarks/tool_cache.py [--calls 1,2,4,8] [--prompt-words 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import torch

from underdog.lm.kv import CACHE_ARG

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_lm, text  # noqa: E402

_RESULT = re.compile(r"(?<=->) [^\]]*\]")


class Scripted(torch.nn.Module):
    """Runs the real model, then forces the next token of ``script`` (tool results skipped) after ``prompt``."""

    def __init__(self, inner, tokenizer, prompt: str, script: str):
        super().__init__()
        self.inner, self.tok = inner, tokenizer
        self.config, self.generation_config = inner.config, inner.generation_config
        self.prompt_len = len(tokenizer.encode(prompt))
        self.script = tokenizer.encode(script, add_special_tokens=False)
        self.prefix_text = [tokenizer.decode(self.script[:k]) for k in range(len(self.script) + 1)]
        self.seen: list[int] = []

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=True, **kw):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=use_cache, **kw)
        ids = input_ids[0].tolist()
        self.seen = ids[self.prompt_len:] if kw.get(CACHE_ARG) is None else self.seen + ids
        model_text = _RESULT.sub("", self.tok.decode(self.seen))
        k = self.prefix_text.index(model_text) if model_text in self.prefix_text else len(self.script)
        nxt = self.script[k] if k < len(self.script) else self.tok.eos_token_id
        logits = torch.full_like(out.logits[:, -1:], -1e4)
        logits[0, 0, nxt] = 0.0
        out.logits = logits
        return out


def main() -> None:
    from underdog.lm.load import LM
    from underdog.lm.toolgen import generate_with_tools
    from underdog.tools import default_registry, result_text, run_call

    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", default="1,2,4,8")
    ap.add_argument("--prompt-words", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    base = build_lm()
    rng = random.Random(0)
    prompt = text(rng, args.prompt_words)
    registry = default_registry()
    rows = []
    for k in [int(c) for c in args.calls.split(",")]:
        script = "".join(f" the answer is [Calculator({rng.randint(10, 999)}*{rng.randint(10, 999)}) ->"
                         for _ in range(k)) + " done"
        lm = LM(Scripted(base.model, base.tokenizer, prompt, script), base.tokenizer, name="scripted")
        budget = len(lm.model.script) + 4
        times = {"cache": [], "re-encode": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            (fast,), = generate_with_tools(lm, [prompt], registry, max_new_tokens=budget, max_calls=k)
            times["cache"].append(time.perf_counter() - start)
            start = time.perf_counter()
            written = ""
            for _ in range(k + 1):
                (part,), = generate_with_tools(lm, [prompt + written], registry, max_new_tokens=budget,
                                               max_calls=0, stop=["->"])
                written += part.text
                if part.finish_reason != "stop":
                    break
                written += "->" + result_text(run_call(registry, written[written.rfind("[") + 1:]))
            times["re-encode"].append(time.perf_counter() - start)
            assert written == fast.text, (written, fast.text)
        best = {m: min(t) for m, t in times.items()}
        rows.append({"calls": k, "cache_s": best["cache"], "reencode_s": best["re-encode"],
                     "ratio_reencode_over_cache": best["re-encode"] / best["cache"],
                     "prompt_tokens": lm.model.prompt_len, "generated_tokens": len(fast.token_ids)})
        print(f"k={k}: cache {best['cache']:.3f}s, re-encode {best['re-encode']:.3f}s, "
              f"ratio {best['re-encode'] / best['cache']:.2f}x ({lm.model.prompt_len} prompt tokens, "
              f"{len(fast.token_ids)} generated)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
