"""The calculator tool: a small recursive-descent parser for + - * / and parentheses, never ``eval``/``exec``.

The input is untrusted model output. ``calculate(text)`` accepts only ASCII digits, one decimal point per
number, ``+ - * /``, parentheses and spaces; grammar ``expr := term (("+" | "-") term)*``, ``term := factor
(("*" | "/") factor)*``, ``factor := ("+" | "-") factor | number | "(" expr ")"``. Arithmetic is exact
(``fractions.Fraction``) under hard limits checked *before* each operation can grow a number: input length,
digits per number, count of numbers, nesting depth, unary-sign chains, and the size of every intermediate
result (numerator and denominator digits, magnitude). Anything else raises ``CalcError`` with a short
message; the tool runtime turns it into error text. The answer is an integer when exact, else a decimal
rounded to ``decimals`` places.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

DIGITS = "0123456789"  # ASCII only: str.isdigit() would accept Arabic-Indic, superscript and fullwidth digits
_ALLOWED = set(DIGITS + ".+-*/() ")


class CalcError(ValueError):
    """The expression is malformed or exceeds a limit; the message is short and safe to show the model."""


@dataclass(frozen=True)
class Limits:
    max_chars: int = 200  # input length
    max_digits: int = 12  # digits per number (integer + fraction part)
    max_numbers: int = 24  # numbers per expression
    max_depth: int = 12  # nested parentheses / unary signs
    max_result_digits: int = 24  # digits of any intermediate numerator or denominator
    max_abs: int = 10**15  # magnitude of any intermediate or final result
    decimals: int = 6  # places shown for a non-integer answer


class _Parser:
    def __init__(self, text: str, limits: Limits):
        self.s, self.i, self.lim, self.depth, self.numbers = text, 0, limits, 0, 0

    def peek(self) -> str:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1
        return self.s[self.i] if self.i < len(self.s) else ""

    def check(self, x: Fraction) -> Fraction:
        if abs(x) > self.lim.max_abs:
            raise CalcError("result too large")
        if len(str(abs(x.numerator))) > self.lim.max_result_digits or \
                len(str(x.denominator)) > self.lim.max_result_digits:
            raise CalcError("result too long")
        return x

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.s[self.i]
            self.i += 1
            right = self.term()
            value = self.check(value + right if op == "+" else value - right)
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op = self.s[self.i]
            self.i += 1
            right = self.factor()
            if op == "/" and right == 0:
                raise CalcError("division by zero")
            # both operands are already bounded, so the product's size is bounded before it is formed
            value = self.check(value * right if op == "*" else value / right)
        return value

    def nested(self, fn):
        self.depth += 1
        if self.depth > self.lim.max_depth:
            raise CalcError("nesting too deep")
        try:
            return fn()
        finally:
            self.depth -= 1

    def factor(self) -> Fraction:
        c = self.peek()
        if c in ("+", "-"):
            self.i += 1
            value = self.nested(self.factor)
            return -value if c == "-" else value
        if c == "(":
            self.i += 1
            value = self.nested(self.expr)
            if self.peek() != ")":
                raise CalcError("unbalanced parentheses")
            self.i += 1
            return value
        if c and (c in DIGITS or c == "."):
            return self.number()
        if not c:
            raise CalcError("unexpected end of expression")
        raise CalcError(f"unexpected {c!r}")

    def number(self) -> Fraction:
        start = self.i
        while self.i < len(self.s) and (self.s[self.i] in DIGITS or self.s[self.i] == "."):
            self.i += 1
        raw = self.s[start:self.i]
        if raw.count(".") > 1 or raw == ".":
            raise CalcError(f"bad number {raw[:16]!r}")
        if sum(ch in DIGITS for ch in raw) > self.lim.max_digits:
            raise CalcError(f"number too long (> {self.lim.max_digits} digits)")
        self.numbers += 1
        if self.numbers > self.lim.max_numbers:
            raise CalcError("too many numbers")
        whole, _, frac = raw.partition(".")
        return Fraction(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))


def evaluate(text: str, limits: Limits = Limits()) -> Fraction:
    """The exact value of ``text``; raises ``CalcError`` on anything outside the grammar or the limits."""
    if not isinstance(text, str):
        raise CalcError("expression must be text")
    if len(text) > limits.max_chars:
        raise CalcError(f"expression too long (> {limits.max_chars} characters)")
    bad = next((ch for ch in text if ch not in _ALLOWED), None)
    if bad is not None:
        raise CalcError(f"character {bad!r} not allowed")
    parser = _Parser(text, limits)
    if not parser.peek():
        raise CalcError("empty expression")
    value = parser.expr()
    if parser.peek():
        raise CalcError("unbalanced parentheses" if parser.peek() == ")" else f"unexpected {parser.peek()!r}")
    return value


def format_number(value: Fraction, decimals: int = 6) -> str:
    """An integer as digits; otherwise a decimal rounded to ``decimals`` places, trailing zeros dropped."""
    if value.denominator == 1:
        return str(value.numerator)
    scaled = round(value * 10**decimals)
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


def calculate(text: str, limits: Limits = Limits()) -> str:
    """The calculator tool: ``"37*48"`` -> ``"1776"``, ``"7/2"`` -> ``"3.5"``; raises ``CalcError``."""
    return format_number(evaluate(text, limits), limits.decimals)
