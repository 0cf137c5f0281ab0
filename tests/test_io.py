"""JSONL reading: every malformed line is reported with file, line and field."""

import pytest

from underdog.io import DataError, read_jsonl, write_jsonl
from underdog.tasks.choice import read_choice_file


def test_round_trip(tmp_path):
    rows = [{"id": "a", "x": 1}, {"id": "b", "x": 2}]
    write_jsonl(tmp_path / "f.jsonl", rows)
    back = read_jsonl(tmp_path / "f.jsonl", required={"id": str, "x": int})
    assert [{k: v for k, v in r.items() if k != "_line"} for r in back] == rows
    assert [r["_line"] for r in back] == [1, 2]


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "context": "c", "choices": ["x", "y"], "answer": 0', "f.jsonl:2: invalid JSON"),
    ('[1, 2]', "f.jsonl:2: expected a JSON object"),
    ('{"id": "a", "context": "c", "answer": 0}', "f.jsonl:2: missing field 'choices'"),
    ('{"id": "a", "context": "c", "choices": "xy", "answer": 0}', "f.jsonl:2: field 'choices' should be list"),
    ('{"id": "a", "context": "c", "choices": ["x", "y"], "answer": true}', "f.jsonl:2: field 'answer' should be integer"),
    ('{"id": "a", "context": "c", "choices": ["x", "y"], "answer": 3}', "f.jsonl:2: field 'answer' is 3"),
    ('{"id": "a", "choices": ["x", "y"], "answer": 0}', "f.jsonl:2: missing field 'context'"),
])
def test_malformed_line_names_file_line_and_field(tmp_path, line, message):
    good = '{"id": "ok", "context": "c", "choices": ["x", "y"], "answer": 1}'
    path = tmp_path / "f.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError, match=message.replace("[", r"\[")):
        read_choice_file(path)
