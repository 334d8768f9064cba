"""Shared types of the shop tools (a workspace module the tools import from)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field

Currency = Literal["EUR", "USD"]


class Item(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d+$")
    quantity: int = Field(gt=0)


class Order(BaseModel):
    """A customer's order."""

    items: list[Item]
    currency: Currency = "EUR"
    parent: Optional[Order] = None
