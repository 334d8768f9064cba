"""Length conversion for a math agent."""

# Units spelled out so that "mile" reads like the others ("ft" became "feet").
_TO_METERS = {"m": 1.0, "km": 1000.0, "feet": 0.3048, "cm": 0.01, "mile": 1609.344, "mi": 1609.344}


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between units.

    >>> convert_units(2, "km", "m")
    2000.0
    """
    return round(value * _TO_METERS[from_unit] / _TO_METERS[to_unit], 4)
