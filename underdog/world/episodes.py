"""Pretraining text for a tiny model: documents, in-context episodes and rewrites, mixed with drills.

``pretraining_texts(seed, n, mix)`` draws ``n`` texts (deterministic per seed) from many small ``pool="pretrain"``
worlds (a fresh world every ``TEXTS_PER_WORLD`` texts), so no word is shared with an evaluation world and the
model must read facts in context rather than memorise them. Kinds (``DEFAULT_MIX``): ``document`` (world
documents), ``icl`` (context documents or fact sentences with distractor facts, a blank line, then 3-6 answered
questions in the cloze format of ``questions.py``: ``question + " " + answer + "."``, one a line, over all six
splits; ``icl_facts``: fact-sentence contexts only; ``icl_docs``: document contexts only, the support documents
among distractor documents up to ~450 words, as in ``underdog generalization``; ``icl_hard``: fact contexts that
also state facts about every wrong option, so no option can be told apart by whether it appears in context;
``icl_dense``: a context, then every question it answers, 8-16; ``icl_infer``: the same contexts, then
"Infer:"/"Reverse:" rewrites of their facts; ``icl_near``: the retrieved contexts of ``tasks.icl``, question
neighbourhoods one sentence a line, then many questions; ``icl_near_focus``: the same around comparison and family
questions; ``icl_pairs``: comparison, family and category facts each naming its entities only once, then their
forward, rephrased and reversed questions; ``icl_pairs_compare``: comparisons alone; ``icl_pairs_flip``: their
reversals alone; ``icl_pairs_props``: one property per category), ``icl_qa`` (the same with "Question: <prefix>
...? Answer: <answer>." lines, sometimes with "Options: a; b; c; d."), ``rewrite`` ("Rephrase: s => s'", "Reverse:
s => s'", "Infer: s1 s2 => s3"), ``judge`` (facts, then statements judged Yes/No, True/False or Correct/Incorrect
against them, or QA answers judged Correct/Incorrect), and the drills of ``world.drills``: ``copy`` ("list : a b c
. again : a b c ."), ``copy_mixed`` (lists that mix in the templates' English words), ``back_pairs`` (word pairs
asked back to front; ``back_pairs_gap`` with template words between), ``recall`` ("Name link word." lines, then
the same lines shuffled, so only the name before the link tells the word after it), ``recall_slot`` (the recalled
word mid-line, where a comparison's comparator sits), ``recall_swap`` (such lines asked as stated or with their
names swapped, "more" and "less" flipped), ``swap_role`` and ``swap_xor`` (the same on one line, biased so that
the flip can be learnt), ``recall_chain`` (comparison chains whose inner names stand in two lines, so the
comparator decides the name after "than"; ``recall_chain_more``: every pair stated with "more";
``recall_pairs_more`` and ``recall_pairs_family``: disjoint pairs, the lookup alone) and ``numbers``. Each text
holds about 100-600 whitespace-separated words.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from underdog.world import World, make_world, open_question, support_documents
from underdog.world.drills import (
    back_pairs_text,
    chain_compare_text,
    copy_mixed_text,
    copy_text,
    fill,
    numbers_text,
    pair_text,
    recall_slot_text,
    recall_swap_text,
    recall_text,
    swap_role_text,
    swap_xor_settings,
    swap_xor_text,
)
from underdog.world.render import LEADINS, PHRASINGS, capitalize, sentence

DEFAULT_MIX: dict[str, float] = {"document": 0.15, "icl": 0.25, "icl_qa": 0.10, "rewrite": 0.15, "copy": 0.20,
                                 "judge": 0.10, "numbers": 0.05}
TEXTS_PER_WORLD = 20
TEMPLATE_TEXT = ("Question: ...? Options: Answer:", "Rephrase: Reverse: Infer: =>", "list : again :",
                 "Is it true that ? Yes. No.", "True or false? True. False.", "Correct or incorrect? Correct.",
                 "Incorrect.", "count : = ", "Which is more, or ?", "Is more than ?")
"""Words of the episode templates (kept in ``stopwords.txt`` so no nonsense word equals one)."""


@dataclass
class Episode:
    """An in-context episode: its text, the fact ids stated in its context and the questions it answers."""

    text: str
    context: list[str]
    questions: list[dict]


def pretrain_world(seed: int, index: int, overrides: Mapping[str, float] | None = None) -> World:
    """The ``index``-th small pretraining world of ``seed`` (random small sizes, ``pool="pretrain"``); any of
    ``world.DEFAULT_SIZES`` in ``overrides`` replaces the drawn value (e.g. ``{"p_more": 0.75}``)."""
    r = random.Random(f"underdog-pretrain-sizes-{seed}-{index}")
    sizes = {"n_dimensions": r.randint(2, 6), "chain_length": r.randint(3, 6), "n_syllogisms": r.randint(3, 12),
             "n_categories": r.randint(8, 24), "n_roots": r.randint(1, 3), "max_properties": r.randint(2, 5),
             "n_families": r.randint(1, 4), "doc_max": r.randint(6, 14)}
    return make_world(seed * 100_003 + index, pool="pretrain", **{**sizes, **(overrides or {})})


def pretrain_worlds(seed: int, count: int, workers: int = 1,
                    overrides: Mapping[str, float] | None = None) -> Iterator[World]:
    """``pretrain_world(seed, 0 .. count - 1)`` in order. With ``workers`` > 1 (and at least two worlds a
    worker) they are built in that many spawned processes, at most ``4 * workers`` ahead of the consumer; a
    world depends only on its seed and index, so the result is the same."""
    if workers <= 1 or count < 2 * workers:
        yield from (pretrain_world(seed, i, overrides) for i in range(count))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        ahead = [pool.submit(pretrain_world, seed, i, overrides) for i in range(min(count, 4 * workers))]
        for i in range(count):
            world = ahead.pop(0).result()
            if i + len(ahead) + 1 < count:
                ahead.append(pool.submit(pretrain_world, seed, i + len(ahead) + 1, overrides))
            yield world


def pretraining_texts(seed: int, n: int, mix: Mapping[str, float] | None = None, workers: int = 1,
                      world_sizes: Mapping[str, float] | None = None, drill: Mapping | None = None,
                      labelled: bool = False) -> list[str] | list[tuple[str, str]]:
    """``n`` pretraining texts for ``seed``; ``mix`` maps kinds of ``DEFAULT_MIX`` to relative weights,
    ``world_sizes`` overrides the pretraining worlds' sizes (``pretrain_world``) and ``drill`` the knobs of
    ``swap_xor`` (``drills.swap_xor_settings``: bias and stated lines a unit). Worlds
    take two thirds of the time and are built in ``workers`` processes; the texts are the same for any
    number of workers. ``labelled``: (kind, text) pairs instead (``CONTEXT_KINDS`` says whose units have contexts)."""
    mix = dict(DEFAULT_MIX if mix is None else mix)
    unknown = set(mix) - set(GENERATORS)
    if unknown or not mix or any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"mix needs non-negative weights over {sorted(GENERATORS)}, got {mix}")
    generators = dict(GENERATORS)
    if drill:
        generators["swap_xor"] = functools.partial(swap_xor_text, **swap_xor_settings(dict(drill)))
    kinds, weights = list(mix), list(mix.values())
    rng = random.Random(f"underdog-episodes-{seed}")
    texts: list[tuple[str, str]] = []
    worlds = pretrain_worlds(seed, -(-n // TEXTS_PER_WORLD), workers, world_sizes)
    for i in range(n):
        if i % TEXTS_PER_WORLD == 0:
            world = next(worlds)
        kind = rng.choices(kinds, weights)[0]
        texts.append((kind, generators[kind](world, rng)))
    worlds.close()
    return texts if labelled else [t for _, t in texts]


def _question_key(q: dict) -> tuple[str, str]:
    """A question's identity as text: the same prefix and answer are the same line, whatever the split."""
    return q["question"], q["choices"][q["answer"]]


