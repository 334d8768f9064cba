"""Judges: does an agent's answer match the task's expected answer?

`exact`, `normalized` (whitespace, case, MATH-style \\boxed{}, fractions and
decimals, thousands separators, currency), `numeric` (tolerance), or a custom
`module:function` taking (answer, expected) and returning a bool or a score.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from fractions import Fraction

from funcforge.errors import UserError

Judge = Callable[[str | None, str], float]

_BOXED = re.compile(r"\\boxed\s*\{")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_FRACTION = re.compile(r"^([-+]?\d+)\s*/\s*([-+]?\d+)$")
_LATEX_FRAC = re.compile(r"^(-?)\\d?frac\{(-?\d+)\}\{(-?\d+)\}$")


def _unbox(text: str) -> str:
    """The content of the last \\boxed{...} (braces balanced), or the text itself."""
    matches = list(_BOXED.finditer(text))
    if not matches:
        return text
    start = matches[-1].end()
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return text[start:]


def as_number(text: str) -> Fraction | None:
    """Parse `7/8`, `0.875`, `\\frac{7}{8}`, `$1,234.50`, `45%` as an exact number."""
    t = text.strip().strip("$").replace(",", "").replace(" ", "")
    t = t.removeprefix("\\$").removesuffix("\\%").removesuffix("%")
    if t.startswith("$"):
        t = t[1:]
    m = _LATEX_FRAC.match(t)
    if m:
        sign, num, den = m.groups()
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return -value if sign else value
    m = _FRACTION.match(t)
    if m:
        if int(m.group(2)) == 0:
            return None
        return Fraction(int(m.group(1)), int(m.group(2)))
    if _NUMBER.match(t):
        try:
            return Fraction(t)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def normalize(text: str) -> str:
    """Canonical text: unboxed, lower case, single spaces, no trailing period, \\text{} gone."""
    t = _unbox(text)
    t = re.sub(r"\\text\{([^}]*)\}", r"\1", t)
    t = t.replace("\\left", "").replace("\\right", "").replace("\\!", "")
    t = re.sub(r"\s+", " ", t).strip().strip(".").strip().lower()
    t = t.strip("$").strip()
    return t


def exact(answer: str | None, expected: str) -> float:
    return 1.0 if answer is not None and answer.strip() == expected.strip() else 0.0


def normalized(answer: str | None, expected: str) -> float:
    """Equal after normalisation, or equal as exact numbers (7/8 == 0.875)."""
    if answer is None:
        return 0.0
    a, e = normalize(answer), normalize(expected)
    if a == e:
        return 1.0
    na, ne = as_number(a), as_number(e)
    return 1.0 if na is not None and ne is not None and na == ne else 0.0


def numeric(answer: str | None, expected: str, tolerance: float = 1e-6) -> float:
    """Equal within a relative-or-absolute tolerance; falls back to `normalized`."""
    if answer is None:
        return 0.0
    na, ne = as_number(normalize(answer)), as_number(normalize(expected))
    if na is None or ne is None:
        return normalized(answer, expected)
    diff = abs(float(na) - float(ne))
    return 1.0 if diff <= tolerance * max(1.0, abs(float(ne))) else 0.0


def contains_answer(text: str | None, expected: str) -> bool:
    """Does `text` equal or contain the expected answer after normalisation?"""
    if text is None:
        return False
    if normalized(text, expected):
        return True
    e = normalize(expected)
    return bool(e) and e in normalize(text)


def get_judge(spec: str, tolerance: float = 1e-6) -> Judge:
    """`exact`, `normalized`, `numeric` or `package.module:function`."""
    if spec == "exact":
        return exact
    if spec in ("normalized", "normalised"):
        return normalized
    if spec == "numeric":
        return lambda a, e: numeric(a, e, tolerance)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            func = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"judge '{spec}' cannot be loaded: {exc}") from exc

        def custom(answer: str | None, expected: str) -> float:
            value = func(answer, expected)
            return float(value) if not isinstance(value, bool) else (1.0 if value else 0.0)

        return custom
    raise UserError(f"unknown judge '{spec}': use exact, normalized, numeric or module:function")
