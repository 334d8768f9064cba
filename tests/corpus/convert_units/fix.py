"""Length conversion for a math agent."""

_TO_METERS = {"m": 1.0, "km": 1000.0, "ft": 0.3048, "cm": 0.01, "mile": 1609.344}
_ALIASES = {"mi": "mile", "miles": "mile", "meter": "m", "meters": "m"}


def _unit(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between units.

    >>> convert_units(2, "km", "m")
    2000.0
    """
    return round(value * _TO_METERS[_unit(from_unit)] / _TO_METERS[_unit(to_unit)], 4)
