"""A payment that names no order follows the order its reference names, and its reversal
follows it; anything else stays where it is."""

from __future__ import annotations

from schemas import events as ev
from services.domain.payment_routing import forward
from services.domain.references import ReferencePatterns
from tests.factories import event, payment_captured

REFERENCES = ReferencePatterns(("(ORD-\\d+)",))


def _reversal(payment_id: str) -> ev.PaymentReversed:
    reversed_ = event(
        "payment.reversed", {"payment_id": payment_id, "amount": "10.00", "currency": "CNY"}
    )
    assert isinstance(reversed_, ev.PaymentReversed)
    return reversed_


def test_a_capture_whose_reference_names_an_order_goes_to_it_and_is_remembered() -> None:
    capture = payment_captured("pay_1", None, "10.00", reference="for ORD-1001, thanks")

    decided = forward(capture, REFERENCES, None)

    assert decided is not None
    assert (decided.order_id, decided.remember) == ("ORD-1001", True)
    assert decided.event.data.order_id == "ORD-1001"  # type: ignore[attr-defined]
    assert decided.event.subject == "ORD-1001"
    assert decided.event.id == capture.id


def test_a_reversal_follows_the_order_its_capture_went_to() -> None:
    decided = forward(_reversal("pay_1"), REFERENCES, "ORD-1001")

    assert decided is not None
    assert (decided.order_id, decided.remember) == ("ORD-1001", False)


def test_a_reversal_before_its_capture_stays_keyed_by_the_payment() -> None:
    assert forward(_reversal("pay_1"), REFERENCES, None) is None


def test_a_payment_that_names_its_order_or_whose_reference_names_none_stays() -> None:
    assert forward(payment_captured("pay_2", "ORD-7", "10.00"), REFERENCES, None) is None
    unnamed = payment_captured("pay_3", None, "10.00", reference="thank you")
    assert forward(unnamed, REFERENCES, None) is None
