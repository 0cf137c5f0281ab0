"""Augmented fine-tuning (Lampinen et al. 2025): the model writes its own in-context inferences about the
training data, and fine-tuning uses documents + those inferences.

``local``: for each training sentence, a few-shot prompt asks for a rephrasing and a reversal
("Rephrase: s =>", "Reverse: s =>"). ``global`` links a training sentence to other facts of the training set
and asks for their consequence, in one of two ways. ``linked_prompts`` (the default) searches the whole set for
the sentences that share a content word with the target sentence (``world.retrieve``), those that continue a
chain first, and gives the model each pair as premises, linking term in the middle ("Infer: s1 s2 =>"): the
model writes only the conclusion. A second round pairs each conclusion with a sentence again, which reaches
3-premise chains. ``global_prompts`` (the paper's layout, for models with a long window) puts as much of the
set as fits in context, the documents sharing the most words with the target first, and the model picks the
second premise itself ("Infer: s => s2 => conclusion"). On the seed-7 world the built-in model (stage 16)
wrote 45% true linked conclusions over two rounds and 68% true local rewrites; on an earlier
0.27M-parameter stage about 10% of its document-context inferences were true, since picking the right
partner among ~50 facts in view is the binding it cannot do.
The few-shot examples come from a pretraining-pool world, so they share no word with the user's data.
Output is cleaned: junk (empty, unfinished, copies of the source, other formats) is dropped and counted,
duplicates are removed; each kept augmentation keeps its source sentence. Where the world's facts are
known (the built-in world), each augmentation is parsed back and checked for truth.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from underdog.lm.generate import generate
from underdog.world import Parser, closure, entails
from underdog.world.episodes import pretrain_world, rewrite_line
from underdog.world.render import strip_leadin
from underdog.world.retrieve import SentenceIndex, content_words, singular, split_sentences

KIND_PREFIX = {"rephrase": "Rephrase:", "reverse": "Reverse:", "infer": "Infer:", "link": "Infer:"}
SOURCE_SPLITS = {"rephrase": ("rephrasing",), "reverse": ("reversal",), "infer": ("syllogism", "two_hop"),
                 "link": ("syllogism", "two_hop")}
_WORD = re.compile(r"[A-Za-z]+")
_GLUE = {"the", "a", "an", "of", "is", "are", "than", "more", "less", "all", "some", "no", "every", "each", "any",
         "kind", "type", "include", "child", "parent", "grandparent", "grandchild", "sibling", "named", "has",
         "have", "and", "that", "there", "always", "never", "sometimes", "compared", "to", "with", "when", "one"}


def few_shot(kind: str, k: int = 4, seed: int = 0) -> str:
    """``k`` example lines of ``kind`` from pretraining-pool worlds (never the user's vocabulary)."""
    rng = random.Random(f"fewshot-{kind}-{seed}")
    lines: list[str] = []
    index = 0
    while len(lines) < k:
        world = pretrain_world(10_007 + seed, index)
        index += 1
        qs = [q for q in world.questions if q["split"] in SOURCE_SPLITS[kind]]
        rng.shuffle(qs)
        lines += [rewrite_line(world, q) for q in qs[: k - len(lines)]]
    return "\n".join(lines) + "\n"


def clean(source: str, output: str, kind: str) -> tuple[str | None, str]:
    """The augmentation in ``output`` (a generated continuation after "<Kind>: source =>"), or None with the
    reason it was dropped."""
    text = output.strip().split("\n")[0].strip()
    if not text:
        return None, "empty"
    if kind == "infer":
        if "=>" not in text:
            return None, "no '=>'"
        text = text.split("=>", 1)[1].strip()
    if "=>" in text or ":" in text:
        return None, "format"
    if not text.endswith("."):
        return None, "unfinished"
    words = _WORD.findall(text)
    if len(words) < 3 or len(words) > 30:
        return None, "length"
    content = [w.lower().removesuffix("s") for w in words if w.lower() not in _GLUE]
    if len(content) >= 2 and content[0] == content[-1]:
        return None, "self-reference"  # "Tam is the child of Tam": a copying failure, never a fact
    copies = {form for sentence in split_sentences(source)
              for form in (sentence.rstrip(".?").lower(), strip_leadin(sentence).rstrip(".").lower())}
    if text.rstrip(".").lower() in copies:
        return None, "copy of source"
    return text, "kept"


def local_prompts(sentences: Sequence[str], seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, source, prompt) for a rephrasing and a reversal of every sentence."""
    shots = {kind: few_shot(kind, seed=seed) for kind in ("rephrase", "reverse")}
    return [(kind, s, f"{shots[kind]}{KIND_PREFIX[kind]} {strip_leadin(s)} =>") for s in sentences
            for kind in ("rephrase", "reverse")]


def _link_position(sentence: str, word: str) -> float:
    """Where ``word`` (a content word, singular) sits in ``sentence``: 0 first word, 1 last word."""
    tokens = [t.lower() for t in _WORD.findall(sentence)]
    for k, t in enumerate(tokens):
        if word in (t, singular(t)):
            return k / max(1, len(tokens) - 1)
    return 0.5


def linked_prompts(documents: Sequence[dict], links: int = 2, seed: int = 0,
                   conclusions: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """(kind "link", "s1 s2", prompt) for every training sentence and up to ``links`` other sentences of the
    training set that share a content word with it (each pair once). Partners where the shared word sits at
    opposite ends of the two sentences come first: "X is a kind of Y" + "Any Y has wings" is a chain with a
    conclusion, "X is a kind of Y" + "Z is a kind of Y" rarely is (seed-7 world, 2 links: the premise pairs of
    331 of 357 two-premise syllogism questions are among the prompts, 298 when partners are drawn at random).
    The pair is ordered so that the shared word ends the first premise and starts the second ("A are B. B are
    C."), the order of a chain of reasoning; after a few-shot block of such chains, the model writes their
    conclusion. With ``conclusions`` (a previous round's output), only pairs of a conclusion and another
    sentence are asked: a second round reaches the 3-premise chains that no pair of training sentences holds."""
    rng = random.Random(f"linked-{seed}")
    shots = few_shot("link", seed=seed)
    training = dict.fromkeys(strip_leadin(s) for d in documents for s in split_sentences(d["text"]))
    index = SentenceIndex(list(training) + [c for c in dict.fromkeys(conclusions) if c not in training])
    sentences, words = index.sentences, index.words
    targets = range(len(training), len(sentences)) if conclusions else range(len(sentences))

    def positions(i: int, j: int) -> tuple[float, float]:
        shared = sorted(words[i] & words[j])[0]
        return _link_position(sentences[i], shared), _link_position(sentences[j], shared)

    def chain_gap(i: int, j: int) -> float:
        pos_i, pos_j = positions(i, j)
        return abs(pos_i - pos_j)

    prompts, seen = [], set()
    for i in targets:
        partners = index.partners(i)
        rng.shuffle(partners)
        partners.sort(key=lambda j: -chain_gap(i, j))
        for j in partners[:links]:
            if frozenset((i, j)) in seen:
                continue
            seen.add(frozenset((i, j)))
            pos_i, pos_j = positions(i, j)
            first, second = (sentences[i], sentences[j]) if pos_i >= pos_j else (sentences[j], sentences[i])
            premises = f"{first} {second}"
            prompts.append(("link", premises, f"{shots}{KIND_PREFIX['link']} {premises} =>"))
    return prompts


def global_prompts(tokenizer, documents: Sequence[dict], budget: int, per_document: int = 4,
                   seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, source, prompt) for up to ``per_document`` target sentences of each document: a few-shot block,
    then as much of the training set as fits in ``budget`` tokens (documents sharing the most words with the
    target sentence first, so the facts it links to are likely in view), then "Infer: <target sentence>" right
    after the documents, so the inference reads the documents just above it."""
    rng = random.Random(f"global-{seed}")
    shots = few_shot("infer", seed=seed)
    lengths = {d["id"]: len(tokenizer.encode(d["text"] + "\n", add_special_tokens=False)) for d in documents}
    words = {d["id"]: content_words(d["text"]) for d in documents}
    room = budget - len(tokenizer.encode(shots, add_special_tokens=False)) - 64
    prompts = []
    for doc in documents:
        sentences = split_sentences(doc["text"])
        for s in rng.sample(sentences, min(per_document, len(sentences))):
            target = content_words(s)
            others = [d for d in documents if d["id"] != doc["id"]]
            rng.shuffle(others)
            others.sort(key=lambda d: -len(words[d["id"]] & target))
            context, used = [doc], lengths[doc["id"]]
            for d in others:
                if used + lengths[d["id"]] <= room:
                    context.append(d)
                    used += lengths[d["id"]]
            rng.shuffle(context)
            block = "".join(d["text"] + "\n" for d in context) + "\n"
            prompts.append(("infer", s, f"{shots}\n{block}{KIND_PREFIX['infer']} {strip_leadin(s)}"))
    return prompts


MAX_NEW_TOKENS = 24  # seed-7 augmentations are 10-11 tokens (median), 16 at most; a longer one is junk already


def generate_augmentations(lm, prompts: Sequence[tuple[str, str, str]], max_new_tokens: int = MAX_NEW_TOKENS,
                           batch_size: int = 16, beams: int = 4,
                           exclude: Sequence[dict] = ()) -> tuple[list[dict], dict]:
    """Run the prompts (beam search with ``beams`` beams, or greedy for 1; stop at newline), keep each prompt's
    most likely candidate that is not junk, and deduplicate. Returns (augmentations, counts); a prompt whose
    every candidate is junk is counted under its best candidate's reason. A tiny model's single best guess is
    often junk ("Some Bs are Bs."); its second or third beam is often the inference (seed-7 world, 60
    syllogism pairs, builtin: 17 true conclusions greedy, 41 with 4 beams). Augmentations already in ``exclude``
    count as duplicates."""

    method = "beam" if beams > 1 else "greedy"
    outputs = generate(lm, [p for _, _, p in prompts], n=beams, method=method, max_new_tokens=max_new_tokens,
                       stop=["\n"], batch_size=batch_size, progress=True)
    kept, seen, reasons = [], {a["text"].lower() for a in exclude}, Counter()
    for (kind, source, _), samples in zip(prompts, outputs):
        cleaned = [clean(source, s.text, kind) for s in samples]
        text, why = next(((t, w) for t, w in cleaned if t is not None), cleaned[0])
        if text is None:
            reasons[why] += 1
            continue
        key = text.lower()
        if key in seen:
            reasons["duplicate"] += 1
            continue
        seen.add(key)
        reasons["kept"] += 1
        kept.append({"kind": kind, "source": source, "text": text})
    return kept, {"generated": len(prompts), **dict(reasons)}


def truth_rate(augmentations: Sequence[dict], facts) -> dict:
    """For worlds with known facts: the fraction of augmentations that parse to a statement entailed by the
    world (and how many could not be parsed)."""

    parser, known = Parser(facts), closure(facts)
    by_kind: dict[str, list[int]] = {}
    unparsed = 0
    for a in augmentations:
        fact = parser.parse(a["text"])
        if fact is None:
            unparsed += 1
        ok = fact is not None and entails(known, fact)
        a["true"] = bool(ok)
        by_kind.setdefault(a["kind"], []).append(int(ok))
    total = [v for vs in by_kind.values() for v in vs]
    return {"true_fraction": sum(total) / len(total) if total else None, "unparsed": unparsed,
            "by_kind": {k: sum(v) / len(v) for k, v in by_kind.items()}}
