from enum import Enum

from pydantic import BaseModel, Field

MAX_AMOUNT = 10_000


class Status(str, Enum):
    OPEN = "open"
    PAID = "paid"


class Money(BaseModel):
    amount: float = Field(ge=0, le=MAX_AMOUNT)
    currency: str = "EUR"


class Invoice(BaseModel):
    number: str
    total: Money
    status: Status = Status.OPEN