def _pick_questions(world: World, rng: random.Random, k: int, max_support: int = 8) -> list[dict]:
    """Up to ``k`` questions over random splits whose support facts together number at most ``max_support``."""
    by_split: dict[str, list[dict]] = {}
    for q in world.questions:
        by_split.setdefault(q["split"], []).append(q)
    splits, picked, support = sorted(by_split), [], set()
    for _ in range(4 * k):
        if len(picked) == k or not splits:
            break
        q = rng.choice(by_split[rng.choice(splits)])
        new = support | set(q["support"])
        if len(new) <= max_support and _question_key(q) not in {_question_key(p) for p in picked}:
            picked.append(q)
            support = new
    return picked


def _fact_sentences(world: World, ids: list[str], rng: random.Random) -> str:
    facts = world.facts_by_id
    return " ".join(sentence(facts[i], world.phrasing[i], rng.randrange(len(LEADINS))) for i in ids)


def _context(world: World, qs: list[dict], rng: random.Random, p_documents: float = 0.5,
             doc_words: tuple[int, int] = (0, 0), hard: bool = False) -> tuple[str, list[str]]:
    """Context for questions: with probability ``p_documents`` their support documents plus distractor
    documents (one; or, with ``doc_words``, as many as fit a random total in that range of words), else their
    support facts plus 1-4 distractor facts (and, if ``hard``, facts about every wrong choice); as (text, fact
    ids). Document contexts over 400 words (or over ``doc_words[1]``) fall back to facts."""
    docs = {d["id"]: d for d in world.documents}
    doc_ids = list(dict.fromkeys(i for q in qs for i in support_documents(world, q)))
    if rng.random() < p_documents:
        words = sum(len(docs[i]["text"].split()) for i in doc_ids)
        others = rng.sample(sorted(set(docs) - set(doc_ids)), len(docs) - len(doc_ids))
        if doc_words[1]:
            limit, target = doc_words[1], rng.randint(*doc_words)
            for i in others:
                if words + len(docs[i]["text"].split()) <= target:
                    doc_ids.append(i)
                    words += len(docs[i]["text"].split())
        else:
            limit = 400
            doc_ids += others[:1]
            words += sum(len(docs[i]["text"].split()) for i in others[:1])
        rng.shuffle(doc_ids)
        if words <= limit:
            return "\n".join(docs[i]["text"] for i in doc_ids), [f for i in doc_ids for f in docs[i]["facts"]]
    ids = list(dict.fromkeys(i for q in qs for i in q["support"]))
    if hard:
        ids += [i for i in dict.fromkeys(_choice_facts(world, qs, rng)) if i not in ids]
    others = [f.id for f in world.facts if f.id not in ids]
    ids += rng.sample(others, min(len(others), rng.randint(1, 4)))
    rng.shuffle(ids)
    return _fact_sentences(world, ids, rng), ids


