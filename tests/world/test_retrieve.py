"""Tests for underdog.world.retrieve: content words, and neighbourhoods that reach a syllogism's far premise."""

from underdog.world import make_world
from underdog.world.retrieve import SentenceIndex, content_words, split_sentences

SENTENCES = [
    "All zorps are blicks.",  # 0: shares "blick" with 2
    "Note that there are no tams that are zorps.",  # 1: shares "zorp" with the question
    "Blicks are a kind of frub.",  # 2: two hops out
    "Lo is the parent of Bim.",  # 3: unconnected
    "Every zorp has wings.",  # 4: shares "zorp"
]


def test_content_words_drop_english_and_lead_ins_and_plurals():
    assert content_words("Did you know that all zorps are blicks?") == {"zorp", "blick"}
    assert content_words("It is true that Tamzo is the parent of Bimla.") == {"tamzo", "bimla"}
    assert split_sentences("A b c. Did d e? F g.") == ["A b c.", "Did d e?", "F g."]


def test_neighbourhood_is_breadth_first_and_bounded():
    index = SentenceIndex(SENTENCES)
    near = index.neighbourhood("All zorps are", k=10)
    assert set(near[:3]) == {0, 1, 4} and near[3] == 2  # hop 1, then the premise sharing the middle term
    assert 3 not in near  # nothing links it to the question
    assert index.neighbourhood("All zorps are", k=2) == near[:2]
    assert index.neighbourhood("Nothing known", k=5) == []
    assert index.partners(0) == [1, 2, 4]


def test_neighbourhoods_hold_the_premises_of_world_questions():
    world = make_world(3, n_dimensions=4, n_syllogisms=12, n_categories=16, n_families=3)
    index, fact_ids = world.sentence_index
    assert len(index.sentences) == len(fact_ids) == sum(len(d["facts"]) for d in world.documents)
    covered = {}
    for q in world.questions:
        stated = {fact_ids[i] for i in index.neighbourhood(q["question"], 24)}
        covered.setdefault(q["split"], []).append(set(q["support"]) <= stated)
    rates = {split: sum(v) / len(v) for split, v in covered.items()}
    assert rates["forward"] == rates["reversal"] == 1.0
    assert rates["syllogism"] > 0.8, rates
