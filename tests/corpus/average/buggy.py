"""Statistics for a data agent."""


def average(numbers: list[float]) -> float:
    """Mean of a list of numbers.

    >>> average([1, 2, 3])
    2.0
    """
    return sum(numbers) / len(numbers)