def _choice_facts(world: World, qs: list[dict], rng: random.Random, per_choice: int = 2) -> list[str]:
    """Ids of facts about the entities in the questions' wrong choices (up to ``per_choice`` each), so that
    every option appears in context and only binding the right entities answers the question."""
    by_entity = world.facts_by_entity
    picked = []
    for q in qs:
        for j, choice in enumerate(q["choices"]):
            if j == q["answer"]:
                continue
            words = [w.strip(".,").lower() for w in choice.split()]  # names, plural categories, properties
            keys = [e for w in words for e in (w, w[:-1])] + [choice.strip(".").lower()]
            cands = sorted({i for e in keys for i in by_entity.get(e, [])})
            picked += rng.sample(cands, min(per_choice, len(cands)))
    return picked


def dense_episode(world: World, rng: random.Random, doc_words: tuple[int, int] = (120, 330),
                  n_questions: tuple[int, int] = (8, 16), p_documents: float = 0.7, rewrite: bool = False) -> Episode:
    """A context first (random documents up to a random word total, or a random set of fact sentences), then
    many answered questions whose support facts all lie in it. Every question's wrong options are entities of
    the same small world, mostly mentioned in the context too, and questions are ~30% of the tokens (a 3-6
    question episode has ~5%), so nearly every text trains binding the right entities. ``rewrite``: the lines
    are rewrites ("Infer: s1 s2 => s3", "Reverse: s => s'") of facts in the context, the skill global
    augmentation asks for (find the stated fact that links to a target sentence, then conclude)."""
    if rng.random() < p_documents:
        target, ids, words = rng.randint(*doc_words), [], 0
        for d in rng.sample(world.documents, len(world.documents)):
            n = len(d["text"].split())
            if words + n <= target:
                ids.append(d)
                words += n
        text, facts = "\n".join(d["text"] for d in ids), [f for d in ids for f in d["facts"]]
    else:
        all_ids = [f.id for f in world.facts]
        facts = rng.sample(all_ids, min(len(all_ids), rng.randint(8, 30)))
        text = _fact_sentences(world, facts, rng)
    stated = set(facts)
    answerable = [q for q in world.questions if set(q["support"]) <= stated
                  and (not rewrite or q["split"] in ("syllogism", "two_hop", "reversal"))]
    seen, qs, k = set(), [], rng.randint(*n_questions)
    for q in rng.sample(answerable, len(answerable)):
        if len(qs) == k:
            break
        if _question_key(q) not in seen:
            seen.add(_question_key(q))
            qs.append(q)
    if not qs:
        return Episode("", [], [])
    lines = [rewrite_line(world, q) if rewrite else _answer_line(q, "cloze", rng) for q in qs]
    return Episode(text + "\n\n" + "\n".join(lines), facts, qs)


