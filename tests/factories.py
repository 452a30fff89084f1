"""Event factories for tests: valid CloudEvents with unique ids, as models or JSON documents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.base import CloudEvent
from schemas.codec import decode_document

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def document(
    kind: str, data: dict[str, Any], *, at: datetime = T0, **envelope: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": envelope.pop("id", None) or str(uuid.uuid4()),
        "source": "tests",
        "type": f"o2c.{kind}.v1",
        "time": at.isoformat(),
        "data": data,
        **envelope,
    }


def event(kind: str, data: dict[str, Any], *, at: datetime = T0, **envelope: Any) -> CloudEvent:
    return decode_document(document(kind, data, at=at, **envelope))


def order_placed(
    order_id: str,
    total: str,
    *,
    currency: str = "CNY",
    customer_id: str = "C-1",
    at: datetime = T0,
    **extra: Any,
) -> CloudEvent:
    data = {
        "order_id": order_id,
        "customer_id": customer_id,
        "channel": "web",
        "currency": currency,
        "total_amount": total,
        "placed_at": at.isoformat(),
        **extra,
    }
    return event("order.placed", data, at=at)


def payment_captured(
    payment_id: str,
    order_id: str | None,
    amount: str,
    *,
    currency: str = "CNY",
    method: str = "alipay",
    at: datetime = T0,
    **extra: Any,
) -> CloudEvent:
    data = {
        "payment_id": payment_id,
        "method": method,
        "amount": amount,
        "currency": currency,
        "captured_at": at.isoformat(),
        **extra,
    }
    if order_id is not None:
        data["order_id"] = order_id
    return event("payment.captured", data, at=at)
