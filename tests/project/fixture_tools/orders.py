"""Tools that return structured values (a pydantic model with dataclasses inside) and ask the
model to retry (`ToolRetry`)."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from dataclasses import dataclass

import pydantic

from agent_runtime import ToolRetry


class Status(enum.Enum):
    OPEN = "open"
    SHIPPED = "shipped"


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    price: decimal.Decimal


class Order(pydantic.BaseModel):
    id: uuid.UUID
    customer: str
    status: Status
    placed: datetime.date
    lines: list[OrderLine]


ORDER = Order(
    id=uuid.UUID(int=42),
    customer="Ann",
    status=Status.OPEN,
    placed=datetime.date(2026, 12, 2),
    lines=[OrderLine("tea", 2, decimal.Decimal("3.50"))],
)


def lookup_order(order_id: str) -> dict[str, object]:
    """An order by its id, with when it was looked up.

    Args:
        order_id: The order's id, e.g. "A-42".
    """
    if not order_id.startswith("A-"):
        raise ToolRetry(f"order ids start with 'A-', e.g. 'A-42'; {order_id!r} does not")
    return {"order": ORDER, "looked_up": datetime.datetime(2026, 12, 2, 9, 30, tzinfo=datetime.UTC)}
