"""Grounded call arguments: the numbers a model writes inside a tool call must already be in its context.

A tiny model that calls a calculator often computes the right operation on a miscopied operand (``2319``
for the story's ``2391``). With grounding on, ``lm.toolgen`` lets a call's input contain only numbers that
appear in the prompt or in an earlier tool result of the same generation: while the model writes a number
inside an open call, the digits it may write next are those that continue some number of its context, and
it may end the number only where that number ends. The model still chooses which number, which operation and
whether to call at all; grounding only removes digit-level copying errors, the way schema-constrained decoding
keeps function-call arguments well-formed. This module holds the text side (what is open, what is allowed);
``lm.toolgen`` turns it into a mask over the vocabulary.
"""

from __future__ import annotations

import re

from underdog.tools.runtime import ARROW, CLOSE, OPEN

NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CALL_HEAD = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]{0,31}\(")  # as runtime._CALL: spaces may lead


def numbers_in(text: str) -> set[str]:
    """The unsigned numbers written in ``text`` (``"-5 and 2.50"`` -> ``{"5", "2.50"}``)."""
    return set(NUMBER.findall(text))


def open_call_input(text: str) -> str | None:
    """The input written so far when ``text`` ends inside a call (``"... [Calculator( 23"`` -> ``" 23"``),
    else None: no open ``[``, no ``Name(`` right after it, or the call already ended with ``->``."""
    start = text.rfind(OPEN)
    if start < 0 or CLOSE in text[start:]:
        return None
    head = _CALL_HEAD.match(text, start + 1)
    if head is None:
        return None
    arg = text[head.end():]
    return None if ARROW in arg else arg


def is_grounded(arg: str, allowed: set[str]) -> bool:
    """Whether every number of ``arg`` is in ``allowed``; the last one, when ``arg`` ends inside it (on a digit,
    or on a decimal point after one), only has to be the start of an allowed number."""
    spans = list(NUMBER.finditer(arg))
    open_tail = None
    if spans and (spans[-1].end() == len(arg) or arg.endswith(".") and spans[-1].end() == len(arg) - 1):
        open_tail = arg[spans[-1].start():]
        spans = spans[:-1]
    if any(m.group(0) not in allowed for m in spans):
        return False
    return open_tail is None or any(a.startswith(open_tail) for a in allowed)
