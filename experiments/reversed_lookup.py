"""Can a fresh model of the built-in shape learn the plainest reversed lookup, and how fast?

The drill is ``world.drills.back_pairs_text``'s: "pairs : a b , c d , e f . back : d c ." Half of a unit's
pairs are asked (so no answer can be told by elimination), and the loss is on the answers only (the word after
the asked one). The probe scores the right word against the first word of another pair of the same unit
(chance 0.5), on words the run trains on and on held-out ones. ``--single`` uses one-token words (lower-case
vocabulary pieces of the built-in tokenizer, half held out) so that no name has to be assembled from pieces;
otherwise words are nonsense words of a pretraining world (trained) and of the evaluation pool (held out).

    python experiments/reversed_lookup.py --steps 3000 --single --lr 5e-4 --out runs/exp/rl-single

Logs one JSON line per probe step to ``<out>/log.jsonl`` and prints it. Not part of the package: a
diagnostic whose figures are quoted in docs/builtin-model.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from underdog.lm.load import load
from underdog.world.words import make_words


def word_sets(tokenizer, single: bool, seed: int) -> tuple[list[list[int]], list[list[int]]]:
    """(trained, held-out) words as token-id lists."""
    if single:
        pieces = sorted(k for k in tokenizer.get_vocab() if re.fullmatch("\u0120[a-z]{3,}", k))
        random.Random(seed).shuffle(pieces)
        ids = [[tokenizer.convert_tokens_to_ids(p)] for p in pieces]
        return ids[: len(ids) // 2], ids[len(ids) // 2:]
    enc = lambda ws: [tokenizer.encode(" " + w, add_special_tokens=False) for w in ws]  # noqa: E731
    return enc(make_words(600, seed, pool="pretrain")), enc(make_words(300, seed + 1, pool="eval"))


class Drill:
    def __init__(self, tokenizer, half: bool) -> None:
        tok = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
        self.head, self.comma, self.mid, self.stop = tok("pairs :"), tok(" ,"), tok(" . back :"), tok(" .\n")
        self.half = half

    def unit(self, rng: random.Random, words: list[list[int]]) -> tuple[list[int], list[int], list]:
        """Token ids, labels (answers only), and the probe items [(prefix ids, right, other)]."""
        chosen = rng.sample(words, 2 * rng.randint(2, 6))
        pairs = list(zip(chosen[::2], chosen[1::2]))
        ids = list(self.head)
        for i, (a, b) in enumerate(pairs):
            ids += (self.comma if i else []) + a + b
        ids += self.mid
        labels = [-100] * len(ids)
        asked = rng.sample(range(len(pairs)), len(pairs) // 2 if self.half else len(pairs))
        items = []
        for j, p in enumerate(asked):
            a, b = pairs[p]
            if j:
                ids += self.comma
                labels += [-100] * len(self.comma)
            other = pairs[rng.choice([q for q in range(len(pairs)) if q != p])][0]
            items.append((list(ids) + b, a, other))
            ids += b + a
            labels += [-100] * len(b) + a
        ids += self.stop
        labels += [-100] * len(self.stop)
        return ids, labels, items

    def batch(self, rng: random.Random, words, rows: int, length: int, pad: int):
        x = torch.full((rows, length), pad)
        y = torch.full((rows, length), -100)
        for r in range(rows):
            ids, labels = [], []
            while True:
                i, lab, _ = self.unit(rng, words)
                if len(ids) + len(i) > length:
                    break
                ids += i
                labels += lab
            x[r, : len(ids)] = torch.tensor(ids)
            y[r, : len(ids)] = torch.tensor(labels)
        return x, y


@torch.no_grad()
def probe(model, items) -> float:
    """Share of items whose right word is likelier than the other pair's first word (summed log-probs)."""
    model.eval()
    right = 0
    for prefix, a, other in items:
        scores = []
        for cand in (a, other):
            ids = torch.tensor([prefix + cand])
            logp = model(ids).logits[0, :-1].log_softmax(-1)
            pos = range(len(prefix) - 1, len(prefix) - 1 + len(cand))
            scores.append(sum(logp[p, t].item() for p, t in zip(pos, cand)))
        right += scores[0] > scores[1]
    model.train()
    return right / len(items)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--single", action="store_true")
    ap.add_argument("--all-asked", action="store_true", help="ask every pair (elimination possible)")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--probe-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load("builtin").tokenizer
    trained, held = word_sets(tokenizer, args.single, args.seed)
    drill = Drill(tokenizer, half=not args.all_asked)
    prng = random.Random(1234)
    probes = {name: [it for _ in range(60) for it in drill.unit(prng, ws)[2]][:150]
              for name, ws in (("trained", trained), ("held", held))}
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=args.hidden * 11 // 4,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.heads, max_position_embeddings=args.length,
                      tie_word_embeddings=False, rope_theta=args.rope_theta)
    model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, args.steps // 50)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1, s / args.steps))))
    rng, t0, losses = random.Random(args.seed), time.time(), []
    with open(out / "log.jsonl", "w") as log:
        for step in range(1, args.steps + 1):
            x, y = drill.batch(rng, trained, args.rows, args.length, tokenizer.pad_token_id)
            loss = model(input_ids=x, labels=y).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if step % args.probe_every == 0 or step == args.steps:
                row = {"step": step, "answer_loss": round(sum(losses) / len(losses), 3),
                       "minutes": round((time.time() - t0) / 60, 1),
                       **{k: round(probe(model, v), 3) for k, v in probes.items()}}
                losses = []
                print(json.dumps(row), flush=True)
                log.write(json.dumps(row) + "\n")
                log.flush()
    model.save_pretrained(out / "final")


if __name__ == "__main__":
    main()
