"""The generalization study: fine-tuning data never holds a test statement, junk augmentations are dropped
and counted, and the study runs end to end and resumes."""

import json

import pytest

from underdog.methods.parts import augment
from underdog.methods.parts.finetune import split_sentences, training_examples
from underdog.world.render import capitalize, strip_leadin
from underdog.world.retrieve import content_words


def test_global_prompts_put_the_target_document_right_above_the_inference(tiny_lm, small_world):
    world = small_world
    prompts = augment.global_prompts(tiny_lm.tokenizer, world.documents, budget=1500, per_document=2)
    assert len(prompts) == sum(min(2, len(split_sentences(d["text"]))) for d in world.documents)
    shots = augment.few_shot("infer")
    for kind, source, prompt in prompts:
        head, _, tail = prompt.rpartition("\n")
        assert kind == "infer" and prompt.startswith(shots) and tail.startswith("Infer: ")
        documents = head[len(shots):]
        owner = next(d for d in world.documents if source in d["text"])
        assert owner["text"] in documents and "=>" not in documents  # the shots stay above the documents
        assert len(tiny_lm.tokenizer.encode(prompt)) <= 1500


def test_linked_prompts_pair_training_sentences_that_share_a_word_in_chain_order(small_world):
    world = small_world
    sentences = {strip_leadin(s) for d in world.documents for s in split_sentences(d["text"])}
    prompts = augment.linked_prompts(world.documents, links=2)
    shots = augment.few_shot("link")
    pairs = set()
    for kind, source, prompt in prompts:
        first, second = split_sentences(source)
        assert kind == "link" and first in sentences and second in sentences and first != second
        assert prompt == f"{shots}Infer: {source} =>"
        assert content_words(first) & content_words(second)
        pairs.add(frozenset((first, second)))
    assert len(pairs) == len(prompts)  # each pair is asked once, in one order
    assert len(prompts) <= 2 * len(sentences)
    # "All A are B." then "All B are C.": the shared word ends the first premise and starts the second
    chain = [{"id": "d", "text": "All bokus are zimpas. All darfos are bokus.", "facts": []}]
    [(_, source, _)] = augment.linked_prompts(chain, links=1)
    assert source == "All darfos are bokus. All bokus are zimpas."
    # a partner that continues the chain comes before one that only shares the word in the same place
    star = [{"id": "d", "text": "Zorbis are a kind of blicko. Tamzos are a kind of blicko. Any blicko has wings.",
             "facts": []}]
    sources = [s for _, s, _ in augment.linked_prompts(star, links=1)]
    assert sources[0] == "Zorbis are a kind of blicko. Any blicko has wings."
    assert "Zorbis are a kind of blicko. Tamzos are a kind of blicko." not in sources
    # a second round pairs last round's conclusions with sentences, and only those
    tree = [{"id": "d", "text": "Zorbis are a kind of blicko. Blickos are a kind of frumpa. Any frumpa has wings.",
             "facts": []}]
    again = augment.linked_prompts(tree, links=2, conclusions=["Zorbis are a kind of frumpa."])
    assert [s for _, s, _ in again][0] == "Zorbis are a kind of frumpa. Any frumpa has wings."
    assert all("Zorbis are a kind of frumpa." in s for _, s, _ in again)


def test_the_best_non_junk_beam_is_kept(monkeypatch):
    from types import SimpleNamespace

    beams = [[" Bokus are bokus.", " Darfos are zimpas.", " Zimpas are darfos."],  # best beam is junk
             [" Bokus are bokus.", " Bokus are bokus."]]  # every beam is junk
    monkeypatch.setattr(augment, "generate", lambda lm, prompts, **kw: [
        [SimpleNamespace(text=t) for t in b] for b in beams[: len(prompts)]])
    prompts = [("link", "All darfos are bokus. All bokus are zimpas.", "p1"), ("link", "Bokus are x.", "p2")]
    kept, counts = augment.generate_augmentations(None, prompts, beams=3)
    assert [a["text"] for a in kept] == ["Darfos are zimpas."]
    assert counts == {"generated": 2, "kept": 1, "self-reference": 1}


def test_finetuning_data_never_contains_a_test_statement(small_world):
    world = small_world
    for mode in ("off", "independent", "cumulative"):
        examples = training_examples(world.documents, mode)
        text = " ".join(e.get("text", "") + " " + e.get("prompt", "") + e.get("completion", "") for e in examples)
        text = text.lower()
        for q in world.questions:
            if q["split"] == "forward":
                continue  # forward questions ask a trained fact, by design
            statement = (q["question"] + " " + q["choices"][q["answer"]]).lower()
            assert statement not in text, f"{q['split']} answer leaked: {statement}"


def test_sentence_splitting_keeps_every_sentence():
    doc = {"id": "d", "text": "Zorps are a kind of blick. Did you know that Tam is the parent of Lo? No fims are zorps."}
    assert split_sentences(doc["text"]) == ["Zorps are a kind of blick.", "Did you know that Tam is the parent of Lo?",
                                            "No fims are zorps."]
    cumulative = training_examples([doc], "cumulative")
    assert cumulative[0] == {"text": "Zorps are a kind of blick."}
    assert cumulative[2] == {"prompt": "Zorps are a kind of blick. Did you know that Tam is the parent of Lo?",
                             "completion": " No fims are zorps."}


