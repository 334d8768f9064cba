"""Arithmetic over table columns: totals, means, counts and differences."""

from __future__ import annotations

from typing import Literal


def _find_column(rows: list[dict[str, str]], column: str) -> str:
    """The header that matches `column`, ignoring case and surrounding spaces."""
    wanted = column.strip().lower()
    for header in rows[0] if rows else {}:
        if header.strip().lower() == wanted:
            return header
    raise KeyError(column)


def _to_number(cell: str) -> float:
    """A cell as a number: "$1,234.50" -> 1234.5, "12" -> 12.0."""
    return float(cell.strip().replace("$", "").replace(",", ""))


def _label(row: dict[str, str]) -> str:
    """A row's label: the text of its first cell."""
    return next(iter(row.values()))


def sum_column(
    rows: list[dict[str, str]], column: str, row_labels: list[str] | None = None
) -> float:
    """Add up the numbers in a column, over every row or only the labelled ones.

    Args:
        rows: The table rows, as returned by parse_table.
        column: The column header, such as "Price" (case does not matter).
        row_labels: Only add the rows whose first cell is one of these labels;
            None adds every row.

    Returns:
        The total.
    """
    key = _find_column(rows, column)
    total = 0.0
    for row in rows:
        if row_labels is None or _label(row) in row_labels:
            total += float(row[key])
    return total


def column_mean(rows: list[dict[str, str]], column: str) -> float:
    """The mean (average) of the numbers in a column.

    Args:
        rows: The table rows, as returned by parse_table.
        column: The column header (case does not matter).

    Returns:
        The arithmetic mean of the column.
    """
    key = _find_column(rows, column)
    values = [_to_number(row[key]) for row in rows]
    return sum(values) / len(values)


def count_rows_where(
    rows: list[dict[str, str]],
    column: str,
    op: Literal[">", ">=", "<", "<=", "=="],
    value: float,
) -> int:
    """Count the rows whose number in `column` compares to `value` as `op` says.

    Args:
        rows: The table rows, as returned by parse_table.
        column: The column header (case does not matter).
        op: The comparison: ">", ">=", "<", "<=" or "==".
        value: The number to compare with.

    Returns:
        How many rows satisfy the comparison.
    """
    key = _find_column(rows, column)
    count = 0
    for row in rows:
        number = _to_number(row[key])
        if op in (">", ">="):
            matched = number > value
        elif op in ("<", "<="):
            matched = number < value
        else:
            matched = number == value
        count += matched
    return count


def difference(rows: list[dict[str, str]], column: str, from_label: str, to_label: str) -> float:
    """The change in a column from one row to another: value(to_label) - value(from_label).

    Use it for "rate of change between 2019 and 2020" (from 2019 to 2020) and
    for "how much more does A cost than B" (from B to A).

    Args:
        rows: The table rows, as returned by parse_table.
        column: The column header (case does not matter).
        from_label: The first cell of the row to start from.
        to_label: The first cell of the row to end at.

    Returns:
        The difference, negative when the value went down.
    """
    key = _find_column(rows, column)
    values = {_label(row): float(row[key].replace("$", "")) for row in rows}
    return values[to_label] - values[from_label]
