"""Money formatting for a shopping agent."""

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_DECIMALS = {"JPY": 0}


def format_money(amount: float, currency: str) -> str:
    """Format an amount of money for display; unknown currencies get their code after the amount.

    >>> format_money(1234.5, "USD")
    '$1,234.50'
    """
    code = currency.strip().upper()
    digits = _DECIMALS.get(code, 2)
    if code not in _SYMBOLS:
        return f"{amount:,.{digits}f} {code}"
    return f"{_SYMBOLS[code]}{amount:,.{digits}f}"
