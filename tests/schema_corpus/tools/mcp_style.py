"""Tools in the style of the MCP SDK (FastMCP): `Field` defaults, a `Context`, dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from mcp.server.fastmcp import Context, FastMCP
from pydantic import Field

mcp = FastMCP("demo")


@dataclass
class Address:
    """A postal address."""

    street: str
    city: str
    country: str = "NL"


@mcp.tool()
def send_letter(
    to: Address,
    body: str = Field(description="The letter's text"),
    copies: int = Field(1, ge=1, le=5, description="How many copies to print"),
    ctx: Context | None = None,
) -> str:
    """Send a letter by post."""
    return ""


@mcp.tool()
async def long_task(files: list[str] = Field(..., min_length=1), ctx: Context = None) -> str:  # type: ignore[assignment]
    """Process files, reporting progress."""
    return ""
