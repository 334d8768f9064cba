"""Text utilities for a writing agent."""

import re


def word_count(text: str | None) -> int:
    """Number of words in a text."""
    return len(re.findall(r"\b[a-z]+\b", text or ""))
