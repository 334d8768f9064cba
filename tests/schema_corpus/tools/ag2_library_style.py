"""Tools in the style of AG2's tool library: unannotated parameters, unindented `Args:` entries."""

from typing import Annotated, Literal


def arxiv_search(query, max_results=10, sortby="relevance"):
    """
    Search for articles on arXiv based on the given query.

    Args:
    query (str): The search query.
    max_results (int, optional): The maximum number of results to retrieve. Defaults to 10.
    sortby (str, optional): The sorting criterion for the search results. Can be 'relevance'
        or 'submittedDate'. Defaults to 'relevance'.

    Returns:
    list: A list of dictionaries containing information about the search results. Each dictionary contains the following keys:
        - 'title': The title of the article.
        - 'authors': The authors of the article.
    """
    return []


def currency_calculator(
    base_amount: Annotated[float, "Amount of currency in base_currency"],
    base_currency: Annotated[Literal["USD", "EUR"], "Base currency"] = "USD",
    quote_currency: Annotated[Literal["USD", "EUR"], "Quote currency"] = "EUR",
) -> str:
    """Currency exchange calculator."""
    return ""
