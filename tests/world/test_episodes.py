"""Tests for underdog.world.episodes: deterministic pretraining text whose answers follow from its context."""

from __future__ import annotations

import random
import re

import pytest

from underdog.world import Parser, closure, entails
from underdog.world.episodes import (
    DEFAULT_MIX,
    TEXTS_PER_WORLD,
    dense_episode,
    icl_episode,
    judge_episode,
    near_episode,
    pair_episode,
    pretrain_world,
    pretraining_texts,
    rewrite_line,
)
from underdog.world.words import word_pool

QA = re.compile(r"^Question: (.*) \.\.\.\? (?:Options: .*?\. )?Answer: (.*)\.$")
QA_JUDGED = re.compile(r"^Question: (.*) \.\.\.\? (?:Options: .*?\. )?Answer: (.*)\. Correct or incorrect\? "
                       r"(Correct|Incorrect)\.$")


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?])\s+", text.strip()) if s]


@pytest.fixture(scope="module")
def worlds():
    return [pretrain_world(0, i) for i in range(3)]


def test_texts_are_deterministic_and_mixed():
    a = pretraining_texts(1, 45)
    assert a == pretraining_texts(1, 45) and a != pretraining_texts(2, 45)
    assert len(a) == 45 and all(isinstance(t, str) and t for t in a)
    lengths = [len(t.split()) for t in a]
    assert max(lengths) <= 600 and sum(n >= 100 for n in lengths) > 0.8 * len(a)
    for kind, marker in [("copy", " again : "), ("copy_mixed", " again : "), ("rewrite", " => "), ("numbers", " = "),
                         ("icl_qa", "Answer: "), ("judge", "? "), ("icl", "\n\n"), ("document", ". "),
                         ("icl_docs", "\n\n"), ("icl_hard", "\n\n"), ("icl_dense", "\n\n"),
                         ("icl_pairs_compare", "\n\n"), ("icl_pairs_props", "\n\n"), ("icl_pairs_flip", "\n\n"),
                         ("recall", "\n\n"), ("recall_slot", "\n\n"), ("recall_swap", "\n\n"),
                         ("icl_infer", " => ")]:
        texts = pretraining_texts(3, 2, mix={kind: 1.0})
        assert all(marker in t and 40 <= len(t.split()) <= 600 for t in texts), (kind, texts)
    with pytest.raises(ValueError, match="mix"):
        pretraining_texts(0, 1, mix={"poetry": 1.0})
    assert abs(sum(DEFAULT_MIX.values()) - 1) < 1e-9 and DEFAULT_MIX["copy"] == pytest.approx(0.2)


def test_worlds_built_in_worker_processes_give_the_same_texts():
    mix = {"icl_near": 1.0, "copy": 0.5, "icl_dense": 0.5}
    n = 5 * TEXTS_PER_WORLD - 3  # a last world only partly used
    assert pretraining_texts(4, n, mix, workers=2) == pretraining_texts(4, n, mix)


def test_pretraining_worlds_use_pretrain_words(worlds):
    assert all(word_pool(w) == "pretrain" for world in worlds for w in world.words)


@pytest.mark.parametrize("style,variant", [("cloze", {}), ("qa", {}), ("cloze", {"p_documents": 0.0, "hard": True}),
                                           ("cloze", {"p_documents": 1.0, "doc_words": (100, 450)})])
def test_icl_answers_follow_from_context(worlds, style, variant):
    rng = random.Random(0)
    for world in worlds:
        parser = Parser(world.facts)
        facts = {f.id: f for f in world.facts}
        for _ in range(15):
            ep = icl_episode(world, rng, style, **variant)
            context, answers = ep.text.split("\n\n")
            stated = [parser.parse(s) for s in _sentences(context)]
            assert None not in stated and len(stated) == len(ep.context)
            assert {f.key for f in stated} == {facts[i].key for i in ep.context}
            cl = closure(stated)
            lines = answers.split("\n")
            assert 3 <= len(lines) <= 6 or len(lines) == len(ep.questions)
            for line in lines:
                if style == "qa":
                    m = QA.match(line)
                    assert m, line
                    line = f"{m.group(1)} {m.group(2)}"
                stmt = parser.parse(line)
                assert stmt is not None and entails(cl, stmt), (line, context)