def near_episode(world: World, rng: random.Random, k: tuple[int, int] = (8, 32), n_seeds: tuple[int, int] = (1, 3),
                 n_questions: tuple[int, int] = (6, 14), max_sentences: int = 40,
                 focus: tuple[str, ...] = (), splits: tuple[str, ...] = ()) -> Episode:
    """A context shaped like underdog's retrieved ICL prompts (``tasks.icl``): the lexical neighbourhoods
    (``world.retrieve``) of 1-3 questions, one sentence a line, usually nearest first; then the questions and
    others the context answers. A neighbourhood holds the premises among the facts sharing their words, the
    hardest distractors a world has, so every answer line trains binding the right ones. ``focus``: question
    kinds (e.g. ``comparison``, ``family``) the seeds are drawn from and whose questions are answered first.
    ``splits`` narrows seeds and answered questions to those splits (e.g. reversals: the context is a reversal
    question's neighbourhood, as in the evaluation, and every answer names the other side of a stated fact)."""
    index, fact_ids = world.sentence_index
    questions = [q for q in world.questions if q["split"] in splits] if splits else world.questions
    pool = [q for q in questions if q["kind"] in focus] or questions
    seeds = rng.sample(pool, min(len(pool), rng.randint(*n_seeds)))
    picked: list[int] = []
    for q in seeds:
        for i in index.neighbourhood(q["question"], rng.randint(*k)):
            if i not in picked and len(picked) < max_sentences:
                picked.append(i)
    order = rng.random()
    if order < 0.2:
        picked.reverse()
    elif order < 0.4:
        rng.shuffle(picked)
    stated = {fact_ids[i] for i in picked}
    answerable = [q for q in seeds if set(q["support"]) <= stated]
    seed_ids = {q["id"] for q in answerable}
    others = [q for q in rng.sample(questions, len(questions))
              if set(q["support"]) <= stated and q["id"] not in seed_ids]
    answerable += sorted(others, key=lambda q: q["kind"] not in focus)  # stable: focus kinds first, else random
    seen, qs, n = set(), [], rng.randint(*n_questions)
    for q in answerable:
        if len(qs) < n and _question_key(q) not in seen:
            seen.add(_question_key(q))
            qs.append(q)
    if not qs:
        return Episode("", [], [])
    text = "\n".join(index.sentences[i] for i in picked)
    return Episode(text + "\n\n" + "\n".join(_answer_line(q, "cloze", rng) for q in qs), sorted(stated), qs)


def pair_episode(world: World, rng: random.Random, n_facts: tuple[int, int] = (4, 14),
                 n_questions: tuple[int, int] = (6, 16),
                 kinds: tuple[str, ...] = ("comparison", "family", "isa"),
                 splits: tuple[str, ...] = ("forward", "rephrasing", "reversal")) -> Episode:
    """Comparison, family and category facts in which every entity is named once, one sentence a line, then
    their forward, rephrased and reversed questions. Each answer's first word is decided by one sentence,
    copied ("more" for "more", forward) or flipped ("less", reversal): the step before the chains of mixed
    contexts, where a middle entity is both "more" and "less" and only the comparator together with the
    entity's role (subject or object) decides it. ``kinds`` names the facts' kinds or relations ("isa": the
    category facts, "has": the category properties), e.g. comparisons alone; ``splits`` narrows the questions,
    e.g. to reversals (the comparator is flipped, never copied)."""
    facts = [f for f in world.facts if f.kind in kinds or f.rel in kinds]
    used: set[str] = set()
    picked, target = [], rng.randint(*n_facts)
    weight = {f.id: rng.random() * (1.0 if f.rel == "isa" else 0.3) for f in facts}  # categories are many
    for f in sorted(facts, key=lambda f: weight[f.id]):
        if len(picked) == target:
            break
        if f.a in used or f.b in used:
            continue
        picked.append(f)
        used |= {f.a, f.b}
    if not picked:
        return Episode("", [], [])
    stated = {f.id for f in picked}
    qs = [q for q in world.questions if q["split"] in splits and set(q["support"]) <= stated]
    qs = rng.sample(qs, min(len(qs), rng.randint(*n_questions)))
    leadin = [rng.randrange(len(LEADINS)) if rng.random() < 0.3 else 0 for _ in picked]
    text = "\n".join(sentence(f, world.phrasing[f.id], i) for f, i in zip(picked, leadin))
    return Episode(text + "\n\n" + "\n".join(_answer_line(q, "cloze", rng) for q in qs), sorted(stated), qs)


