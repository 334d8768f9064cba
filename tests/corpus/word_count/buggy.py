"""Text utilities for a writing agent."""


def word_count(text: str) -> int:
    """Number of words in a text."""
    return len(text.split(" "))