def test_dense_episodes_ask_many_questions_answered_by_their_context(worlds):
    rng = random.Random(3)
    counts = []
    for world in worlds:
        parser = Parser(world.facts)
        for _ in range(10):
            ep = dense_episode(world, rng)
            context, answers = ep.text.split("\n\n")
            cl = closure([parser.parse(s) for s in _sentences(context)])
            lines = answers.split("\n")
            assert len(lines) == len(ep.questions) == len(set(lines))
            assert all(set(q["support"]) <= set(ep.context) for q in ep.questions)
            assert all(entails(cl, parser.parse(line)) for line in lines), context
            counts.append(len(lines))
    assert max(counts) <= 16 and sum(n >= 8 for n in counts) > 0.7 * len(counts)
    parser = Parser(worlds[0].facts)
    for _ in range(10):  # rewrites of facts in context: premises stated there, conclusion entailed by them
        ep = dense_episode(worlds[0], rng, rewrite=True)
        context, lines = ep.text.split("\n\n")
        stated = {f.key for f in (parser.parse(s) for s in _sentences(context))}
        for line in lines.split("\n"):
            left, right = line.split(": ", 1)[1].split(" => ")
            given = [parser.parse(s) for s in _sentences(left)]
            assert {f.key for f in given} <= stated and entails(given, parser.parse(right)), line


def test_near_episodes_read_like_retrieved_prompts_and_their_answers_follow(worlds):
    rng = random.Random(5)
    for world in worlds:
        parser = Parser(world.facts)
        index, _ = world.sentence_index
        for _ in range(10):
            ep = near_episode(world, rng)
            context, answers = ep.text.split("\n\n")
            lines = context.split("\n")
            assert set(lines) <= set(index.sentences) and len(lines) <= 40  # one training sentence a line
            cl = closure([parser.parse(s) for s in lines])
            assert answers and all(entails(cl, parser.parse(a)) for a in answers.split("\n")), ep.text
            assert all(set(q["support"]) <= set(ep.context) for q in ep.questions)


def test_hard_contexts_mention_every_option_and_document_contexts_hold_documents(worlds):
    rng = random.Random(2)
    mentioned = total = 0
    for world in worlds:
        for _ in range(10):
            ep = icl_episode(world, rng, p_documents=0.0, hard=True)
            context = ep.text.split("\n\n")[0].lower()
            for q in ep.questions:
                for j, choice in enumerate(q["choices"]):
                    names = [w.strip(".,").lower() for w in choice.split() if w.strip(".,").lower() in context]
                    total += j != q["answer"]
                    mentioned += j != q["answer"] and bool(names)
        docs = {d["text"] for d in world.documents}
        ep = icl_episode(world, rng, p_documents=1.0, doc_words=(300, 450))
        lines = ep.text.split("\n\n")[0].split("\n")
        assert set(lines) <= docs and 100 <= len(" ".join(lines).split()) <= 450 or len(lines) <= 2
    assert mentioned > 0.9 * total


def test_judgements_and_rewrites_are_right(worlds):
    rng = random.Random(1)
    world = worlds[0]
    parser = Parser(world.facts)
    full = closure(world.facts)
    for _ in range(20):
        ep = judge_episode(world, rng)
        context, judged = ep.text.split("\n\n")
        cl = closure([parser.parse(s) for s in _sentences(context)])
        for line in judged.split("\n"):
            qa = QA_JUDGED.match(line)
            if qa:  # "Question: <prefix> ...? [Options: ...] Answer: <choice>. Correct or incorrect? <verdict>."
                line = f"{qa.group(1)} {qa.group(2)}. Correct or incorrect? {qa.group(3)}."
            m = re.match(r"^(?:Is it true that )?(.*?)(?:\? |\. True or false\? |\. Correct or incorrect\? )"
                         r"(Yes|No|True|False|Correct|Incorrect)\.$", line)
            assert m, line
            stmt = parser.parse(m.group(1))
            assert stmt is not None, line
            positive = m.group(2) in ("Yes", "True", "Correct")
            assert entails(cl, stmt) if positive else not entails(full, stmt), line
    for q in world.questions:
        line = rewrite_line(world, q)
        op, rest = line.split(": ", 1)
        left, right = rest.split(" => ")
        given = [parser.parse(s) for s in _sentences(left)]
        target = parser.parse(right)
        assert None not in given and target is not None, line
        assert entails(given, target), line
        assert op == {"forward": "Rephrase", "rephrasing": "Rephrase", "reversal": "Reverse"}.get(q["split"], "Infer")