def test_malformed_augmentations_are_dropped_and_counted():
    source = "Zorps are a kind of blick."
    cases = {
        " Blicks include zorps.\nReverse: junk": ("Blicks include zorps.", "kept"),
        " ": (None, "empty"),
        " Zorps.": (None, "length"),
        " blicks include": (None, "unfinished"),
        " Zorps are a kind of blick.": (None, "copy of source"),
        " Rephrase: x => y.": (None, "format"),
        " Zorps are a kind of zorp.": (None, "self-reference"),
    }
    for output, expected in cases.items():
        assert augment.clean(source, output, "reverse") == expected
    assert augment.clean(source, " Tims are zorps. => Tims are blicks.", "infer") == ("Tims are blicks.", "kept")
    assert augment.clean(source, " Tims are zorps.", "infer") == (None, "no '=>'")
    premises = "All tims are zorps. All zorps are blicks."
    assert augment.clean(premises, " All tims are blicks.", "link") == ("All tims are blicks.", "kept")
    assert augment.clean(premises, " All zorps are blicks.", "link") == (None, "copy of source")


def test_truth_rate_checks_augmentations_against_the_world(small_world):
    world = small_world
    fact = next(f for f in world.facts if f.rel == "isa")
    true = capitalize(f"{fact.b}s include {fact.a}s") + "."
    false = capitalize(f"{fact.a}s include {fact.b}s") + "."
    augs = [{"kind": "reverse", "source": "", "text": true}, {"kind": "reverse", "source": "", "text": false},
            {"kind": "rephrase", "source": "", "text": "Gibberish words here."}]
    rate = augment.truth_rate(augs, world.facts)
    assert [a["true"] for a in augs] == [True, False, False]
    assert rate["unparsed"] == 1 and abs(rate["true_fraction"] - 1 / 3) < 1e-9


def test_few_shot_examples_share_no_word_with_eval_worlds(small_world):
    from underdog.world.words import word_pool

    text = augment.few_shot("reverse") + augment.few_shot("infer")
    words = {w.lower().rstrip("s") for w in text.replace(".", " ").split() if w[0].isupper() or w.islower()}
    eval_words = {w for w in words if len(w) >= 4 and word_pool(w) == "eval"}
    world = small_world
    assert not eval_words & {w.lower() for w in world.words}


def test_study_runs_end_to_end_and_resumes(tiny_lm, llama_dir, tmp_path, small_world):
    from underdog.methods.generalization import GeneralizationRecipe, run_generalization
    from underdog.world import write_world

    write_world(small_world, tmp_path / "world")
    recipe = GeneralizationRecipe.model_validate({
        "model": str(llama_dir), "world": str(tmp_path / "world"), "out": str(tmp_path / "run"),
        "methods": ["none", "icl", "ft", "aug-local"], "max_per_split": 5, "device": "cpu",
        "train": {"epochs": 1, "batch_size": 8, "max_length": 64},
    })
    logs = []
    results = run_generalization(recipe, log=logs.append)
    assert {"none/forward", "icl/reversal", "ft/syllogism", "aug-local/two_hop"} <= set(results["metrics"])
    assert all(0 <= m["value"] <= 1 and len(m["ci95"]) == 2 for m in results["metrics"].values())
    assert (tmp_path / "run" / "generalization.png").stat().st_size > 1000
    assert (tmp_path / "run" / "stages" / "augment-local" / "augmentations_local.jsonl").exists()
    counts = results["augmentations"]["local"]["counts"]
    assert counts["generated"] == sum(v for k, v in counts.items() if k != "generated")
    assert results["by_kind"]["forward:family/icl"]["n"] >= 1
    assert "## By knowledge kind" in (tmp_path / "run" / "report.md").read_text()
    again = run_generalization(recipe, log=logs.append)
    assert again["metrics"] == results["metrics"]
    assert set(again["timing"]["skipped_stages"]) == {"augment-local", "none", "icl", "ft", "aug-local"}
    assert json.loads((tmp_path / "run" / "results.json").read_text())["method"] == "generalization"


def test_dtype_reaches_the_loaded_model_and_the_results(llama_dir, tmp_path, small_world):
    from underdog.methods.generalization import GeneralizationRecipe, run_generalization
    from underdog.world import write_world

    write_world(small_world, tmp_path / "world")
    recipe = GeneralizationRecipe.model_validate({
        "model": str(llama_dir), "world": str(tmp_path / "world"), "out": str(tmp_path / "run"),
        "methods": ["none"], "max_per_split": 2, "device": "cpu", "dtype": "bfloat16"})
    results = run_generalization(recipe, log=lambda _: None)
    assert results["model_info"]["dtype"] == "bfloat16"


