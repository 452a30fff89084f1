"""FEE_MISMATCH: a payout item's fee (carried on payment.settled) against the capture's."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import events as ev
from tests.factories import event, order_placed, payment_captured
from tests.unit.test_ledger import fold


def settled(fee: str | None, payout_id: str = "po_1") -> ev.PaymentSettled:
    data = {"payment_id": "p-1", "order_id": "ORD-1", "payout_id": payout_id, "line_id": "L-1",
            "amount": "100.00", "currency": "CNY"}  # fmt: skip
    if fee is not None:
        data["fee"] = fee
    found = event("payment.settled", data)
    assert isinstance(found, ev.PaymentSettled)
    return found


def fee_mismatches(
    item_fee: str | None, capture_fee: str | None = "2.00"
) -> list[ev.MismatchDetected]:
    extra: dict[str, Any] = {} if capture_fee is None else {"fee_amount": capture_fee}
    _, out = fold([
        order_placed("ORD-1", "100.00"),
        payment_captured("p-1", "ORD-1", "100.00", method="card", **extra),
        settled(item_fee),
    ])  # fmt: skip
    return [
        o for o in out
        if isinstance(o, ev.MismatchDetected) and o.data.reason.value == "FEE_MISMATCH"
    ]  # fmt: skip


# fees in CNY; fee tolerance 0.01
@pytest.mark.parametrize(
    ("item_fee", "capture_fee", "raised"),
    [
        ("2.00", "2.00", False),
        ("2.01", "2.00", False),  # at the tolerance edge
        ("1.99", "2.00", False),
        ("2.02", "2.00", True),  # one cent past it
        ("1.98", "2.00", True),
        ("-2.00", "2.00", False),  # PSPs that print fees as negative amounts
        (None, "2.00", False),  # the payout said nothing about the fee
        ("5.00", None, False),  # the capture said nothing about the fee
    ],
)
def test_fee_mismatch_boundaries(
    item_fee: str | None, capture_fee: str | None, raised: bool
) -> None:
    assert bool(fee_mismatches(item_fee, capture_fee)) is raised


def test_fee_mismatch_names_the_payment_and_both_fees() -> None:
    (mismatch,) = fee_mismatches("3.50")
    assert (mismatch.data.order_id, mismatch.data.payment_id) == ("ORD-1", "p-1")
    assert (str(mismatch.data.expected), str(mismatch.data.actual)) == ("2.00", "3.50")
    assert mismatch.data.severity == "low"


def test_the_refund_of_a_payment_in_a_later_payout_is_no_fee_mismatch() -> None:
    """A refund item carries its own fee (usually 0), not the capture's."""
    refund = event(
        "payment.settled",
        {"payment_id": "p-1", "order_id": "ORD-1", "payout_id": "po_2", "line_id": "L-2",
         "amount": "-100.00", "currency": "CNY", "fee": "0"},
    )  # fmt: skip
    _, out = fold([
        order_placed("ORD-1", "100.00"),
        payment_captured("p-1", "ORD-1", "100.00", method="card", fee_amount="2.00"),
        settled("2.00"),
        refund,
    ])  # fmt: skip
    assert not [o for o in out if isinstance(o, ev.MismatchDetected)]


def test_fee_mismatch_names_its_payout() -> None:
    (mismatch,) = fee_mismatches("3.50")
    assert mismatch.data.payout_id == "po_1"
