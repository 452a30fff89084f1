"""The bundled demo stream: a few hundred events with matches and several kinds of mismatch.

Deterministic: the same file every time, so `make demo` prints the same summary.
Regenerate with `python -m services.samples.demo > services/samples/demo.jsonl`.
"""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

SOURCE = "demo-shop"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CHANNELS = ("web", "tmall", "jd", "pos", "b2b")
METHODS = {
    "web": "card",
    "tmall": "alipay",
    "jd": "wechat_pay",
    "pos": "card",
    "b2b": "bank_transfer",
}


def _event(kind: str, at: datetime, data: dict[str, Any], seed: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"o2c-demo:{kind}:{seed}")),
        "source": SOURCE,
        "type": f"o2c.{kind}.v1",
        "time": at.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def _order(
    n: int, at: datetime, rng: random.Random
) -> tuple[str, str, str, Decimal, dict[str, Any]]:
    order_id = f"ORD-{n:05d}"
    channel = CHANNELS[n % len(CHANNELS)]
    total = Decimal(rng.randrange(1_000, 500_000)) / 100
    customer_id = f"CUST-{n % 17:03d}"
    data = {
        "order_id": order_id,
        "customer_id": customer_id,
        "channel": channel,
        "currency": "CNY",
        "total_amount": str(total),
        "placed_at": at.isoformat(),
        "payment_terms_days": 30 if channel == "b2b" else 0,
    }
    return order_id, channel, customer_id, total, _event("order.placed", at, data, order_id)


def _payment(
    pay_id: str, order_id: str, method: str, amount: Decimal, at: datetime, currency: str = "CNY"
) -> dict[str, Any]:
    data = {
        "payment_id": pay_id,
        "order_id": order_id,
        "method": method,
        "amount": str(amount),
        "currency": currency,
        "captured_at": at.isoformat(),
    }
    return _event("payment.captured", at, data, pay_id)


def demo_events(orders: int = 120, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for n in range(1, orders + 1):
        at = START + timedelta(minutes=7 * n)
        order_id, channel, _customer, total, placed = _order(n, at, rng)
        method = METHODS[channel]
        paid_at = at + timedelta(minutes=2)
        pay = f"pay-{n:05d}"
        scenario = n % 12
        if scenario == 3:  # paid twice by the shopper: DUPLICATE_PAYMENT
            yield placed
            yield _payment(pay, order_id, method, total, paid_at)
            yield _payment(pay + "-b", order_id, method, total, paid_at + timedelta(minutes=1))
        elif scenario == 5:  # paid more than the order: OVERPAID
            yield placed
            yield _payment(pay, order_id, method, total + Decimal("20.00"), paid_at)
        elif scenario == 7:  # cancelled, then the PSP still captured: PAYMENT_ON_CANCELLED_ORDER
            yield placed
            yield _event(
                "order.cancelled",
                at + timedelta(minutes=1),
                {"order_id": order_id, "reason": "customer request"},
                order_id,
            )
            yield _payment(pay, order_id, method, total, paid_at)
        elif scenario == 9:  # the PSP settled in another currency: CURRENCY_MISMATCH
            yield placed
            yield _payment(
                pay,
                order_id,
                method,
                (total / 7).quantize(Decimal("0.01")),
                paid_at,
                currency="USD",
            )
        elif scenario == 10:  # a few fen short: written off within tolerance, then matched
            yield placed
            yield _payment(pay, order_id, method, total - Decimal("0.30"), paid_at)
        elif scenario == 11:  # the payment arrives before its order (out of order delivery)
            yield _payment(pay, order_id, method, total, at - timedelta(seconds=5))
            yield placed
        elif scenario == 1:  # split: voucher plus card
            voucher = (total / 4).quantize(Decimal("0.01"))
            yield placed
            yield _payment(pay + "-v", order_id, "voucher", voucher, paid_at)
            yield _payment(pay, order_id, method, total - voucher, paid_at)
        elif scenario == 2:  # partly paid, still open
            yield placed
            yield _payment(pay, order_id, method, (total / 2).quantize(Decimal("0.01")), paid_at)
        elif scenario == 4:  # an amended order paid at the new total
            amended = total + Decimal("15.00")
            yield placed
            yield _event(
                "order.amended",
                at + timedelta(minutes=1),
                {"order_id": order_id, "total_amount": str(amended), "reason": "added gift wrap"},
                order_id,
            )
            yield _payment(pay, order_id, method, amended, paid_at)
        else:  # the common case: paid in full
            yield placed
            yield _payment(pay, order_id, method, total, paid_at)
    days = sorted({(START + timedelta(minutes=7 * n)).date() for n in range(1, orders + 1)})
    for day in days:
        yield _day_closed(day)


def _day_closed(day: date) -> dict[str, Any]:
    at = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
    return _event("day.closed", at, {"date": day.isoformat()}, day.isoformat())


def main() -> None:
    for event in demo_events():
        sys.stdout.buffer.write(orjson.dumps(event) + b"\n")


if __name__ == "__main__":
    main()
