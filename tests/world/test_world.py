"""Tests for underdog.world: words, facts, documents, questions, files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from underdog.io import DataError
from underdog.world import (
    DEFAULT_SIZES,
    SPLITS,
    Parser,
    closure,
    entails,
    load_world,
    make_world,
    support_documents,
    write_world,
)
from underdog.world.knowledge import ADJECTIVES, ENGLISH_PROPERTIES
from underdog.world.render import LEADINS, PHRASINGS, cloze, comparison_order
from underdog.world.words import SYLLABLES, Lexicon, is_valid_word, make_words, stopwords, word_pool

SMALL = {"n_dimensions": 6, "n_syllogisms": 12, "n_categories": 20, "n_families": 4}


@pytest.fixture(scope="module")
def world():
    return make_world(0)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?])\s+", text) if s]


def _norm(text: str) -> str:
    return " " + re.sub(r"[^a-z ]+", " ", text.lower()).replace("  ", " ").strip() + " "


def _files_digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_deterministic_files(tmp_path):
    a, b = write_world(make_world(3, **SMALL), tmp_path / "a"), write_world(make_world(3, **SMALL), tmp_path / "b")
    assert _files_digest(a) == _files_digest(b)
    assert _files_digest(a) != _files_digest(write_world(make_world(4, **SMALL), tmp_path / "c"))
    # another process with another string-hash seed writes the same bytes
    code = ("import sys; from underdog.world import make_world, write_world; "
            f"write_world(make_world(3, **{SMALL!r}), sys.argv[1])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], check=True, env=env)
    assert _files_digest(a) == _files_digest(tmp_path / "d")


def test_words_shape_pools_and_overlap(world):
    words = world.words
    assert len(words) == len(set(words)) > 500
    assert all(is_valid_word(w, "eval") and 4 <= len(w) <= 6 for w in words)
    stop = stopwords()
    assert not [w for w in words if w in stop or w + "s" in stop]
    other = set(make_world(1).words)
    assert len(other & set(words)) / len(words) < 0.02
    pre = make_words(3000, seed=0, pool="pretrain")
    assert all(word_pool(w) == "pretrain" for w in pre) and not set(pre) & set(words)
    assert not set(make_words(3000, seed=0, pool="eval")) & set(pre)
    assert all(any(w.startswith(s) for s in SYLLABLES) for w in words)
    lex = Lexicon(7)
    names = [lex.name() for _ in range(50)]
    assert all(n[0].isupper() for n in names) and len(set(names)) == 50


def test_template_words_are_stop_words():
    texts = [t for ts in PHRASINGS.values() for t in ts] + list(LEADINS) + list(ADJECTIVES)
    texts += [p for p, _ in ENGLISH_PROPERTIES]
    used = {w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", re.sub(r"\{\w+\}", " ", t))}
    assert used <= stopwords(), sorted(used - stopwords())


def test_split_counts_and_choices(world):
    counts = world.counts()
    assert min(counts.values()) >= 400, counts  # the floor, in every split of a default world
    assert set(counts) == set(SPLITS)
    for q in world.questions:
        assert len(q["choices"]) >= DEFAULT_SIZES["n_choices"] and len(set(q["choices"])) == len(q["choices"])
        assert 0 <= q["answer"] < len(q["choices"])
    positions = [q["answer"] for q in world.questions]
    assert all(positions.count(i) > len(positions) / 6 for i in range(4))  # shuffled answer position
    assert {q["kind"] for q in world.questions if q["split"] == "two_hop"} == {"comparison", "family"}


def test_answers_follow_from_support_and_distractors_do_not(world):
    facts = {f.id: f for f in world.facts}
    full = closure(world.facts)
    parser = Parser(world.facts)
    for q in world.questions:
        support = [facts[i] for i in q["support"]]
        for j, choice in enumerate(q["choices"]):
            stmt = parser.parse(q["question"] + " " + choice)
            assert stmt is not None, (q, choice)
            if j == q["answer"]:
                assert entails(support, stmt), q
            else:
                assert not entails(full, stmt), (q, choice)


def test_closure_rules():
    from underdog.world.knowledge import Fact, derived

    f = [Fact("1", "syllogism", "no", "a", "b"), Fact("2", "syllogism", "all", "c", "a"),
         Fact("3", "syllogism", "all", "d", "b"), Fact("4", "syllogism", "some", "e", "c"),
         Fact("5", "syllogism", "all", "b", "x")]
    cl = closure(f)
    assert {("no", "c", "b", ""), ("no", "b", "c", ""), ("no", "c", "d", ""), ("some", "c", "e", ""),
            ("some", "e", "a", ""), ("some", "c", "a", "")} <= cl
    assert ("all", "a", "c", "") not in cl and ("some", "a", "b", "") not in cl and ("no", "c", "x", "") not in cl
    c = [Fact("5", "comparison", "more", "x", "y", "heavy"), Fact("6", "comparison", "less", "z", "y", "heavy")]
    assert entails(c, derived("less", "z", "x", "heavy")) and not entails(c, derived("more", "z", "x", "heavy"))
    assert not entails(c, derived("more", "x", "z", "fast"))
    fam = [Fact("7", "family", "parent", "A", "B"), Fact("8", "family", "parent", "B", "C"),
           Fact("9", "family", "parent", "B", "D")]
    assert entails(fam, derived("grandchild", "C", "A")) and entails(fam, derived("sibling", "D", "C"))
    assert not entails(fam, derived("sibling", "B", "C"))
    h = [Fact("a", "hierarchy", "isa", "x", "y"), Fact("b", "hierarchy", "isa", "y", "z"),
         Fact("c", "hierarchy", "has", "z", "have fur")]
    assert entails(h, derived("has", "x", "have fur")) and entails(h, derived("include", "z", "x"))
    assert not entails(h, derived("has", "zz", "have fur"))


def test_documents_hold_only_training_facts(world):
    facts = {f.id: f for f in world.facts}
    parser = Parser(world.facts)
    seen = []
    for d in world.documents:
        sents = _sentences(d["text"])
        assert 4 <= len(sents) <= 20 and len(sents) == len(d["facts"])
        for s, fid in zip(sents, d["facts"]):
            assert parser.parse(s) == replace(facts[fid], id=""), s
            assert _norm(facts[fid].text(world.phrasing[fid])) in _norm(s)
        seen += d["facts"]
    assert sorted(seen) == sorted(facts)  # every training fact appears, exactly once
    corpus = " ".join(_norm(d["text"]) for d in world.documents)
    for q in world.questions:
        stmt = _norm(q["question"] + " " + q["choices"][q["answer"]])
        if q["split"] == "forward":
            assert stmt in corpus, q
        else:  # reversals, inferences and rephrasings never appear in training documents
            assert stmt not in corpus, q


def test_rephrasing_uses_an_untrained_phrasing(world):
    facts = {f.id: f for f in world.facts}
    for q in world.questions:
        if q["split"] in ("forward", "rephrasing"):
            f = facts[q["support"][0]]
            trained = cloze(f, world.phrasing[f.id])
            assert (trained == (q["question"], q["choices"][q["answer"]])) == (q["split"] == "forward")


def test_support_documents(world):
    facts_of = {d["id"]: set(d["facts"]) for d in world.documents}
    for q in world.questions[::7]:
        ids = support_documents(world, q)
        assert set(q["support"]) <= set().union(*(facts_of[i] for i in ids))
        assert len(ids) <= 5
        assert support_documents(world.documents, q) == ids


def test_write_load_roundtrip(tmp_path):
    w = make_world(5, **SMALL)
    out = write_world(w, tmp_path / "w")
    docs, questions = load_world(out)
    assert docs == w.documents and questions == w.questions
    meta = json.loads((out / "world.json").read_text())
    assert meta["seed"] == 5 and meta["questions_per_split"] == w.counts()


@pytest.mark.parametrize("mutate, field", [
    (lambda q: q.update(answer=7), "answer"),
    (lambda q: q.update(choices=["only"]), "choices"),
    (lambda q: q.update(split="sideways"), "split"),
    (lambda q: q.pop("question"), "question"),
    (lambda q: q.update(answer="1"), "answer"),
    (lambda q: q.update(support=["nope-0000"]), "support"),
])
def test_load_errors_name_file_line_field(tmp_path, mutate, field):
    out = write_world(make_world(5, **SMALL), tmp_path / "w")
    qpath = out / "questions.jsonl"
    lines = qpath.read_text().splitlines()
    row = json.loads(lines[2])
    mutate(row)
    lines[2] = json.dumps(row)
    qpath.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"questions\.jsonl:3: .*'{field}'"):
        load_world(out)


def test_load_error_bad_json_and_doc(tmp_path):
    out = write_world(make_world(5, **SMALL), tmp_path / "w")
    (out / "documents.jsonl").write_text('{"id": "d0", "text": "Hi there."}\n{"id": "d1", "text": 3}\n')
    with pytest.raises(DataError, match=r"documents\.jsonl:2: field 'text'"):
        load_world(out)
    (out / "documents.jsonl").write_text('{"id": "d0", "text": "Hi."}\n{oops\n')
    with pytest.raises(DataError, match=r"documents\.jsonl:2: invalid JSON"):
        load_world(out)


def test_unknown_size_is_an_error():
    with pytest.raises(TypeError, match="n_dragons"):
        make_world(0, n_dragons=3)


def test_p_more_must_be_a_probability():
    with pytest.raises(ValueError, match="p_more is a probability"):
        make_world(0, p_more=1.5)


def test_world_command_takes_size_overrides_and_names_a_bad_key(tmp_path, capsys):
    from underdog.cli import main

    assert main(["world", "--seed", "3", "--size", "p_more=1", "n_families=5", "--out", str(tmp_path / "w")]) == 0
    facts = [json.loads(line) for line in (tmp_path / "w" / "facts.jsonl").read_text().splitlines()]
    stated = [f["rel"] for f in facts if f["kind"] == "comparison"]
    sizes = json.loads((tmp_path / "w" / "world.json").read_text())["sizes"]
    assert stated and set(stated) == {"more"} and sizes["n_families"] == 5 and sizes["p_more"] == 1.0
    assert main(["world", "--seed", "3", "--size", "p_mor=1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown world size 'p_mor'" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["world", "--seed", "3", "--size", "n_families=many", "--out", str(tmp_path / "x")]) == 2
    assert "n_families takes an integer" in capsys.readouterr().err
    assert main(["world", "--seed", "3", "--size", "p_more=2", "--out", str(tmp_path / "x")]) == 2
    assert "p_more is a probability" in capsys.readouterr().err


def test_comparison_order_reads_every_phrasing_and_nothing_else():
    assert comparison_order("Taklods are less busy than rislos.") == ("rislos", "taklods", "busy")
    assert comparison_order("Compared to rislos, taklods are more busy.") == ("taklods", "rislos", "busy")
    assert comparison_order("Rislos are more busy when compared with taklods.") == ("rislos", "taklods", "busy")
    assert comparison_order("Rislos are a kind of taklod.") is None
