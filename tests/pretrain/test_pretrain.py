"""`underdog pretrain` end to end at toy scale: tokenizer, packed training, probe log, model card, install."""

import json

import pytest
import torch
from pydantic import ValidationError

from tests.tiny_models import build_model, make_tokenizer
from underdog.cli import main
from underdog.lm import load
from underdog.lm.load import LM
from underdog.lm.score import Score
from underdog.pretrain import probe as probe_module
from underdog.pretrain.probe import ComparatorProbe, LookupProbe
from underdog.pretrain.recipe import PretrainRecipe


def test_pretrain_smoke(tmp_path, monkeypatch):
    import underdog.pretrain.recipe as recipe_module

    monkeypatch.setattr(recipe_module, "ASSETS", tmp_path / "assets")
    out = tmp_path / "run"
    args = ["pretrain", f"out={out}", "install=toy", "tokens=40000", "vocab_size=400", "model.hidden=32",
            "model.layers=1", "model.heads=2", "model.intermediate=64", "model.context=1024", "batch_size=4",
            "probe_every=2", "probe_per_split=2", "final_probe_per_split=2", "save_every=2", "threads=1"]
    assert main(args) == 0
    log = [json.loads(line) for line in (out / "pretrain_log.jsonl").read_text().splitlines()]
    assert log and {"step", "loss", "tokens_seen", "probe", "probe_by_kind", "lookup", "chain", "chain_more",
                   "pairs", "pairs_family"} <= set(log[0])
    summary = json.loads((out / "final" / "pretrain_summary.json").read_text())
    assert summary["parameters"] > 0 and set(summary["probe_icl"]) >= {"forward", "reversal", "syllogism"}
    card = (tmp_path / "assets" / "toy" / "MODEL_CARD.md").read_text()
    assert "parameters" in card and "tokens" in card and "embeddings nearly coincide" in card
    assert isinstance(summary["collapsed_tokens"], list)
    assert {k.split(":")[0] for k in summary["probe_icl_by_kind"]} == set(summary["probe_icl"])
    assert "by split and kind of fact" in card
    assert set(summary["lookup"]) == {"copied", "swapped"} and "Lookup probe" in card
    assert "all" in summary["comparator"] and "Comparator probe" in card
    assert set(summary["chain"]) == set(summary["chain_more"]) == {"repeated", "other"} and "Chain probe" in card
    assert set(summary["pairs"]) == set(summary["pairs_family"]) == {"copied", "swapped"} and "Pair probe" in card
    lm = load(tmp_path / "assets" / "toy")
    assert lm.tokenizer.convert_tokens_to_ids("<|im_start|>") != lm.tokenizer.unk_token_id
    # a second run finds the finished tokenizer stage and the final checkpoint: nothing is retrained
    assert main(args) == 0


def test_pretrain_continues_into_a_wider_deeper_model_and_keeps_the_stage_history(tmp_path, monkeypatch):
    """The continued stage also adds ``line_space`` to the tokenizer it inherits: same vocabulary, and a line's
    first word now takes its in-line tokens. The history survives the source folder moving mid-run."""
    import underdog.pretrain.recipe
    import underdog.train

    small, large, moved = tmp_path / "small", tmp_path / "large", tmp_path / "moved"
    common = ["tokens=20000", "vocab_size=400", "model.context=1024", "batch_size=4",
              "probe_every=100", "probe_per_split=2", "final_probe_per_split=2", "save_every=100", "threads=1"]
    assert main(["pretrain", f"out={small}", "model.hidden=32", "model.heads=2", "model.intermediate=64",
                 "model.layers=1", *common]) == 0
    save_trained = underdog.train.save_trained

    def move_source_then_save(*args, **kwargs):
        small.rename(moved)
        return save_trained(*args, **kwargs)

    monkeypatch.setattr(underdog.pretrain.recipe, "save_trained", move_source_then_save)
    assert main(["pretrain", f"out={large}", f"init_from={small / 'final'}", "model.hidden=64", "model.heads=4",
                 "model.intermediate=128", "model.layers=2", "line_space=true", *common]) == 0
    moved.rename(small)
    assert json.loads((large / "final" / "config.json").read_text())["num_hidden_layers"] == 2
    summary = json.loads((large / "final" / "pretrain_summary.json").read_text())
    assert [st["init_from"] for st in summary["stages"]] == [None, str(small / "final")]
    assert summary["parameters"] > 2.5 * json.loads((small / "final" / "pretrain_summary.json").read_text())[
        "parameters"]
    card = (large / "final" / "MODEL_CARD.md").read_text()
    assert f"init_from={small / 'final'}" in card and "| 2 |" in card
    assert (large / "final" / "pretrain_log_stage1.jsonl").is_file()
    assert summary["tokenizer_options"] == ["line_space"] and "every line starts with a space" in card
    before, after = load(small / "final").tokenizer, load(large / "final").tokenizer
    assert before.get_vocab() == after.get_vocab()
    assert after.tokenize("Rislos are") == before.tokenize(" Rislos are") != before.tokenize("Rislos are")