def _qa_line(q: dict, answer: str, options: bool) -> str:
    return f"Question: {open_question(q, options)} Answer: {answer}."


def _answer_line(q: dict, style: str, rng: random.Random) -> str:
    answer = q["choices"][q["answer"]]
    if style == "cloze":
        return f"{q['question']} {answer}."
    return _qa_line(q, answer, style == "options" or (style == "qa" and rng.random() < 0.4))


def icl_episode(world: World, rng: random.Random, style: str = "cloze", p_documents: float = 0.5,
                doc_words: tuple[int, int] = (0, 0), hard: bool = False) -> Episode:
    """Context (documents or fact sentences with distractors), a blank line, then 3-6 answered questions."""
    qs = _pick_questions(world, rng, rng.randint(3, 6))
    if not qs:
        return Episode("", [], [])
    text, ids = _context(world, qs, rng, p_documents, doc_words, hard)
    lines = [_answer_line(q, style, rng) for q in qs]
    return Episode(text + "\n\n" + "\n".join(lines), ids, qs)


def _statement_text(world: World, q: dict, choice: int) -> str:
    """A question with one of its choices as a statement: first letter lower case unless it is a name."""
    s = f"{q['question']} {q['choices'][choice]}"
    names = {f.a for f in world.facts if f.kind == "family"} | {f.b for f in world.facts if f.kind == "family"}
    return s if s.split(" ", 1)[0] in names else s[:1].lower() + s[1:]


def judge_episode(world: World, rng: random.Random) -> Episode:
    """Context facts, then statements judged against them (true: follows; false: a distractor)."""
    qs = _pick_questions(world, rng, rng.randint(3, 6))
    if not qs:
        return Episode("", [], [])
    text, ids = _context(world, qs, rng)
    style = rng.randrange(4)
    lines = []
    for q in qs:
        true = rng.random() < 0.5
        j = q["answer"] if true else rng.choice([i for i in range(len(q["choices"])) if i != q["answer"]])
        if style == 3:  # a QA answer judged, as ASPIRE's self-evaluation asks
            lines.append(f"{_qa_line(q, q['choices'][j], rng.random() < 0.5)} Correct or incorrect? "
                         f"{'Correct' if true else 'Incorrect'}.")
            continue
        s = _statement_text(world, q, j)
        if style == 0:
            lines.append(f"Is it true that {s}? {'Yes' if true else 'No'}.")
        elif style == 1:
            lines.append(f"{capitalize(s)}. True or false? {'True' if true else 'False'}.")
        else:
            lines.append(f"{capitalize(s)}. Correct or incorrect? {'Correct' if true else 'Incorrect'}.")
    return Episode(text + "\n\n" + "\n".join(lines), ids, qs)


def rewrite_line(world: World, q: dict) -> str:
    """ "Rephrase: s => s'", "Reverse: s => s'" or "Infer: s1 s2 => s3" for a question's answer statement."""
    facts = world.facts_by_id
    target = capitalize(_statement_text(world, q, q["answer"])) + "."
    support = [sentence(facts[i], world.phrasing[i]) for i in q["support"]]
    if q["split"] in ("forward", "rephrasing"):
        f = facts[q["support"][0]]
        other = sentence(f, (world.phrasing[f.id] + 1) % len(PHRASINGS[f.rel]))
        return f"Rephrase: {support[0]} => {target if q['split'] == 'rephrasing' else other}"
    if q["split"] == "reversal":
        return f"Reverse: {support[0]} => {target}"
    return f"Infer: {' '.join(support)} => {target}"


def _document_text(world: World, rng: random.Random) -> str:
    return fill(rng, lambda: rng.choice(world.documents)["text"])


def _icl_text(world: World, rng: random.Random, style: str = "cloze", p_documents: float = 0.5,
              doc_words: tuple[int, int] = (0, 0), hard: bool = False) -> str:
    return fill(rng, lambda: icl_episode(world, rng, style, p_documents, doc_words, hard).text, sep="\n\n\n")


def _rewrite_text(world: World, rng: random.Random) -> str:
    order = rng.sample(world.questions, len(world.questions))
    return fill(rng, lambda: rewrite_line(world, order.pop()) if order else "", sep="\n")


