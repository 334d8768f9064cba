"""Dates for a scheduling agent."""

from datetime import datetime

_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%B %d, %Y")


def parse_date(text: str) -> str:
    """Normalise a date to ISO format (YYYY-MM-DD)."""
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(f"unrecognised date: {text!r}")
