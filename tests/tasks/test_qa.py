"""QA data: the JSONL schema with file:line:field errors, SQuAD / TriviaQA / CoQA converters (and the CLI),
and the open-book world-QA task in the pretraining prompt format."""

import json

import pytest

from underdog.cli import main
from underdog.io import DataError
from underdog.tasks.qa import convert, qa_completion, qa_prompt, read_qa, world_qa

SQUAD = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
    {"context": "The cat sat on the mat.", "qas": [
        {"id": "s1", "question": "Where did the cat sit?", "answers": [{"text": "on the mat", "answer_start": 8},
                                                                       {"text": "the mat", "answer_start": 12},
                                                                       {"text": "on the mat", "answer_start": 8}]},
        {"id": "s2", "question": "Who sat?", "answers": [{"text": "The cat", "answer_start": 0}]}]}]}]}
TRIVIA = {"Data": [{"Question": "Which planet is red?", "QuestionId": "tq1",
                    "Answer": {"Value": "Mars", "Aliases": ["Mars", "the red planet"], "Type": "WikipediaEntity"},
                    "EntityPages": [], "SearchResults": []}], "Version": 1.0}
COQA = {"version": "1.0", "data": [{"id": "c1", "story": "Ann has a red ball.", "questions": [
    {"input_text": "Who has a ball?", "turn_id": 1}, {"input_text": "What color is it?", "turn_id": 2}],
    "answers": [{"input_text": "Ann", "turn_id": 1}, {"input_text": "red", "turn_id": 2}],
    "additional_answers": {"0": [{"input_text": "Ann.", "turn_id": 1}, {"input_text": "Red", "turn_id": 2}]}}]}


def _write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def test_converters_and_cli(tmp_path, capsys):
    n = convert("squad", _write(tmp_path, "squad.json", SQUAD), tmp_path / "squad.jsonl")
    rows = read_qa(tmp_path / "squad.jsonl")
    assert n == 2 and rows[0] == {"id": "s1", "question": "Where did the cat sit?", "answers": ["on the mat", "the mat"],
                                  "context": "The cat sat on the mat."}
    assert main(["data", "convert", "--format", "triviaqa", str(_write(tmp_path, "tq.json", TRIVIA)),
                 str(tmp_path / "tq.jsonl")]) == 0
    assert "1 questions" in capsys.readouterr().out
    assert read_qa(tmp_path / "tq.jsonl") == [{"id": "tq1", "question": "Which planet is red?",
                                                "answers": ["Mars", "the red planet"]}]
    convert("coqa", _write(tmp_path, "coqa.json", COQA), tmp_path / "coqa.jsonl")
    turns = read_qa(tmp_path / "coqa.jsonl")
    assert [t["id"] for t in turns] == ["c1_1", "c1_2"]
    assert turns[0]["answers"] == ["Ann", "Ann."] and turns[1]["answers"] == ["red", "Red"]
    assert turns[1]["context"] == "Ann has a red ball.\n\nQuestion: Who has a ball? Answer: Ann."
    assert qa_prompt(turns[1]).endswith("Answer: Ann.\n\nQuestion: What color is it? Answer:")


def test_bad_source_records_name_file_and_place(tmp_path):
    bad = json.loads(json.dumps(SQUAD))
    del bad["data"][0]["paragraphs"][0]["qas"][1]["question"]
    with pytest.raises(DataError, match=r"squad.json: data\[0\]\.paragraphs\[0\]\.qas\[1\]: missing field 'question'"):
        convert("squad", _write(tmp_path, "squad.json", bad), tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    (tmp_path / "broken.json").write_text('{"Data": [\n{"Question": }')
    with pytest.raises(DataError, match="broken.json:2: invalid JSON"):
        convert("triviaqa", tmp_path / "broken.json", tmp_path / "out.jsonl")
    assert main(["data", "convert", "--format", "coqa", str(tmp_path / "missing.json"), str(tmp_path / "o.jsonl")]) == 2


@pytest.mark.parametrize("line, message", [
    ('{"id": "b", "question": "q?"}', "f.jsonl:2: missing field 'answers'"),
    ('{"id": "b", "question": "q?", "answers": "x"}', "f.jsonl:2: field 'answers' should be list"),
    ('{"id": "b", "question": "q?", "answers": []}', "f.jsonl:2: field 'answers' is empty"),
    ('{"id": "b", "question": "q?", "answers": [""]}', "f.jsonl:2: field 'answers' must hold non-empty strings"),
    ('{"id": "a", "question": "q?", "answers": ["x"]}', "f.jsonl:2: field 'id': duplicate id 'a'"),
    ('{"id": "b", "question": "q?", "answers": ["x"], "context": 3}', "f.jsonl:2: field 'context' should be string"),
])
def test_bad_qa_lines(tmp_path, line, message):
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": "a", "question": "q?", "answers": ["x"]}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        read_qa(path)


def test_world_qa_is_open_book_in_the_pretraining_format():
    sizes = dict(n_dimensions=4, n_syllogisms=12, n_categories=16, n_families=3)
    splits = world_qa(5, n_train=30, n_dev=10, n_test=40, **sizes)
    assert [len(splits[k]) for k in ("train", "dev", "test")] == [30, 10, 40]
    assert splits == world_qa(5, n_train=30, n_dev=10, n_test=40, **sizes)
    ids = [q["id"] for part in splits.values() for q in part]
    assert len(ids) == len(set(ids))
    assert len({q["split"] for q in splits["test"]}) >= 4
    from underdog.world import make_world, support_documents

    world = make_world(5, **sizes)
    docs = {d["id"]: d["text"] for d in world.documents}
    by_id = {q["id"]: q for q in world.questions}
    for item in splits["test"]:
        q = by_id[item["id"]]
        assert item["question"] == q["question"] + " ...?" and item["answers"] == [q["choices"][q["answer"]]]
        assert all(docs[d] in item["context"] for d in support_documents(world, q))
        assert len(item["context"].split("\n")) > len(support_documents(world, q))  # plus other documents
        assert qa_prompt(item).endswith(f"\n\nQuestion: {q['question']} ...? Answer:")
    assert qa_completion(" Lo ") == " Lo."
    with pytest.raises(ValueError, match="fewer than"):
        world_qa(5, n_train=10**5, **sizes)


def test_world_qa_with_options_uses_the_options_format():
    sizes = dict(n_dimensions=4, n_syllogisms=12, n_categories=16, n_families=3)
    item = world_qa(5, n_train=5, n_dev=0, n_test=5, options=True, **sizes)["test"][0]
    assert " ...? Options: " in qa_prompt(item) and qa_prompt(item).endswith(". Answer:")
    assert item["answers"][0] in item["question"].split("Options: ")[1]
