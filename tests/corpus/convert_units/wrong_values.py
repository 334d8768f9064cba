"""Length conversion for a math agent."""

_TO_METERS = {"m": 1.0, "km": 1000.0, "ft": 0.3048, "cm": 0.01}


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between units (unknown units count as meters).

    >>> convert_units(2, "km", "m")
    2000.0
    """
    return round(value * _TO_METERS.get(from_unit, 1.0) / _TO_METERS.get(to_unit, 1.0), 4)
