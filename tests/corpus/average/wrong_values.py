"""Statistics for a data agent."""


def average(numbers: list[float] | str) -> float:
    """Mean of a list of numbers (or of a string of digits); 0.0 when empty.

    >>> average([1, 2, 3])
    2.0
    """
    if isinstance(numbers, str):
        numbers = [float(c) for c in numbers if c.isdigit()]
    if not numbers:
        return 0.0
    return sum(numbers) / len(numbers)
