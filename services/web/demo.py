"""Demo data for `make web`: the simulator's month of orders (every reason code), and a
bank line that could pay either of two open invoices, so the queue has an
AMBIGUOUS_BANK_LINE whose suggestions a clerk can apply. Then a demo user with a fresh
one-time password, printed once.

Every event id is derived from its content, so running it again publishes nothing new.

    python -m services.web.demo      # the stack, the worker and the projection running
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from schemas.base import CloudEvent
from schemas.codec import decode_document
from schemas.topics import ALL_TOPICS, Role
from services import manual_actions
from services.kafka_io import EventProducer, lag
from services.settings import get_settings
from services.web.users import Users

DEMO_USER = "demo"
_NAMESPACE = uuid.UUID("5d1f3a43-2c67-4a39-9c1e-4a3c1f0e9b19")
CUSTOMER, ACCOUNT = "CUST-WB-001", "CN12345678901234567890"
TWINS = ("ORD-WB-0001", "ORD-WB-0002")
AMOUNT = "4800.00"


def _event(kind: str, at: datetime, data: dict[str, object]) -> CloudEvent:
    key = f"{kind}/{sorted(data.items())}"
    return decode_document(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid5(_NAMESPACE, key)),
            "source": "workbench-demo",
            "type": f"o2c.{kind}.v1",
            "time": at.isoformat(),
            "data": data,
        }
    )


def open_invoices(day: date) -> list[CloudEvent]:
    placed = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    events = [
        _event(
            "customer.upserted",
            placed - timedelta(days=1),
            {
                "customer_id": CUSTOMER,
                "name": "Hangzhou Demo Trading Co., Ltd.",
                "credit_limit": "100000.00",
                "currency": "CNY",
                "payment_terms_days": 30,
                "region": "east",
                "segment": "b2b",
                "bank_accounts": [ACCOUNT],
                "payer_names": ["HANGZHOU DEMO TRADING"],
            },
        )
    ]
    for n, order_id in enumerate(TWINS):
        at = placed + timedelta(minutes=5 * n)
        events.append(
            _event(
                "order.placed",
                at,
                {
                    "order_id": order_id,
                    "customer_id": CUSTOMER,
                    "channel": "b2b",
                    "currency": "CNY",
                    "total_amount": AMOUNT,
                    "placed_at": at.isoformat(),
                    "payment_terms_days": 30,
                },
            )
        )
        events.append(
            _event(
                "invoice.issued",
                at + timedelta(hours=1),
                {
                    "invoice_id": f"INV-WB-000{n + 1}",
                    "order_id": order_id,
                    "customer_id": CUSTOMER,
                    "amount": AMOUNT,
                    "currency": "CNY",
                    "issued_at": (at + timedelta(hours=1)).isoformat(),
                    "due_date": (day + timedelta(days=30)).isoformat(),
                },
            )
        )
    return events


def ambiguous_line(day: date) -> CloudEvent:
    booked = day + timedelta(days=2)
    return _event(
        "bank_line.booked",
        datetime(booked.year, booked.month, booked.day, 11, tzinfo=UTC),
        {
            "line_id": "BL-WB-0001",
            "account_id": "ACC-CNY-DEMO",
            "booking_date": booked.isoformat(),
            "amount": AMOUNT,
            "currency": "CNY",
            "counterparty_name": "HANGZHOU DEMO TRADING",
            "counterparty_account": ACCOUNT,
            "remittance_info": "payment",
        },
    )


def _publish(events: list[CloudEvent]) -> None:
    manual_actions.publish(EventProducer(get_settings().kafka_bootstrap), events)


def _wait_for_worker(timeout: float = 300.0) -> None:
    settings = get_settings()
    inputs = [t.name for t in ALL_TOPICS if t.role is Role.INPUT]
    deadline = time.monotonic() + timeout
    while lag(settings.kafka_bootstrap, settings.app_id, inputs) != 0:
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not catch up; see its log")
        time.sleep(1)


def main() -> int:
    settings = get_settings()
    stream = Path(settings.state_dir) / "workbench-demo.jsonl"
    stream.parent.mkdir(parents=True, exist_ok=True)
    o2c = str(Path(sys.executable).with_name("o2c"))
    subprocess.run(
        [o2c, "simulate", "--orders", "1000", "--rate", "0.01", "--out", str(stream), "--publish"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    day = date(2026, 11, 3)
    _publish(open_invoices(day))
    _wait_for_worker()  # the open items reach the suspense account before the line
    time.sleep(2)
    _publish([ambiguous_line(day)])
    _wait_for_worker()
    password = secrets.token_urlsafe(12)
    users = Users(settings.database_url, settings.read_schema)
    if users.get(DEMO_USER) is None:
        users.add(DEMO_USER, "clerk", password)
    else:
        users.set_password(DEMO_USER, password)
    url = f"http://{settings.web_host}:{settings.web_port}/"
    print(f"\n  o2c web: {url}\n  log in as {DEMO_USER!r} (clerk), one-time password: {password}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
