"""Algebra tools: solve a linear equation in x."""

from __future__ import annotations


def solve_linear(equation: str) -> str:
    """Solve a linear equation in x, such as "3x + 5 = 20".

    Args:
        equation: The equation, with x on the left-hand side and a number on
            the right, for example "2x - 7 = 9".

    Returns:
        The value of x.
    """
    left, right = equation.replace(" ", "").split("=")
    coefficient_text, _, constant_text = left.partition("x")
    coefficient = int(coefficient_text)
    constant = int(constant_text) if constant_text else 0
    return str((int(right) - constant) / coefficient)