def test_augmented_arms_train_on_the_budgeted_multiple_of_ft_tokens(tiny_lm, small_world):
    from underdog.methods.generalization import augmented_epochs

    world = small_world
    plain = training_examples(world.documents, "independent")
    extras = [s for d in world.documents for s in split_sentences(d["text"])] * 3  # 4x the data in all
    examples = training_examples(world.documents, "independent", extras)

    def tokens(rows):
        return sum(len(tiny_lm.tokenizer.encode(r["text"], add_special_tokens=False)) + 1 for r in rows)

    for budget in (1.0, 2.0):
        epochs = augmented_epochs(30, plain, examples, budget, tiny_lm.tokenizer)
        assert epochs * tokens(examples) == pytest.approx(budget * 30 * tokens(plain))
        assert epochs == pytest.approx(30 * budget / 4)


def test_accuracy_by_kind_splits_each_score_by_the_kind_of_fact_and_adds_back_up():
    from underdog.methods.generalization import accuracy_by_kind
    from underdog.report.generalization import kind_table

    questions = [{"id": f"q{i}", "split": "forward" if i < 6 else "reversal",
                  "kind": "comparison" if i % 2 else "family"} for i in range(9)]
    answers = [{"id": q["id"], "split": q["split"], "correct": i in (0, 1, 2, 6)} for i, q in enumerate(questions)]
    metrics = accuracy_by_kind({"icl": {"answers": answers}}, questions)
    table = kind_table(metrics)
    assert metrics["forward:family/icl"]["value"] == 2 / 3 and metrics["forward:family/icl"]["n"] == 3
    assert metrics["forward:comparison/icl"]["value"] == 1 / 3
    assert metrics["reversal:family/icl"]["value"] == 0.5 and metrics["reversal:comparison/icl"]["value"] == 0.0
    split_acc = sum(m["value"] * m["n"] for k, m in metrics.items() if k.startswith("forward:")) / 6
    assert split_acc == sum(a["correct"] for a in answers[:6]) / 6
    assert table.index("forward:comparison") < table.index("reversal:comparison")  # splits in study order
    assert "| forward:family (3) |" in table and "| reversal:comparison (1) |" in table


def test_each_splits_subsample_is_independent_of_the_other_splits(small_world, tmp_path):
    """A split's seeded subsample does not move when another split grows (the world's top-up of holdout and
    two-hop once changed the reversal sample, which came after holdout in a shared draw)."""
    from underdog.methods.generalization import GeneralizationRecipe, load_study_world
    from underdog.world import write_world

    write_world(small_world, tmp_path / "w")
    recipe = GeneralizationRecipe(world=str(tmp_path / "w"), seed=3, max_per_split=5)
    _, before, _, _ = load_study_world(recipe)
    extra = [{**q, "id": f"x{i}"} for i, q in enumerate(q for q in small_world.questions if q["split"] == "holdout")]
    with open(tmp_path / "w" / "questions.jsonl", "a", encoding="utf-8") as f:
        f.writelines(json.dumps(q) + "\n" for q in extra)
    _, after, _, _ = load_study_world(recipe)
    assert [q["id"] for q in after if q["split"] == "holdout"] != [q["id"] for q in before if q["split"] == "holdout"]
    for split in ("rephrasing", "reversal", "syllogism", "two_hop"):
        assert [q["id"] for q in after if q["split"] == split] == [q["id"] for q in before if q["split"] == split]


def test_save_model_keeps_the_best_fine_tuned_arm_loadable(llama_dir, tmp_path, small_world):
    """`save_model: true`: the best fine-tuned arm lands in <out>/model; loaded back, it answers the test
    questions exactly as it did inside the study; and the flag re-runs only the arms it changes."""
    from underdog.lm import load
    from underdog.methods.generalization import GeneralizationRecipe, answer_questions, run_generalization
    from underdog.world import write_world

    write_world(small_world, tmp_path / "world")
    base = {"model": str(llama_dir), "world": str(tmp_path / "world"), "out": str(tmp_path / "run"),
            "methods": ["none", "ft-lora"], "max_per_split": 4, "device": "cpu", "lanes": 1,
            "lora": {"epochs": 1, "batch_size": 8, "max_length": 64}}
    run_generalization(GeneralizationRecipe.model_validate(base), log=lambda m: None)
    results = run_generalization(GeneralizationRecipe.model_validate({**base, "save_model": True}),
                                 log=lambda m: None)
    assert results["timing"]["skipped_stages"] == ["none"]  # only the arm that saves a model re-ran
    kept = load(tmp_path / "run" / "model", device="cpu")
    assert (tmp_path / "run" / "model" / "adapter_config.json").is_file()
    stage = json.loads((tmp_path / "run" / "stages" / "ft-lora" / "result.json").read_text())["result"]
    by_id = {q["id"]: q for q in small_world.questions}
    questions = [by_id[a["id"]] for a in stage["answers"]]
    again = answer_questions(kept, questions, [q["question"] for q in questions], batch_size=8)
    assert [a["pred"] for a in again] == [a["pred"] for a in stage["answers"]]
