"""ICL prompts: support documents are always in context, retrieved sentences come nearest first within the
budget, and the whole knowledge set goes in exactly when it fits beside every question."""

from underdog.methods.parts.finetune import split_sentences
from underdog.tasks.icl import (
    ANSWER_ROOM,
    DOC_SEPARATOR,
    document_contexts,
    icl_contexts,
    question_tokens,
    retrieved_contexts,
)


def test_icl_prompt_holds_support_documents_and_records_subsample(tiny_lm, small_world):
    world = small_world
    qs = world.questions[:40]
    contexts = document_contexts(tiny_lm.tokenizer, world.documents, qs, budget=200)
    by_id = {d["id"]: d for d in world.documents}
    for q, c in zip(qs, contexts):
        support_docs = {d["id"] for d in world.documents if set(d["facts"]) & set(q["support"])}
        for fact in q["support"]:
            assert any(fact in by_id[d]["facts"] for d in c.parts), "a support fact is missing from context"
        assert c.text.endswith(q["question"])
        assert all(by_id[d]["text"] in c.text for d in c.parts)
        assert not c.complete or len(c.parts) == len(world.documents)
        assert support_docs & set(c.parts)
    everything = document_contexts(tiny_lm.tokenizer, world.documents, qs[:3], budget=10**6)
    assert all(c.complete and len(c.parts) == len(world.documents) for c in everything)


def test_retrieved_icl_prompts_hold_training_sentences_nearest_first_within_budget(tiny_lm, small_world):
    world = small_world
    qs = [q for q in world.questions if q["split"] in ("forward", "reversal")][:30]
    sentences = {f"{d['id']}:{j}": s for d in world.documents for j, s in enumerate(split_sentences(d["text"]))}
    fact_of = {f"{d['id']}:{j}": f for d in world.documents for j, f in enumerate(d["facts"])}
    for q, c in zip(qs, retrieved_contexts(tiny_lm.tokenizer, world.documents, qs, budget=400)):
        lines, question = c.text.split("\n\n")
        assert question == q["question"] and lines.split("\n") == [sentences[p] for p in c.parts]
        assert set(q["support"]) <= {fact_of[p] for p in c.parts}  # one-fact questions: always retrieved
        assert c.n_tokens <= 400 and len(c.parts) <= 24
    small = retrieved_contexts(tiny_lm.tokenizer, world.documents, qs, budget=60)
    assert all(c.n_tokens <= 60 and len(c.parts) < 24 for c in small)
    assert all(c.complete for c in icl_contexts("retrieved", tiny_lm.tokenizer, world.documents, qs, 10**6))
    try:
        icl_contexts("everything", tiny_lm.tokenizer, world.documents, qs, 400)
    except ValueError as e:
        assert "retrieved, documents" in str(e)
    else:
        raise AssertionError("an unknown context mode must be refused")


def test_everything_goes_in_context_exactly_when_it_fits_beside_the_longest_question(tiny_lm, small_world):
    world = small_world
    docs, qs = world.documents[:4], world.questions[:20]
    tok = tiny_lm.tokenizer
    total = sum(len(tok.encode(d["text"] + DOC_SEPARATOR, add_special_tokens=False)) for d in docs)
    fits = total + max(question_tokens(tok, q) for q in qs) + ANSWER_ROOM
    assert all(c.complete for c in icl_contexts("retrieved", tok, docs, qs, fits))
    tight = icl_contexts("retrieved", tok, docs, qs, fits - 1)
    assert not any(c.complete for c in tight)
    assert all(c.n_tokens + ANSWER_ROOM <= fits - 1 for c in tight)


def test_support_context_holds_exactly_the_sentences_stating_the_support_facts(tiny_lm, small_world):
    world = small_world
    qs = [q for q in world.questions if q["split"] in ("reversal", "syllogism", "two_hop")][:30]
    sentences = {f"{d['id']}:{j}": s for d in world.documents for j, s in enumerate(split_sentences(d["text"]))}
    fact_of = {f"{d['id']}:{j}": f for d in world.documents for j, f in enumerate(d["facts"])}
    for q, c in zip(qs, icl_contexts("support", tiny_lm.tokenizer, world.documents, qs, 400)):
        assert [fact_of[p] for p in c.parts] == list(dict.fromkeys(q["support"]))
        assert c.text == "".join(sentences[p] + "\n" for p in c.parts) + "\n" + q["question"]
    orphan = dict(qs[0], id="q-x", support=["no-such-fact"])
    try:
        icl_contexts("support", tiny_lm.tokenizer, world.documents, [orphan], 400)
    except ValueError as e:
        assert "q-x" in str(e) and "no-such-fact" in str(e)
    else:
        raise AssertionError("a support fact no document states must be named")