def test_pretrain_from_scratch_can_reuse_another_models_tokenizer(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["tokens=20000", "model.hidden=32", "model.layers=1", "model.intermediate=64", "model.context=1024",
              "batch_size=4", "probe_every=100", "probe_per_split=2", "final_probe_per_split=2", "save_every=100",
              "threads=1"]
    assert main(["pretrain", f"out={first}", "vocab_size=400", "model.heads=4", *common]) == 0
    # another vocabulary size would train another tokenizer: tokenizer_from must win over it
    assert main(["pretrain", f"out={second}", "vocab_size=300", f"tokenizer_from={first / 'final'}",
                 "model.heads=1", "seed=3", *common]) == 0
    a, b = load(first / "final"), load(second / "final")
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    assert b.model.config.num_attention_heads == 1 and not (second / "stages" / "tokenizer").exists()
    summary = json.loads((second / "final" / "pretrain_summary.json").read_text())
    assert [st["init_from"] for st in summary["stages"]] == [None]  # a fresh model, not a continuation


def test_pretrain_with_a_caseless_tokenizer_saves_it_with_the_model(tmp_path):
    out = tmp_path / "run"
    assert main(["pretrain", f"out={out}", "caseless=true", "tokens=20000", "vocab_size=400", "model.hidden=32",
                 "model.layers=1", "model.heads=2", "model.intermediate=64", "model.context=1024", "batch_size=4",
                 "probe_every=100", "probe_per_split=2", "final_probe_per_split=2", "save_every=100",
                 "threads=1"]) == 0
    tok = load(out / "final").tokenizer
    line_start = tok.encode("Rislos are", add_special_tokens=False)
    inside = tok.encode("than rislos", add_special_tokens=False)
    rislos = tok.encode("rislos", add_special_tokens=False)
    assert line_start[1: 1 + len(rislos)] == rislos and inside[-len(rislos):] == rislos
    assert tok.decode(line_start) == "Rislos are"
    assert "caseless" in (out / "final" / "MODEL_CARD.md").read_text()
    assert json.loads((out / "final" / "pretrain_summary.json").read_text())["tokenizer_options"] == ["caseless"]


def test_a_continued_run_refuses_options_that_train_a_new_tokenizer():
    for option in ("caseless", "syllables"):
        with pytest.raises(ValidationError, match=f"{option} train a new tokenizer"):
            PretrainRecipe(init_from="builtin", **{option: True})
    assert PretrainRecipe(tokenizer_from="builtin", line_space=True).line_space


def test_separate_tokens_needs_a_model_to_continue():
    with pytest.raises(ValidationError, match="separate_tokens .* needs init_from"):
        PretrainRecipe(separate_tokens=[[" more", " less"]])
    assert PretrainRecipe(separate_tokens=[[" more", " less"]], init_from="builtin").separate_tokens


def test_init_from_takes_a_built_in_models_name_as_well_as_a_folder():
    from safetensors.torch import load_file

    from underdog.lm.load import BUILTIN_MODELS
    from underdog.pretrain.recipe import _load_init, build_model, earlier_record

    config = json.loads((BUILTIN_MODELS["builtin"] / "config.json").read_text())
    shape = {"hidden": config["hidden_size"], "layers": config["num_hidden_layers"], "intermediate":
             config["intermediate_size"], "heads": config["num_attention_heads"], "tied": False}
    recipe = PretrainRecipe(init_from="builtin", model=shape)
    model = build_model(recipe, _builtin_tokenizer())
    _load_init(model, recipe, lambda _: None, [])
    shipped = load_file(BUILTIN_MODELS["builtin"] / "model.safetensors")
    assert torch.equal(model.model.embed_tokens.weight, shipped["model.embed_tokens.weight"])
    assert len(earlier_record("builtin")["stages"]) >= 1


TINY_SHAPE = {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32, "context": 64}


def _builtin_tokenizer():
    from transformers import PreTrainedTokenizerFast

    from underdog.lm.load import resolve_model_path

    return PreTrainedTokenizerFast.from_pretrained(resolve_model_path("builtin"))


def test_an_untied_stage_starts_from_the_tied_model_with_the_same_function(tmp_path):
    import torch

    from underdog.pretrain.recipe import _load_init, build_model

    tokenizer, shape = _builtin_tokenizer(), TINY_SHAPE
    tied = build_model(PretrainRecipe(model=shape), tokenizer)
    tied.save_pretrained(tmp_path / "tied")
    recipe = PretrainRecipe(model={**shape, "tied": False}, init_from=str(tmp_path / "tied"), seed=1)
    untied = build_model(recipe, tokenizer)
    _load_init(untied, recipe, log=lambda _: None, separate=[])
    ids = torch.tensor([[1, 5, 9, 200, 7]])
    torch.testing.assert_close(untied(ids).logits, tied(ids).logits)
    output, embed = untied.get_output_embeddings().weight, untied.get_input_embeddings().weight
    assert output is not embed
    with torch.no_grad():
        output[3] += 1.0  # moving the output row leaves the input row where it was
    assert not torch.equal(output[3], embed[3])
    untied.save_pretrained(tmp_path / "untied")
    back = PretrainRecipe(model=shape, init_from=str(tmp_path / "untied"))
    with pytest.raises(ValueError, match="untied embeddings: set model.tied: false"):
        _load_init(build_model(back, tokenizer), back, log=lambda _: None, separate=[])


def test_separate_scale_sets_how_far_the_rows_are_redrawn_from_their_mean(tmp_path):
    from underdog.pretrain.recipe import _load_init, build_model, token_groups

    tokenizer, shape = _builtin_tokenizer(), TINY_SHAPE
    build_model(PretrainRecipe(model=shape), tokenizer).save_pretrained(tmp_path / "m")
    spread = {}
    for scale in (0.1, 3.0):
        recipe = PretrainRecipe(model=shape, init_from=str(tmp_path / "m"), separate_tokens=[[" more", " less"]],
                                separate_scale=scale)
        model = build_model(recipe, tokenizer)
        groups = token_groups(tokenizer, recipe.separate_tokens)
        _load_init(model, recipe, log=lambda _: None, separate=groups)
        rows = model.get_input_embeddings().weight[groups[0]]
        spread[scale] = float((rows[0] - rows[1]).norm())
    assert spread[3.0] > 10 * spread[0.1]


def test_probes_read_a_words_first_token_as_it_continues_a_line_whatever_the_tokenizer():
    from underdog.pretrain.probe import first_token
    from underdog.pretrain.tokenizer import train_tokenizer

    texts = ["Rislos are more busy than taklods.\nTaklods are less busy than rislos."] * 50
    for tok in (train_tokenizer(texts, 400), train_tokenizer(texts, 400, caseless=True)):
        more, less = first_token(tok, "more"), first_token(tok, "less")
        assert more != less
        assert tok.decode([more]).strip() == "more" and tok.decode([less]).strip() == "less"


def test_lookup_probe_asks_copied_and_swapped_slots_and_scores_a_model():
    probe = LookupProbe(units=6)
    kinds = {kind for kind, *_ in probe.items}
    assert kinds == {"copied", "swapped"}
    for kind, context, candidates, answer in probe.items:
        stated, asked = context.split("\n\n")
        name = asked.split()[0]
        line = next(x for x in stated.split("\n") if name in (x.split()[0], x.split()[-1].rstrip(".").capitalize()))
        assert answer in candidates and (kind == "copied") == (line.split()[0] == name)
        if kind == "copied" or line.split()[2] not in ("more", "less"):
            assert answer == line.split()[2]  # an open word is kept; more/less is flipped when swapped
        else:
            assert {answer, line.split()[2]} == {"more", "less"}
    tokenizer = make_tokenizer()
    scores = probe(LM(build_model("llama", tokenizer).eval(), tokenizer, name="tiny"))
    assert set(scores) == {"copied", "swapped"} and all(0 <= v <= 1 for v in scores.values())


def test_lookup_probe_batched_equals_one_context_at_a_time():
    probe, tokenizer = LookupProbe(units=4), make_tokenizer()
    lm = LM(build_model("llama", tokenizer).eval(), tokenizer, name="tiny")
    hits: dict[str, list[bool]] = {}
    with torch.no_grad():
        for kind, context, candidates, answer in probe.items:
            logits = lm.model(tokenizer(context, return_tensors="pt").input_ids).logits[0, -1]
            first = {c: tokenizer.encode(" " + c, add_special_tokens=False)[0] for c in candidates}
            best = max(candidates, key=lambda c: logits[first[c]].item())
            hits.setdefault(kind, []).append(first[best] == first[answer])
    reference = {kind: sum(v) / len(v) for kind, v in sorted(hits.items())}
    assert probe(lm, batch_size=3) == reference


def test_comparator_probe_cells_are_role_by_stated_comparator():
    probe = ComparatorProbe(units=40)
    cells = {cell for cell, _, _ in probe.items}
    assert cells == {"copied/more", "copied/less", "swapped/more", "swapped/less"}
    for cell, context, right in probe.items:
        stated, asked = context.split("\n\n")
        a, _, comparator, _, _, b = stated.rstrip(".").split()
        role, said = cell.split("/")
        assert said == comparator and asked.split()[0] == (a if role == "copied" else b.capitalize())
        assert right == (comparator if role == "copied" else {"more": "less", "less": "more"}[comparator])


def test_comparator_probe_scores_a_model_that_always_says_more_right_on_two_cells_only(monkeypatch):
    tokenizer = make_tokenizer()
    more = tokenizer.encode(" more", add_special_tokens=False)[0]

    def always_more(lm, pairs, batch_size):
        return [Score(0.0 if cont == [more] else -1.0, [0.0], False) for _, cont in pairs]

    monkeypatch.setattr(probe_module, "score_tokens", always_more)
    lm = LM(build_model("llama", tokenizer).eval(), tokenizer, name="tiny")
    scores = ComparatorProbe(units=40)(lm)
    assert scores["copied/more"] == scores["swapped/less"] == 1.0
    assert scores["copied/less"] == scores["swapped/more"] == 0.0
    assert 0 < scores["all"] < 1


def test_comparator_probe_batched_equals_one_context_at_a_time():
    probe, tokenizer = ComparatorProbe(units=6), make_tokenizer()
    lm = LM(build_model("llama", tokenizer).eval(), tokenizer, name="tiny")
    first = {c: tokenizer.encode(" " + c, add_special_tokens=False)[0] for c in ("more", "less")}
    hits: dict[str, list[bool]] = {}
    with torch.no_grad():
        for cell, context, right in probe.items:
            logits = lm.model(tokenizer(context, return_tensors="pt").input_ids).logits[0, -1]
            wrong = "less" if right == "more" else "more"
            ok = bool(logits[first[right]] > logits[first[wrong]])
            hits.setdefault(cell, []).append(ok)
            hits.setdefault("all", []).append(ok)
    assert probe(lm, batch_size=5) == {cell: sum(v) / len(v) for cell, v in sorted(hits.items())}


def test_probe_command_reports_every_probe_on_a_saved_model(tmp_path, capsys):
    from tests.tiny_models import save_model_dir

    save_model_dir(tmp_path / "m", "llama")
    out = tmp_path / "probe.json"
    assert main(["probe", "--model", str(tmp_path / "m"), "--per-split", "2", "--units", "4", "--chain-units", "8",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["icl"]) == {"forward", "rephrasing", "reversal", "syllogism", "holdout", "two_hop"}
    assert set(report["lookup"]) == {"copied", "swapped"} and "all" in report["comparator"]
    assert set(report["chain"]) <= {"repeated", "other"} and set(report["chain_more"]) == {"repeated", "other"}
    assert set(report["pairs"]) == set(report["pairs_family"]) == {"copied", "swapped"}
    printed = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
    assert printed["comparator"] == "all" and printed["pairs_family"] == "copied"


def test_recipe_world_overrides_name_the_allowed_keys():
    assert PretrainRecipe(world={"p_more": 0.75}).world == {"p_more": 0.75}
    with pytest.raises(ValidationError, match=r"unknown world key\(s\) \['p_mor'\]; allowed: .*'p_more'"):
        PretrainRecipe(world={"p_mor": 0.75})


def test_recipe_drill_knobs_are_checked_when_the_recipe_loads():
    assert PretrainRecipe(drill={"lines": [1, 3], "p_more": 0.5}).drill == {"lines": [1, 3], "p_more": 0.5}
    with pytest.raises(ValidationError, match=r"unknown drill key\(s\) \['line'\]"):
        PretrainRecipe(drill={"line": [1, 3]})
    with pytest.raises(ValidationError, match="drill p_stated is a probability"):
        PretrainRecipe(drill={"p_stated": -0.1})


def test_probe_command_names_a_bad_line_range(capsys):
    assert main(["probe", "--model", "builtin", "--lines", "3-1"]) == 2
    assert "--lines takes N or LO-HI" in capsys.readouterr().err


def test_comparator_probe_with_several_lines_asks_each_stated_line():
    probe = ComparatorProbe(units=10, lines=(2, 3))
    for cell, context, right in probe.items:
        stated, asked = context.split("\n\n")
        assert 2 <= len(stated.split("\n")) <= 3
        name = asked.split()[0]
        line = next(x for x in stated.split("\n") if name in (x.split()[0], x.rstrip(".").split()[-1].capitalize()))
        copied = line.split()[0] == name
        assert cell.startswith("copied" if copied else "swapped")
        assert right == (line.split()[2] if copied else {"more": "less", "less": "more"}[line.split()[2]])


def test_without_context_loss_only_the_answers_of_context_units_carry_labels():
    from underdog.pretrain.recipe import _examples
    from underdog.train.data import IGNORE_INDEX, tokenize_example

    tok = make_tokenizer()
    texts = [("icl_near", "Lim are more x than zor.\n\nZor are less x than lim."), ("document", "Lim are big.\n\nZor too.")]
    whole = _examples(texts, context_loss=True)
    assert whole == [{"text": t} for _, t in texts]
    split = _examples(texts, context_loss=False)
    assert split == [{"prompt": "Lim are more x than zor.\n\n", "completion": "Zor are less x than lim."},
                     {"text": "Lim are big.\n\nZor too."}]
    rows = [tokenize_example(ex, tok, completion_only=True) for ex in split]
    context_len = len(tok("Lim are more x than zor.\n\n", add_special_tokens=False)["input_ids"])
    first = rows[0]["labels"]
    offset = len(first) - len(tok("Zor are less x than lim.", add_special_tokens=False)["input_ids"]) - 1  # EOS
    assert all(t == IGNORE_INDEX for t in first[:offset]) and offset >= context_len
    assert all(t != IGNORE_INDEX for t in first[offset:])
    assert sum(t != IGNORE_INDEX for t in rows[1]["labels"]) == len(rows[1]["labels"]) - 1  # all but the first


def test_pretrain_with_the_choice_loss_logs_it_and_says_so_on_the_card(tmp_path):
    out = tmp_path / "run"
    args = ["pretrain", f"out={out}", "tokens=20000", "vocab_size=400", "model.hidden=32", "model.layers=1",
            "model.heads=2", "model.intermediate=64", "model.context=1024", "batch_size=4", "probe_every=2",
            "probe_per_split=2", "final_probe_per_split=2", "save_every=100", "threads=1", "choice_loss=0.5",
            "choice_worlds=2", "choice_per_world=3", "choice_per_step=2", "choice_kinds={comparison: 3}"]
    assert main(args) == 0
    log = [json.loads(line) for line in (out / "pretrain_log.jsonl").read_text().splitlines()]
    assert all(e["aux_loss"] > 0 and 0 <= e["choice_accuracy"] <= 1 for e in log)
    summary = json.loads((out / "final" / "pretrain_summary.json").read_text())
    assert summary["stages"][-1]["choice_loss"] == 0.5
    card = (out / "final" / "MODEL_CARD.md").read_text()
    assert "0.5 x a multiple-choice ranking loss" in card and "{'comparison': 3.0}" in card


def test_recipe_choice_kinds_name_the_allowed_kinds():
    with pytest.raises(ValidationError, match="allowed:.*family"):
        PretrainRecipe(choice_kinds={"comparisons": 2.0})


def test_interpolate_init_ends_between_the_starting_and_the_trained_weights(tmp_path):
    """WiSE-FT: the stage's final weights are the mean of init_from's and the trained ones (train/final), and
    the card says so; without init_from there is nothing to interpolate with."""
    from safetensors.torch import load_file

    small, stage = tmp_path / "small", tmp_path / "stage"
    common = ["tokens=12000", "vocab_size=400", "model.context=1024", "batch_size=4", "model.hidden=32",
              "model.heads=2", "model.intermediate=64", "model.layers=1", "probe_every=100", "probe_per_split=2",
              "final_probe_per_split=2", "save_every=100", "threads=1", "lr=0.01"]
    assert main(["pretrain", f"out={small}", *common]) == 0
    assert main(["pretrain", f"out={stage}", f"init_from={small / 'final'}", "interpolate_init=0.5", *common]) == 0
    start, trained = load_file(small / "final" / "model.safetensors"), load_file(stage / "train" / "final" /
                                                                                 "model.safetensors")
    final = load_file(stage / "final" / "model.safetensors")
    assert not torch.equal(start["model.layers.0.mlp.up_proj.weight"], trained["model.layers.0.mlp.up_proj.weight"])
    for name in start:
        torch.testing.assert_close(final[name], (start[name] + trained[name]) / 2)
    assert "(WiSE-FT)" in (stage / "final" / "MODEL_CARD.md").read_text()
    with pytest.raises(ValidationError, match="interpolate_init .* needs init_from"):
        PretrainRecipe(interpolate_init=0.5)
