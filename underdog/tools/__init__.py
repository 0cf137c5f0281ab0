"""Tools a generation can call (Toolformer-style): a calculator, a lookup, a registry a user extends.

``calculator`` is a recursive-descent arithmetic parser with limits (never ``eval``); ``lookup`` answers a
query with the best-matching sentence of a world or a user's passages; ``registry`` names the tools;
``runtime`` finds calls in generated text (``[Tool(input) ->``), runs them safely with a time limit and
returns the text to append (`` result]``); ``grounding`` says which numbers a call may use (those already in
its context). Generation with calls lives in ``underdog.lm.toolgen``.
"""

from underdog.tools.calculator import CalcError, Limits, calculate
from underdog.tools.registry import Tool, ToolRegistry, calculator_tool, default_registry
from underdog.tools.runtime import ToolCall, parse_call, pending_call, result_text, run_call

__all__ = ["CalcError", "Limits", "Tool", "ToolCall", "ToolRegistry", "calculate", "calculator_tool",
           "default_registry", "parse_call", "pending_call", "result_text", "run_call"]
