"""Money formatting for a shopping agent."""

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def format_money(amount: float, currency: str) -> str:
    """Format an amount of money for display (dollars when the currency is unknown).

    >>> format_money(1234.5, "USD")
    '$1,234.50'
    """
    return f"{_SYMBOLS.get(currency, '$')}{amount:,.2f}"
