"""The calculator parses + - * / and parentheses exactly, and refuses anything else with a short error."""

import pytest

from underdog.tools.calculator import CalcError, Limits, calculate


@pytest.mark.parametrize("expr,value", [
    ("37*48", "1776"), ("1+2*3", "7"), ("(1+2)*3", "9"), ("7/2", "3.5"), ("2/3", "0.666667"), ("-3+5", "2"),
    ("0.1+0.2", "0.3"), ("((4))", "4"), ("10-2-3", "5"), ("100/10/5", "2"), (" 12 * ( 3 - 1 ) ", "24"),
    ("-(-(2))", "2"), ("1.50*2", "3"), ("9999*9999*9999", "999700029999"),
])
def test_values(expr, value):
    assert calculate(expr) == value


def test_limits_are_checked():
    with pytest.raises(CalcError, match="too long"):
        calculate("1" * 13)
    with pytest.raises(CalcError, match="too large"):
        calculate("999999999999*999999999999")
    with pytest.raises(CalcError, match="nesting"):
        calculate("(" * 13 + "1" + ")" * 13)
    assert calculate("(" * 5 + "1" + ")" * 5, Limits(max_depth=5)) == "1"
