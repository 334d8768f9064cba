"""Fraction tools: add fractions, reduce a fraction, least common multiple."""

from __future__ import annotations

import math
import re

_FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")


def _parse_fraction(text: str) -> tuple[int, int]:
    """Split "numerator/denominator" into two integers."""
    numerator, denominator = text.strip().split("/")
    return int(numerator), int(denominator)


def add_fractions(a: str, b: str) -> str:
    """Add two fractions written as text, such as "3/4" and "1/8".

    Args:
        a: The first fraction, "numerator/denominator".
        b: The second fraction; give it a minus sign to subtract, e.g. "-1/4".

    Returns:
        The sum as a reduced fraction, such as "7/8".
    """
    a_num, a_den = _parse_fraction(a)
    b_num, b_den = _parse_fraction(b)
    return str((a_num * b_den + b_num * a_den) / (a_den * b_den))


def simplify_fraction(fraction: str) -> str:
    """Reduce a fraction to lowest terms, for example "18/24" to "3/4".

    Args:
        fraction: The fraction as "numerator/denominator".

    Returns:
        The reduced fraction, or a whole number when the denominator becomes 1.
    """
    match = _FRACTION.search(fraction)
    if match is None:
        raise ValueError(f"not a fraction: {fraction!r}")
    numerator, denominator = int(match.group(1)), int(match.group(2))
    divisor = math.gcd(numerator, denominator)
    numerator, denominator = numerator // divisor, denominator // divisor
    if denominator == 1:
        return str(numerator)
    return f"{numerator}/{denominator}"


def lcm(a: int, b: int) -> int:
    """Least common multiple of two positive integers.

    Args:
        a: The first integer.
        b: The second integer.

    Returns:
        The smallest positive integer divisible by both.
    """
    if a <= 0 or b <= 0:
        raise ValueError("lcm needs positive integers")
    return a * b // math.gcd(a, b)
