"""Grounded call arguments: the text rules (what is an open call, which numbers are allowed) and the decoding
mask in ``lm.toolgen`` (a miscopied operand cannot be written; a number from the prompt or an earlier result
can)."""

import pytest

from tests.tools.scripted import scripted_lm
from underdog.lm.toolgen import generate_with_tools, token_surfaces
from underdog.tools import default_registry
from underdog.tools.grounding import is_grounded, numbers_in, open_call_input


def test_numbers_in_text_are_unsigned_and_keep_decimals():
    assert numbers_in("has -5 and 2.50, then 7.") == {"5", "2.50", "7"}


@pytest.mark.parametrize("text, arg", [
    ("Q: 3 [Calculator( 23", " 23"),
    ("[Calculator(", ""),
    ("[ Calculator( 7", " 7"),  # the runtime accepts spaces before the tool's name
    ("[Calculator( 1 + 2) -> 3] and", None),  # closed
    ("[Calculator( 1 + 2) ->", None),  # ended, waiting for the result
    ("a [note 12", None),  # a bracket without Name(
    ("no call here 12", None),
])
def test_open_call_input(text, arg):
    assert open_call_input(text) == arg


@pytest.mark.parametrize("arg, ok", [
    (" 2391 - 874", True),
    (" 239", True),  # open: a prefix of 2391
    (" 2319", False),  # open, no allowed number starts so
    (" 239 ", False),  # closed, not allowed
    (" 12.", True),  # a decimal point inside 12.5
    (" 874 * 12.5)", True),
    (" 874 * 3)", False),
    ("", True),
])
def test_is_grounded(arg, ok):
    assert is_grounded(arg, {"2391", "874", "12.5"}) is ok


PROMPT = "Zorp has 2391 dogs and finds 5"


@pytest.mark.parametrize("kwargs", [{}, {"method": "beam", "num_beams": 2}, {"method": "sample", "n": 2}])
def test_a_miscopied_operand_cannot_be_written(kwargs):
    lm = scripted_lm(" [Calculator( 2319 + 5) -> so.")
    (free,), = [o[:1] for o in generate_with_tools(lm, [PROMPT], default_registry(), max_new_tokens=40, **kwargs)]
    assert free.calls[0]["input"] == " 2319 + 5"
    (ground,), = [o[:1] for o in generate_with_tools(lm, [PROMPT], default_registry(), max_new_tokens=40,
                                                     ground_numbers=True, **kwargs)]
    # the script's "1" after " 23" is masked: the only grounded continuation is 2391, and the scripted model,
    # off its script, then ends (EOS is allowed once the number is whole)
    assert ground.text == " [Calculator( 2391"
    assert is_grounded(open_call_input(ground.text), numbers_in(PROMPT))


def test_numbers_of_the_prompt_and_of_earlier_results_are_allowed():
    script = " [Calculator( 2391 + 5) -> [Calculator( 2396 * 5) -> so."
    lm = scripted_lm(script)
    (s,), = generate_with_tools(lm, [PROMPT], default_registry(), max_new_tokens=60, ground_numbers=True)
    assert s.text == " [Calculator( 2391 + 5) -> 2396] [Calculator( 2396 * 5) -> 11980] so."
    assert [c["ok"] for c in s.calls] == [True, True]


def test_token_surfaces_keep_the_space_a_sentencepiece_token_stands_for():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer, raw.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    raw.train_from_iterator(["the cat has 2391 dogs and 874 more"] * 20,
                            trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")
    i = tok.convert_tokens_to_ids("▁874")
    assert tok.decode([i]) == "874"  # alone, the space is gone: " 239" + "874" would read as one number
    assert token_surfaces(tok)[i] == " 874"
    assert not is_grounded(" 239" + token_surfaces(tok)[i], {"239874", "874"})  # 239 itself is not allowed
