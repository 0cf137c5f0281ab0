"""The lookup tool answers from a user's passages (or says nothing was found), bad files are one-line errors,
and a user extends the registry with a Python function."""

import pytest

from underdog import UnderdogError
from underdog.io import DataError
from underdog.tools import ToolRegistry, default_registry, run_call
from underdog.tools.lookup import from_jsonl, lookup_tool


def test_lookup_over_user_passages(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "Glorps eat seeds. Dax is the parent of Mil."}\n{"text": "Zints can fly."}\n')
    registry = default_registry(lookup_tool(from_jsonl(path)))
    assert run_call(registry, "Lookup(parent of Mil)").output == "Dax is the parent of Mil."
    assert run_call(registry, "Lookup(zints)").output == "Zints can fly."
    assert run_call(registry, "Lookup(blorfs)").output == "error: nothing found"
    assert run_call(registry, "Lookup(the of)").output.startswith("error:")


def test_bad_passages_file_names_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "ok."}\n{"txt": "no"}\n')
    with pytest.raises(DataError, match=":2:"):
        from_jsonl(path)


def test_user_tools_and_names():
    registry = ToolRegistry()
    registry.register("Reverse", lambda s: s[::-1], "reverses text")
    assert run_call(registry, "Reverse(abc)").output == "cba"
    assert "Reverse" in registry and registry.names() == ["Reverse"]
    with pytest.raises(UnderdogError):
        registry.register("bad name", str)