def test_focused_near_episodes_are_built_around_and_answer_their_kinds_first(worlds):
    rng = random.Random(6)
    focus = ("comparison", "family")
    shares = []
    for world in worlds:
        for _ in range(10):
            ep = near_episode(world, rng, focus=focus)
            if not ep.questions:
                continue
            kinds = [q["kind"] in focus for q in ep.questions]
            assert kinds == sorted(kinds, reverse=True)  # every focus-kind question before any other
            shares.append(sum(kinds) / len(kinds))
            plain = near_episode(world, rng)
            shares.append(-sum(q["kind"] in focus for q in plain.questions) / max(1, len(plain.questions)))
    focused, unfocused = [s for s in shares if s >= 0], [-s for s in shares if s <= 0]
    assert sum(focused) / len(focused) > sum(unfocused) / len(unfocused) + 0.2


def test_near_episodes_narrowed_to_reversals_answer_only_reversals_of_their_stated_facts(worlds):
    rng = random.Random(8)
    episodes = [near_episode(world, rng, splits=("reversal",)) for world in worlds for _ in range(6)]
    asked = [q for ep in episodes for q in ep.questions]
    assert len(asked) >= 20
    assert {q["split"] for q in asked} == {"reversal"}
    assert {q["kind"] for q in asked} >= {"comparison", "family"}
    assert all(set(q["support"]) <= set(ep.context) for ep in episodes for q in ep.questions)


def test_pair_episodes_name_each_entity_once_and_their_first_answer_word_follows_one_sentence(worlds):
    rng = random.Random(7)
    kinds, splits = set(), set()
    for world in worlds:
        parser = Parser(world.facts)
        for _ in range(10):
            ep = pair_episode(world, rng)
            context, answers = ep.text.split("\n\n")
            facts = [parser.parse(s) for s in context.split("\n")]
            entities = [e for f in facts for e in (f.a, f.b)]
            assert len(entities) == len(set(entities)), context  # no entity in two sentences
            cl = closure(facts)
            assert answers and all(entails(cl, parser.parse(a)) for a in answers.split("\n")), ep.text
            by_id = {f.id: f for f in world.facts}
            assert {f.key for f in facts} == {by_id[i].key for i in ep.context}
            for q in ep.questions:  # one stated sentence decides each answer
                assert len(q["support"]) == 1 and q["support"][0] in ep.context
                kinds.add(q["kind"])
                splits.add(q["split"])
    assert {"comparison", "family"} <= kinds and splits == {"forward", "rephrasing", "reversal"}


@pytest.mark.parametrize("kinds", [("comparison",), ("has",)])
def test_pair_episodes_narrowed_to_one_kind_state_and_ask_only_that_kind(worlds, kinds):
    rng = random.Random(3)
    for world in worlds:
        by_id = {f.id: f for f in world.facts}
        episodes = [pair_episode(world, rng, kinds=kinds) for _ in range(5)]
        assert all(ep.questions for ep in episodes)
        stated = {by_id[i].kind if kinds == ("comparison",) else by_id[i].rel for ep in episodes for i in ep.context}
        assert stated == set(kinds)
        assert all(set(q["support"]) <= set(ep.context) for ep in episodes for q in ep.questions)
    flips = [pair_episode(world, rng, kinds=("comparison",), splits=("reversal",)) for world in worlds]
    assert {q["split"] for ep in flips for q in ep.questions} == {"reversal"}


def test_pretraining_worlds_can_bias_the_stated_comparator_and_the_default_is_unchanged():
    from underdog.world.episodes import pretrain_world

    def shares(overrides):
        rels = [f.rel for i in range(12) for f in pretrain_world(3, i, overrides).knowledge.facts
                if f.kind == "comparison"]
        return rels.count("more") / len(rels), len(rels)

    even, n = shares(None)
    assert shares({"p_more": 0.5}) == (even, n)  # the same draws: default worlds are not changed
    assert 0.4 < even < 0.6 and shares({"p_more": 1.0})[0] == 1.0 and shares({"p_more": 0.2})[0] < 0.35
    texts = pretraining_texts(1, 40, {"icl_pairs_compare": 1.0}, world_sizes={"p_more": 1.0})
    assert " less " not in "\n\n".join(t.split("\n\n")[0] for t in texts)  # contexts state "more" alone
