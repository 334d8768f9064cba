"""Statistics for a data agent."""


def average(numbers: list[float] | str) -> float:
    """Mean of a list of whole numbers (or of a comma-separated string of them).

    >>> average([1, 2, 3])
    2.0
    """
    if isinstance(numbers, str):
        numbers = numbers.split(",")
    values = [int(float(x)) for x in numbers]
    return sum(values) / len(values)
