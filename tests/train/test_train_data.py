"""Examples -> labelled token rows: formats, masks, EOS, truncation, packing without attention leaks."""

import pytest
import torch

from tests.tiny_models import build_model, make_tokenizer
from underdog.train import IGNORE_INDEX, collate, pack_examples, tokenize_example, tokenize_examples

CHAT = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "hi"},
    {"role": "user", "content": "two plus two ?"},
    {"role": "assistant", "content": "four"},
]


def trained_text(tok, row) -> str:
    return tok.decode([t for t in row["labels"] if t != IGNORE_INDEX])


@pytest.mark.parametrize("bos", [True, False])
def test_completion_only_masks_prompt_and_trains_eos_when_pad_is_eos(bos):
    tok = make_tokenizer(add_bos=bos, pad_is_eos=True)
    assert tok.pad_token_id == tok.eos_token_id
    row = tokenize_example({"prompt": "the capital of france is", "completion": " paris"}, tok)
    prompt_ids = tok("the capital of france is", add_special_tokens=False)["input_ids"]
    n_prompt = len(prompt_ids) + int(bos)
    assert row["input_ids"][0] == (tok.bos_token_id if bos else prompt_ids[0])
    assert row["input_ids"][-1] == tok.eos_token_id
    assert row["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]  # completion + EOS trained
    assert row["labels"][-1] == tok.eos_token_id
    full = tokenize_example({"prompt": "the capital of france is", "completion": " paris"}, tok, completion_only=False)
    assert full["labels"][0] == IGNORE_INDEX and full["labels"][1:] == full["input_ids"][1:]


def test_four_formats_accepted():
    tok = make_tokenizer()
    rows = tokenize_examples(
        [
            {"prompt": "zorp is", "completion": " bigger", "id": 7},  # extra fields are ignored
            {"text": "alpha beta"},
            {"messages": CHAT},
            {"prompt": CHAT[:4], "completion": CHAT[4:]},
        ],
        tok,
    )
    eos = tok.eos_token
    assert trained_text(tok, rows[0]) == f" bigger{eos}"
    assert trained_text(tok, rows[1]) == f"alpha beta{eos}"  # full-sequence loss (the first token has no label)
    assert trained_text(tok, rows[2]) == f"hi<|im_end|>\nfour<|im_end|>\n{eos}"  # both assistant turns
    assert trained_text(tok, rows[3]) == f"four<|im_end|>\n{eos}"  # only the completion's turn
    text = tok.decode(rows[2]["input_ids"])
    assert text.startswith("<s><|im_start|>system\nbe brief<|im_end|>\n") and "<|im_start|>assistant\nhi" in text


def test_chat_template_of_the_tokenizer_is_used():
    template = (
        "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% if m['role'] == 'assistant' %}"
        "{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    tok = make_tokenizer(chat_template=template)
    row = tokenize_example({"messages": CHAT[1:3]}, tok)
    assert tok.decode(row["input_ids"]) == "<s>[user] hello\n[assistant] hi</s>\n"  # EOS not doubled
    assert trained_text(tok, row) == "hi</s>\n"


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"question": "q", "answer": "a"}, "unrecognised fields"),
        ({"prompt": "p", "completion": [{"role": "assistant", "content": "x"}]}, "both be strings"),
        ({"messages": [{"role": "user"}]}, "messages\\[0\\]"),
        ({"messages": [{"role": "user", "content": "no answer"}]}, "no assistant"),
        ({"text": 3}, "'text' must be a string"),
        ("just a string", "not an object"),
    ],
)
def test_bad_example_names_its_index(bad, field):
    tok = make_tokenizer()
    with pytest.raises(ValueError, match=rf"example 2: .*{field}"):
        tokenize_examples([{"text": "ok"}, {"prompt": "a", "completion": "b"}, bad], tok)


