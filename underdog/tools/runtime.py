"""Tool calls in generated text: find them, run them safely, and format what goes back into the text.

A call is text the model writes: ``[Calculator(37*48) ->``; the runtime answers `` 1776]`` and decoding goes
on. ``pending_call(text)`` says whether ``text`` has just ended a call (it ends with ``->`` inside an open
``[``); ``run_call(registry, segment)`` parses ``Name(input)`` and runs the tool. The text is untrusted: every
failure (malformed call, unknown tool, calculator error, a user tool raising, returning non-text or running
past ``timeout_s``) comes back as a short ``error: ...`` text, never an exception. Outputs are cut to
``max_output_chars``, brackets and line breaks removed (a result cannot close the call early or inject a new
one). Built-in tools are bounded by their input limits and run inline; a user's tool runs in a daemon thread
joined with a timeout (a tool that never returns leaves its thread behind, but the generation goes on).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass

from underdog.tools.registry import ToolRegistry

OPEN, ARROW, CLOSE = "[", "->", "]"
_CALL = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]{0,31})\((.*)\)\s*", re.DOTALL)


@dataclass
class ToolCall:
    """One executed call: tool name ("" when the call did not parse), input, output text, ok, seconds."""

    tool: str
    input: str
    output: str
    ok: bool
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def pending_call(text: str) -> str | None:
    """The call segment (between the last ``[`` and the final ``->``) when ``text`` ends a call, else None."""
    stripped = text.rstrip(" ")
    if not stripped.endswith(ARROW):
        return None
    start = stripped.rfind(OPEN)
    if start < 0 or CLOSE in stripped[start:]:
        return None
    return stripped[start + 1: -len(ARROW)]


def parse_call(segment: str, max_call_chars: int = 300) -> tuple[str, str]:
    """``"Calculator(37*48) "`` -> ``("Calculator", "37*48")``; raises ValueError with a short reason."""
    if len(segment) > max_call_chars:
        raise ValueError("call too long")
    m = _CALL.fullmatch(segment)
    if not m:
        raise ValueError("malformed call, expected [Tool(input) ->")
    return m.group(1), m.group(2)


def clean_output(text: str, max_output_chars: int = 200) -> str:
    """One line, no brackets, at most ``max_output_chars`` characters."""
    text = re.sub(r"[\[\]\r\n\t\x00-\x1f]", " ", text).replace(ARROW, " ")
    text = " ".join(text.split())
    return text[:max_output_chars].rstrip()


def _short(e: BaseException) -> str:
    msg = str(e).splitlines()[0][:80] if str(e).strip() else type(e).__name__
    return msg


def run_call(registry: ToolRegistry, segment: str, timeout_s: float = 1.0, max_output_chars: int = 200,
             max_call_chars: int = 300) -> ToolCall:
    """Parse and run one call segment; every failure becomes ``ToolCall(ok=False, output="error: ...")``."""
    start = time.perf_counter()
    try:
        name, arg = parse_call(segment, max_call_chars)
    except ValueError as e:
        return ToolCall("", segment[:max_call_chars], f"error: {e}", False, time.perf_counter() - start)
    tool = registry.get(name)
    if tool is None:
        known = ", ".join(registry.names())
        return ToolCall(name, arg, f"error: unknown tool {name} (known: {known})"[:max_output_chars], False,
                        time.perf_counter() - start)
    box: dict = {}

    def call() -> None:
        try:
            box["out"] = tool.fn(arg)
        except Exception as e:  # noqa: BLE001 - any failure of a tool is text for the model, not a crash
            box["err"] = _short(e)
        except RecursionError:
            box["err"] = "too deep"

    if tool.bounded:
        call()
    else:
        worker = threading.Thread(target=call, daemon=True, name=f"tool-{name}")
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            return ToolCall(name, arg, "error: timeout", False, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if "err" in box:
        return ToolCall(name, arg, clean_output(f"error: {box['err']}", max_output_chars), False, seconds)
    out = box.get("out")
    if not isinstance(out, str):
        return ToolCall(name, arg, "error: tool returned no text", False, seconds)
    return ToolCall(name, arg, clean_output(out, max_output_chars), True, seconds)


def result_text(call: ToolCall) -> str:
    """What goes back into the generation after ``->``: `` <output>]``."""
    return f" {call.output}{CLOSE}"
