"""Types defined after the tool, forward references as strings, and a tool typed from imports that fall back."""

from typing import TYPE_CHECKING, Optional

from pydantic import BaseModel

try:
    from tools.adversary.models import Money
except ImportError:  # the fallback never replaces the import
    Money = dict

if TYPE_CHECKING:
    from .models import Invoice
else:
    Invoice = object

from ..shop import models as shop_models
from .models import Status as St


def pay(invoice: "Invoice", money: Money, status: St = St.PAID, item: Optional["shop_models.Item"] = None) -> str:
    """Pay an invoice."""
    return ""


def ship(order: "Order", ids: "list[int]" = []) -> str:
    """Ship an order defined below the tool."""
    return ""


class Order(BaseModel):
    id: int
    money: "Money"
