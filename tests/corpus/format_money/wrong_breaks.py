"""Money formatting for a shopping agent."""

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_DECIMALS = {"JPY": 0}


def format_money(amount: float, code: str = "USD") -> str:
    """Format an amount of money for display (ISO 4217 code).

    >>> format_money(1234.5, "USD")
    '$1,234.50'
    """
    digits = _DECIMALS.get(code, 2)
    return f"{_SYMBOLS[code]}{amount:,.{digits}f}"
