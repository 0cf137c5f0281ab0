"""The built-in tokenizer: plain byte-level BPE and its options (syllable splits, one caseless form, line space)."""

import pytest

from underdog.pretrain.tokenizer import syllable_pattern, tokenizer_options, train_tokenizer, with_line_space
from underdog.world.words import make_words

TEXTS = [f"Did you know that {a.capitalize()} has a child named {b.capitalize()}?\n"
         f"{c.capitalize()}s are more calm than {d}s. Compared to {d}s, {c}s are less old."
         for a, b, c, d in zip(*[iter(make_words(400, 3, pool="pretrain"))] * 4)]


def test_syllable_tokenizer_keeps_english_whole_and_cuts_unseen_names_at_syllables():
    tok = train_tokenizer(TEXTS, vocab_size=2000, syllables=True)
    pieces = tok.convert_ids_to_tokens(tok.encode("Did you know that Komsan has a child named Fehuk?",
                                                  add_special_tokens=False))
    assert pieces[:4] == ["Did", "Ġyou", "Ġknow", "Ġthat"] and "Ġchild" in pieces and "Ġnamed" in pieces
    # a fresh name's tokens never cross a syllable boundary (Kom|san, Fe|huk), though BPE may split a syllable
    syllables = [p for p, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str(" Komsan Fehuk")]
    assert syllables == ["ĠKom", "san", "ĠFe", "huk"]
    cuts = {0}
    for syllable in syllables:
        cuts.add(max(cuts) + len(syllable))
    name_ids = tok.encode(" Komsan Fehuk", add_special_tokens=False)
    ends = [len("".join(tok.convert_ids_to_tokens(name_ids[: i + 1]))) for i in range(len(name_ids))]
    assert set(cuts) - {0} <= set(ends)
    for word in make_words(50, 7):  # evaluation-pool words, never in TEXTS
        text = f" {word}"
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text
    assert all(tok.decode(tok.encode(t, add_special_tokens=False)) == t for t in TEXTS[:20])


def test_syllable_tokenizer_gives_names_fewer_tokens_than_plain_bpe_of_the_same_size():
    plain = train_tokenizer(TEXTS, vocab_size=1500)
    cut = train_tokenizer(TEXTS, vocab_size=1500, syllables=True)
    names = [f" {w.capitalize()}" for w in make_words(200, 11, pool="pretrain")]
    first_letter_only = {name: len(plain.convert_ids_to_tokens(plain.encode(name, add_special_tokens=False))[0])
                         for name in names}
    cut_first = [cut.convert_ids_to_tokens(cut.encode(n, add_special_tokens=False))[0] for n in names]
    # the syllable cut starts names with a longer, more telling piece than a lone " K"
    assert sum(len(p) for p in cut_first) / len(names) > sum(first_letter_only.values()) / len(names)


def test_syllable_pattern_names_the_english_words_it_keeps_whole():
    pattern = syllable_pattern(["Compared to thulas, fehuks are less old."])
    assert "compared" in pattern and "less" in pattern and "thulas" not in pattern and "fehuks" not in pattern


def test_caseless_tokenizer_gives_a_name_one_token_form_and_decodes_back():
    tok = train_tokenizer(TEXTS, vocab_size=1024, caseless=True)
    text = "Rislos are more busy than taklods.\nTaklods are less busy than rislos."
    ids = tok.encode(text, add_special_tokens=False)
    pieces = tok.convert_ids_to_tokens(ids)
    # the capitalized line-start name and the lower-case one inside a line take the same tokens ("rislos"
    # encodes as " rislos": every text starts with a space)
    starts = [i for i, p in enumerate(pieces) if p == "Ġ^"]
    assert len(starts) == 2
    rislos = tok.convert_ids_to_tokens(tok.encode("rislos", add_special_tokens=False))
    taklods = tok.convert_ids_to_tokens(tok.encode("taklods", add_special_tokens=False))
    assert pieces[1: 1 + len(rislos)] == rislos and pieces[-1 - len(rislos): -1] == rislos
    assert taklods == pieces[starts[1] + 1: starts[1] + 1 + len(taklods)]
    for t in [text, *TEXTS[:20], " a leading space", "Two\n\nLines"]:
        assert tok.decode(tok.encode(t, add_special_tokens=False)) == t
    assert tok.decode(tok("Q: Yes")["input_ids"], skip_special_tokens=True) == "Q: Yes"


def test_with_line_space_keeps_a_trained_vocabulary_and_gives_line_starts_their_in_line_tokens():
    plain = train_tokenizer(TEXTS, vocab_size=600)
    spaced = with_line_space(plain)
    assert spaced.get_vocab() == plain.get_vocab() and tokenizer_options(spaced) == ["line_space"]
    text = "Rislos are more busy than taklods.\nTaklods are less busy than Rislos."
    pieces = spaced.tokenize(text)
    rislos = plain.tokenize(" Rislos")
    assert pieces[: len(rislos)] == rislos and pieces[-1 - len(rislos): -1] == rislos
    assert plain.tokenize(text)[: len(rislos)] != rislos  # without it the first word takes other tokens
    for t in [text, *TEXTS[:20], " a leading space", "Two\n\nLines"]:
        assert spaced.decode(spaced.encode(t, add_special_tokens=False)) == t
    assert tokenizer_options(plain) == [] and tokenizer_options(train_tokenizer(TEXTS, 600, line_space=True)) == [
        "line_space"]
    with pytest.raises(ValueError, match="wants a plain tokenizer"):
        with_line_space(train_tokenizer(TEXTS, vocab_size=600, caseless=True))
