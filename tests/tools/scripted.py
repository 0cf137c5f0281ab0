"""A tiny Llama whose next token follows a script: it writes ``script`` (the text the model should produce,
tool calls included, results excluded), skipping over the tool results the runtime inserts. The real model runs
underneath on the real KV cache, so its logits can be checked against a full re-encoding."""

from __future__ import annotations

import re

import torch

from tests.tiny_models import build_model, make_tokenizer
from underdog.lm.kv import CACHE_ARG
from underdog.lm.load import LM

_RESULT = re.compile(r"(?<=->) [^\]]*\]")


class Scripted(torch.nn.Module):
    def __init__(self, inner, tokenizer, script: str):
        super().__init__()
        self.inner, self.tok = inner, tokenizer
        self.config, self.generation_config = inner.config, inner.generation_config
        self.script = tokenizer.encode(script, add_special_tokens=False)
        self.generated: list[list[int]] = []
        self.last_inner_logits = None

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=True, **kw):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=use_cache, **kw)
        self.last_inner_logits = out.logits[:, -1].detach().clone()
        if kw.get(CACHE_ARG) is None:  # the prompt pass
            self.generated = [[] for _ in range(input_ids.shape[0])]
        else:
            for row, ts in zip(self.generated, input_ids.tolist()):
                row.extend(ts)
        forced = torch.full_like(out.logits[:, -1], -1e4)
        for r, row in enumerate(self.generated):
            model_text = _RESULT.sub("", self.tok.decode(row, skip_special_tokens=False))
            nxt = self.tok.eos_token_id
            for k in range(len(self.script)):
                if self.tok.decode(self.script[:k]) == model_text:
                    nxt = self.script[k]
                    break
            forced[r, nxt] = 0.0
        out.logits = out.logits.clone()
        out.logits[:, -1] = forced
        return out


def scripted_lm(script: str) -> LM:
    tok = make_tokenizer()
    inner = build_model("llama", tok)
    return LM(Scripted(inner, tok, script), tok, name="scripted")
