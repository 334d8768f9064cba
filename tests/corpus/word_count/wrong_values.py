"""Text utilities for a writing agent."""


def word_count(text: str | None) -> int:
    """Number of words in a text."""
    return len((text or " ").split(" "))
