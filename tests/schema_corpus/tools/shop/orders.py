"""Tools that use types from a workspace module, relative and absolute, and from elsewhere."""

from typing import Union

from vendor_sdk.types import Widget

from tools.shop import models
from tools.shop.models import Currency

from .models import Order

JSON = Union[dict[str, "JSON"], list["JSON"], str, int, float, bool, None]


def place_order(order: Order, currency: Currency, note: "models.Item | None" = None) -> str:
    """Place an order."""
    return ""


def configure(widget: Widget, settings: JSON = None) -> str:
    """Configure a widget from the vendor's SDK."""
    return ""
