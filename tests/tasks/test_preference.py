"""Preference JSONL: TRL's plain and conversational formats read back; every malformed line is one DataError
naming file:line (and the byte offset of bytes that are not UTF-8)."""

import json

import pytest

from underdog import UnderdogError
from underdog.io import DataError
from underdog.tasks.preference import read_preferences, write_preferences

PLAIN = {"prompt": "Question: who? Answer:", "chosen": " Ann.", "rejected": " Bob."}
CHAT = {"prompt": [{"role": "user", "content": "who?"}], "chosen": [{"role": "assistant", "content": "Ann."}],
        "rejected": [{"role": "assistant", "content": "Bob."}]}


def _write(tmp_path, lines, name="p.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"".join((json.dumps(x).encode() if isinstance(x, dict) else x) + b"\n" for x in lines))
    return path


def test_plain_and_conversational_round_trip(tmp_path):
    rows = read_preferences(_write(tmp_path, [PLAIN, b"", {**PLAIN, "chosen": " Cy.", "extra": 1}]))
    assert rows == [PLAIN, {**PLAIN, "chosen": " Cy."}]  # blank lines skipped, extra keys dropped
    assert read_preferences(_write(tmp_path, [CHAT, CHAT], "c.jsonl")) == [CHAT, CHAT]
    write_preferences(tmp_path / "w.jsonl", [{**PLAIN, "kind": "x"}])
    assert read_preferences(tmp_path / "w.jsonl") == [PLAIN]


@pytest.mark.parametrize("bad, message", [
    ({"prompt": "q", "chosen": "a"}, "missing field 'rejected'"),
    ({**PLAIN, "chosen": "  "}, "field 'chosen' is empty"),
    ({**PLAIN, "rejected": ""}, "field 'rejected' is empty"),
    ({**PLAIN, "rejected": PLAIN["chosen"]}, "same text"),
    ({**PLAIN, "prompt": 3}, "must be all strings (plain) or all message lists"),
    ({**CHAT, "chosen": [{"role": "assistant", "content": ""}]}, "chosen[0] has empty 'content'"),
    ({**CHAT, "chosen": [{"role": "robot", "content": "x"}]}, "role 'robot'"),
    (CHAT, "a conversational line in a file whose first line is plain"),
    (b'{"prompt": "q", "chosen": ', "invalid JSON"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_bad_line_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path, [PLAIN, bad])
    with pytest.raises(DataError) as e:
        read_preferences(path)
    assert str(e.value).startswith(f"{path}:2: ") and message in str(e.value)
    assert isinstance(e.value, UnderdogError)  # the CLI prints it on one line and exits 2


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    first = json.dumps(PLAIN).encode() + b"\n"
    bad = b'{"prompt": "caf\xe9", "chosen": " a.", "rejected": " b."}'
    path = _write(tmp_path, [PLAIN, bad])
    offset = len(first) + bad.index(0xE9)
    with pytest.raises(DataError, match=rf":2: bytes that are not UTF-8 at byte offset {offset} \(byte 0xe9\)"):
        read_preferences(path)


def test_missing_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_preferences(tmp_path / "none.jsonl")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no preference pairs"):
        read_preferences(tmp_path / "e.jsonl")
