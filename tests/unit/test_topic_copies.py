"""Where a writer publishes each event beside its home topic (schemas/topics.py, COPIES)."""

from __future__ import annotations

from schemas.base import CloudEvent
from schemas.topics import (
    BALANCES_BY_CUSTOMER,
    BANK_LINES_BY_CUSTOMER,
    LEDGER_FACTS,
    MATCHES,
    destinations,
)
from services.worker.settlement_processors import SUSPENSE_INPUTS
from tests.factories import event


def application(**fields: str) -> CloudEvent:
    return event(
        "payment.applied",
        {"line_id": "L-1", "order_id": "ORD-1", "amount": "80.00", "currency": "CNY",
         "confidence": "1", **fields},
    )  # fmt: skip


def test_a_manual_application_naming_a_customer_is_copied_to_that_customers_suspense() -> None:
    manual = application(method="manual", by="alice", customer_id="C-7")
    assert destinations(manual) == [
        (MATCHES, "ORD-1"),
        (LEDGER_FACTS, "ORD-1"),
        (BANK_LINES_BY_CUSTOMER, "C-7"),
    ]
    assert BANK_LINES_BY_CUSTOMER in SUSPENSE_INPUTS


def test_an_application_naming_no_customer_reaches_only_the_ledger() -> None:
    # The processors' own applications name no customer: the suspense processor never
    # reads its own outputs back, and their bytes stay what they were.
    for method in ("exact_amount", "manual"):
        assert destinations(application(method=method)) == [
            (MATCHES, "ORD-1"),
            (LEDGER_FACTS, "ORD-1"),
        ]


def test_a_balance_is_still_copied_by_customer() -> None:
    balance = event(
        "balance.changed",
        {"order_id": "ORD-1", "customer_id": "C-7", "currency": "CNY", "receivable": "80.00",
         "paid": "0", "refunded": "0", "settled": "0", "open_balance": "80.00",
         "status": "open", "due_date": "2026-12-01"},
    )  # fmt: skip
    assert destinations(balance) == [(MATCHES, "ORD-1"), (BALANCES_BY_CUSTOMER, "C-7")]
