"""The tool registry: named tools a generation may call, and how a user adds one.

A tool is a Python function ``fn(text: str) -> str`` under a name (``Calculator``, ``Lookup``, ...). The
registry owns the names; ``runtime.run_call`` owns calling them safely (input and output limits, a time
limit, errors as text). ``default_registry()`` holds the calculator; ``registry.register("Name", fn)`` adds a
user's tool (a name is letters, digits and underscores, starting with a letter). ``bounded=True`` marks a tool
whose run time is bounded by its own input limits (the built-in ones), so the runtime calls it inline instead
of in a watchdog thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from underdog import UnderdogError

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


@dataclass(frozen=True)
class Tool:
    name: str
    fn: Callable[[str], str]
    description: str = ""
    example: str = ""  # one call input, for few-shot prompts, e.g. "37*48"
    bounded: bool = False  # its run time is bounded by its input limits: called inline, no watchdog thread


class ToolRegistry:
    """Tools by name. ``register`` a function; look one up with ``registry["Calculator"]`` or ``get``."""

    def __init__(self, tools: list[Tool] | None = None):
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Tool) -> Tool:
        if not NAME.fullmatch(tool.name):
            raise UnderdogError(f"tool name {tool.name!r} must be letters, digits or _ (starting with a letter)")
        if not callable(tool.fn):
            raise UnderdogError(f"tool {tool.name!r}: fn must be callable")
        self._tools[tool.name] = tool
        return tool

    def register(self, name: str, fn: Callable[[str], str], description: str = "", example: str = "",
                 bounded: bool = False) -> Tool:
        """Add (or replace) the tool ``name``, calling ``fn(input_text) -> output_text``."""
        return self.add(Tool(name, fn, description, example, bounded))

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def names(self) -> list[str]:
        return list(self._tools)


def calculator_tool() -> Tool:
    from underdog.tools.calculator import calculate

    return Tool("Calculator", calculate, "+ - * / and parentheses on integers and decimals", "37*48", bounded=True)


def default_registry(*extra: Tool) -> ToolRegistry:
    """A registry with the calculator and any ``extra`` tools (e.g. ``lookup.lookup_tool(...)``)."""
    return ToolRegistry([calculator_tool(), *extra])
