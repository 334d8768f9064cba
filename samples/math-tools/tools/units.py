"""Unit conversion for lengths and masses."""

from __future__ import annotations

# Size of one unit in metres (lengths) or kilograms (masses).
_LENGTH = {
    "mm": 0.001,
    "cm": 0.01,
    "m": 1.0,
    "km": 1000.0,
    "inch": 0.0254,
    "ft": 0.3048,
    "yard": 0.9144,
}
_MASS = {
    "g": 0.001,
    "kg": 1.0,
    "lb": 0.45359237,
    "oz": 0.028349523125,
}


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length or a mass from one unit to another.

    Args:
        value: The quantity to convert.
        from_unit: The unit of `value`: mm, cm, m, km, inch, ft, yard, mile,
            g, kg, lb or oz.
        to_unit: The unit to convert to, of the same kind as `from_unit`.

    Returns:
        The quantity expressed in `to_unit`.
    """
    table = _LENGTH if from_unit in _LENGTH else _MASS
    return value * table[from_unit] / table[to_unit]
