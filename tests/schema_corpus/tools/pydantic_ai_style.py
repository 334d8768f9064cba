"""Tools in the style of pydantic-ai: a `RunContext` first, `Field` in `Annotated`, models."""

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, Field
from pydantic_ai import RunContext


@dataclass
class Deps:
    conn: object


class Range(BaseModel):
    """An inclusive range of prices."""

    low: float = Field(ge=0, description="Lowest price")
    high: float = Field(default=1000.0, le=10000)


@dataclass
class Page:
    number: int = 1
    size: int = field(default=20)
    tags: list[str] = field(default_factory=list)


def run_duckdb(ctx: RunContext[Deps], sql: str) -> str:
    """Run DuckDB SQL query against the dataset.

    The virtual table name must be `dataset`: other names are not loaded.

    Args:
        sql: The DuckDB SQL query.
    """
    return ""


def search_products(
    ctx: RunContext[Deps],
    text: Annotated[str, Field(min_length=1, max_length=200, description="Words to look for")],
    price: Range | None = None,
    page: Page = Page(),  # noqa: B008
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
) -> list[str]:
    """Search the product catalogue."""
    return []
