"""Text utilities for a writing agent."""


def word_count(text: str | None) -> int:
    """Number of words in a text (runs of whitespace separate words); 0 for no text."""
    if not text:
        return 0
    return len(text.split())
