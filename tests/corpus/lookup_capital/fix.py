"""Geography facts for a trivia agent."""

_CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "United States": "Washington, D.C.",
    "Germany": "Berlin",
}
_BY_NAME = {name.lower(): capital for name, capital in _CAPITALS.items()}


def lookup_capital(country: str) -> str:
    """Capital city of a country (the name in any letter case); KeyError when unknown."""
    return _BY_NAME[country.strip().lower()]
