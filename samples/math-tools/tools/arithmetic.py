"""Arithmetic tools: evaluate an expression, format a number for the final answer."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

_BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.BitXor: operator.xor,
}
_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> Any:
    """Evaluate a parsed expression node, allowing numbers and arithmetic only."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        return _BINARY_OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"unsupported element in expression: {type(node).__name__}")


def evaluate_expression(expression: str) -> float:
    """Evaluate an arithmetic expression such as "3*4 + 2" or "2^10".

    Only numbers, parentheses and the operators + - * / % and ^ (power) are
    allowed, so the expression can come straight from a math problem.

    Args:
        expression: The expression to evaluate, for example "(7 - 3) * 6".

    Returns:
        The value of the expression.
    """
    tree = ast.parse(expression.strip(), mode="eval")
    return _evaluate(tree.body)


def format_number(value: float, decimals: int | None = None) -> str:
    """Format a number for a final answer, optionally rounded.

    Args:
        value: The number to format.
        decimals: Round to this many decimal places (0 for a whole number);
            None keeps the value as it is.

    Returns:
        The number as text, without a trailing ".0" for whole numbers.
    """
    if decimals is None:
        if float(value).is_integer():
            return str(int(value))
        return str(value)
    factor = 10**decimals
    return str(int(value * factor) / factor)
