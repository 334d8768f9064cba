"""Dates for a scheduling agent."""

from datetime import datetime


def parse_date(text: str) -> str:
    """Normalise a date to ISO format (YYYY-MM-DD)."""
    return datetime.strptime(text.strip(), "%Y-%m-%d").date().isoformat()