def test_truncation_cuts_the_prompt_from_the_left_and_keeps_the_completion():
    tok = make_tokenizer()
    ex = {"prompt": "the cat sat on a mat near the big red house", "completion": " yes no"}
    full = tokenize_example(ex, tok)
    row = tokenize_example(ex, tok, max_length=10)
    assert len(row["input_ids"]) == 10 < len(full["input_ids"])
    assert row["input_ids"][0] == tok.bos_token_id
    assert row["input_ids"][1:] == full["input_ids"][-9:]
    assert trained_text(tok, row) == trained_text(tok, full) == f" yes no{tok.eos_token}"
    tiny = tokenize_example(ex, tok, max_length=3)  # too short for the completion: cut from the right
    assert tiny["input_ids"] == [tok.bos_token_id] + full["input_ids"][-len(tok(" yes no", add_special_tokens=False)["input_ids"]) - 1 :][:2]


def test_pack_examples_rows_and_positions():
    tok = make_tokenizer()
    rows = tokenize_examples([{"text": "the cat"}, {"text": "dog"}, {"text": "a red cat"}], tok)
    lengths = [len(r["input_ids"]) for r in rows]
    packed = pack_examples(rows, max_length=lengths[0] + lengths[1])
    assert len(packed) == 2
    assert packed[0]["position_ids"] == list(range(lengths[0])) + list(range(lengths[1]))
    assert packed[0]["input_ids"] == rows[0]["input_ids"] + rows[1]["input_ids"]
    batch = collate(packed, tok.pad_token_id)
    assert "attention_mask" not in batch and batch["num_tokens"].item() == sum(lengths)
    pad = batch["input_ids"].shape[1] - lengths[2]
    if pad:
        assert batch["position_ids"][1, lengths[2] :].tolist() == list(range(pad))
        assert (batch["labels"][1, lengths[2] :] == IGNORE_INDEX).all()


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packing_leaks_no_attention(arch, attn):
    tok = make_tokenizer(add_bos=arch == "llama")
    examples = [
        {"prompt": "the capital of france is", "completion": " paris"},
        {"text": "alpha beta gamma"},
        {"prompt": "zorp is", "completion": " bigger than blick"},
        {"messages": CHAT[1:3]},
        {"text": "mu"},
    ]
    rows = tokenize_examples(examples, tok, completion_only=False)
    packed = pack_examples(rows, max_length=40)
    assert len(packed) >= 2 and any(len(set(p["position_ids"])) < len(p["position_ids"]) for p in packed)
    model = build_model(arch, tok)
    model.config._attn_implementation = attn
    model.eval()
    batch = collate(packed, tok.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        i = 0
        for r, row in enumerate(packed):
            starts = [k for k, p in enumerate(row["position_ids"]) if p == 0] + [len(row["input_ids"])]
            for a, b in zip(starts, starts[1:]):
                ids = row["input_ids"][a:b]  # first-fit packing may reorder examples: find this one
                assert ids in [x["input_ids"] for x in rows]
                alone = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
                assert torch.allclose(logits[r, a:b], alone, atol=1e-4), (r, a, b)
                i += 1
        assert i == len(rows)
        # control: the same row without position ids does leak, so the check above has teeth
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits
        assert not torch.allclose(leaky, logits, atol=1e-4)


def test_pack_examples_first_fit_tops_up_rows():
    lengths = [700, 600, 300, 200, 400, 100]
    rows = [{"input_ids": list(range(n)), "labels": list(range(n))} for n in lengths]
    packed = pack_examples(rows, max_length=1024)
    # in order: 700 | 600+300 | 200+400+100 (3 rows); first fit puts 300 into the first row's room
    assert [len(r["input_ids"]) for r in packed] == [700 + 300, 600 + 200 + 100, 400]
    assert sorted(n for r in packed for n in [r["position_ids"].count(0)]) == [1, 2, 3]
    assert sum(len(r["input_ids"]) for r in packed) == sum(lengths)