def _judge_text(world: World, rng: random.Random) -> str:
    return fill(rng, lambda: judge_episode(world, rng).text, sep="\n\n\n")


def _episodes_text(episode: Callable[..., Episode], **narrow) -> Callable[[World, random.Random], str]:
    """Texts of several ``episode``s (``near_episode``, ``pair_episode``) called with ``narrow`` (their
    ``focus`` / ``kinds`` / ``splits`` arguments), three blank lines apart."""
    return lambda w, r: fill(r, lambda: episode(w, r, **narrow).text, sep="\n\n\n", lo=150, hi=500)


GENERATORS: dict[str, Callable[[World, random.Random], str]] = {
    "document": _document_text, "icl": _icl_text, "icl_qa": lambda w, r: _icl_text(w, r, "qa"),
    "icl_facts": lambda w, r: _icl_text(w, r, "cloze", p_documents=0.0),  # short contexts: dense ICL signal
    # the evaluation format: support documents among many distractor documents, then several questions
    "icl_docs": lambda w, r: _icl_text(w, r, "cloze", p_documents=1.0, doc_words=(100, 450)),
    # fact contexts where every wrong option is mentioned too: only binding the right entities answers
    "icl_hard": lambda w, r: _icl_text(w, r, "cloze", p_documents=0.0, hard=True),
    # a context, then every question it can answer (8-16): the densest binding signal per token
    "icl_dense": lambda w, r: dense_episode(w, r).text,
    # the same contexts, then inferences and reversals of their facts (global augmentation's task)
    "icl_infer": lambda w, r: dense_episode(w, r, n_questions=(4, 10), rewrite=True).text,
    # retrieved contexts (question neighbourhoods, one sentence a line), as ``underdog generalization`` builds
    "icl_near": _episodes_text(near_episode),
    # the same around the kinds a small model reads worst: comparisons (which direction?) and families (whose child?)
    "icl_near_focus": _episodes_text(near_episode, focus=("comparison", "family")),
    # retrieved contexts of reversal questions, answering reversals alone: which stated fact names the entity
    # second, and who stands first in it (the split a small model reads worst among distractor sentences)
    "icl_near_reversal": _episodes_text(near_episode, splits=("reversal",)),
    # isolated facts (each entity named once): the answer's first word is copied or flipped from one sentence
    "icl_pairs": _episodes_text(pair_episode),
    # the same with comparisons alone: the densest signal for copying or flipping "more"/"less"
    "icl_pairs_compare": _episodes_text(pair_episode, kinds=("comparison",)),
    # comparisons again, asking only reversals: the comparator is flipped, never copied
    "icl_pairs_flip": _episodes_text(pair_episode, kinds=("comparison",), splits=("reversal",)),
    # one property per category ("Every fredo likes flirbis."): the answer's first word, an English verb, is copied
    "icl_pairs_props": _episodes_text(pair_episode, kinds=("has",)),
    "rewrite": _rewrite_text, "copy": copy_text, "copy_mixed": copy_mixed_text, "recall": recall_text,
    "recall_slot": recall_slot_text, "recall_swap": recall_swap_text,
    # comparison chains: an inner name is above one neighbour and below the other, the comparator says which
    "recall_chain": chain_compare_text,
    # its first step: every pair stated "A are more <adj> than B", asked as stated or as "B are less ... than A"
    "recall_chain_more": lambda w, r: chain_compare_text(w, r, more_only=True),
    # the lookup under both: disjoint pairs stated one way ("A are more <adj> than B", "A is the parent of B"),
    # half of them asked as stated or the other way round
    "recall_pairs_more": pair_text, "recall_pairs_family": lambda w, r: pair_text(w, r, family=True),
    # the plainest reversed lookup: word pairs asked back to front, then with template words between the two
    "back_pairs": back_pairs_text, "back_pairs_gap": lambda w, r: back_pairs_text(w, r, gap=(1, 3)),
    # one-line swapped units, biased: "more" always (the role alone decides), then 75/75 (role XOR comparator)
    "swap_role": swap_role_text, "swap_xor": swap_xor_text,
    "judge": _judge_text, "numbers": numbers_text,
}

CONTEXT_KINDS: frozenset[str] = frozenset(k for k in GENERATORS if k.startswith(("icl", "recall", "swap")) or k == "judge")
"""Kinds whose texts are units of a context, a blank line, then lines that answer it (``drills.context_and_answers``);
the others (documents, copy lists, rewrites, numbers) have no context to leave untrained."""
