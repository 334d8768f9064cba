"""Geography facts for a trivia agent."""

_CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "United States": "Washington, D.C.",
    "Germany": "Berlin",
}


def lookup_capital(country: str) -> str:
    """Capital city of a country."""
    return _CAPITALS[country]
