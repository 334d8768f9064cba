"""Statistics for a data agent."""


def average(numbers: list[float] | str) -> float:
    """Mean of a list of numbers (or of a comma-separated string of them); 0.0 when empty.

    >>> average([1, 2, 3])
    2.0
    """
    if isinstance(numbers, str):
        numbers = [float(part) for part in numbers.split(",") if part.strip()]
    if not numbers:
        return 0.0
    return sum(numbers) / len(numbers)
