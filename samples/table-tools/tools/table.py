"""Reading tables: parse a pipe table, look up one cell."""

from __future__ import annotations


def _cells(line: str) -> list[str]:
    """The cells of one table line, "| a | b |" -> ["a", "b"]."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_table(text: str) -> list[dict[str, str]]:
    """Parse a pipe table (Markdown style) into one dict per data row.

    Args:
        text: The table, one row per line, such as "| Name | Price |"; the
            first line is the header and a separator line of dashes is skipped.

    Returns:
        The data rows, each mapping a header to that row's cell text.
    """
    lines = [line for line in text.splitlines() if line.strip().startswith("|")]
    if not lines:
        raise ValueError("no table rows found (lines must start with '|')")
    header = _cells(lines[0])
    rows = []
    for line in lines[1:]:
        cells = _cells(line)
        if all(cell and set(cell) <= set("-: ") for cell in cells):
            continue
        rows.append(dict(zip(header, cells, strict=False)))
    return rows


def lookup_value(rows: list[dict[str, str]], row_label: str, column: str) -> str:
    """Return one cell: the `column` value of the row whose first cell is `row_label`.

    Args:
        rows: The table rows, as returned by parse_table.
        row_label: The text in the row's first column, such as "Anna" or "2019".
        column: The column header, such as "Price" (case does not matter).

    Returns:
        The cell text, such as "$4.25".
    """
    for row in rows:
        if next(iter(row.values())) == row_label:
            return row[column]
    raise ValueError(f"no row labelled {row_label!r}")
