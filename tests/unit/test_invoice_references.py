from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.invoice_references import (
    InvoiceReferences,
    InvoiceRules,
    apply,
    dump_state,
    load_state,
    new_references,
)
from tests.factories import T0, event

RULES = InvoiceRules(wait_days=2)
DAY0 = T0.date()


def invoice(order_id: str = "ORD-1") -> CloudEvent:
    return event(
        "invoice.issued",
        {"invoice_id": "INV-9", "order_id": order_id, "customer_id": "C-1", "amount": "70.00",
         "currency": "CNY", "issued_at": T0.isoformat(),
         "due_date": (DAY0 + timedelta(days=30)).isoformat()},
    )  # fmt: skip


def line(line_id: str = "L-1", amount: str = "70.00") -> CloudEvent:
    return event(
        "bank_line.booked",
        {"line_id": line_id, "account_id": "ACC", "booking_date": DAY0.isoformat(),
         "amount": amount, "currency": "CNY", "remittance_info": "INV-9"},
    )  # fmt: skip


def fold(
    events: Sequence[CloudEvent], state: InvoiceReferences | None = None
) -> tuple[InvoiceReferences, list[CloudEvent]]:
    state, today, outputs = state or new_references("INV-9"), None, list[CloudEvent]()
    for e in events:
        state, out = apply(state, e, RULES, today)
        if isinstance(e, ev.DayClosed):
            today = e.data.date if today is None else max(today, e.data.date)
        outputs += out
    return state, outputs


def closed(days: int) -> CloudEvent:
    return event("day.closed", {"date": (DAY0 + timedelta(days=days)).isoformat()})


@pytest.mark.parametrize("invoice_first", [True, False])
def test_line_naming_an_invoice_is_applied_to_the_invoices_order(invoice_first: bool) -> None:
    events = [invoice(), line()] if invoice_first else [line(), invoice()]
    state, out = fold(events)
    (applied,) = out
    assert isinstance(applied, ev.PaymentApplied)
    assert applied.partition_key() == "ORD-1"
    assert (applied.data.method, applied.data.amount) == ("reference", Decimal("70.00"))
    assert (state.waiting, state.applied_lines) == ((), frozenset({"L-1"}))


def test_line_is_applied_once_whatever_is_redelivered() -> None:
    state, _ = fold([invoice(), line()])
    _, out = fold([invoice(), line(), line()], state)
    assert out == []


# business days after the booking date; wait_days = 2
@pytest.mark.parametrize(("days", "raised"), [(1, False), (2, True)])
def test_line_whose_invoice_never_arrives_is_unmatched_after_the_wait(
    days: int, raised: bool
) -> None:
    _, out = fold([line(), closed(days)])
    reasons = [o.data.reason.value for o in out if isinstance(o, ev.MismatchDetected)]
    assert reasons == (["UNMATCHED_BANK_LINE"] if raised else [])


def test_late_invoice_applies_the_line_and_resolves_its_mismatch() -> None:
    state, out = fold([line(), closed(3)])
    (mismatch,) = out
    assert isinstance(mismatch, ev.MismatchDetected)
    state, out = fold([invoice()], state)
    assert [type(o) for o in out] == [ev.PaymentApplied, ev.MismatchResolved]
    assert out[1].data.mismatch_id == mismatch.data.mismatch_id  # type: ignore[attr-defined]
    assert load_state(dump_state(state)) == state
