"""Where a payment that names no order goes: a stateless decision, beside bank_routing.py.

A capture whose `reference` names an order (`ReferencePatterns`) goes to that order, and
is remembered under its payment id so that a later reversal, which names only the payment,
follows it. Anything else stays keyed by its payment id (PAYMENT_WITHOUT_ORDER, should it
stay so); a reversal that arrives before its capture too.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.references import ReferencePatterns


@dataclass(frozen=True)
class Forward:
    """The payment, re-addressed to `order_id`; `remember` for a later reversal."""

    payment_id: str
    order_id: str
    event: CloudEvent
    remember: bool


def forward(
    event: CloudEvent, references: ReferencePatterns, remembered: str | None
) -> Forward | None:
    """Where `event` goes instead of its payment id's ledger, or None to stay there.
    `remembered` is the order an earlier capture of the same payment was forwarded to."""
    if not isinstance(event, ev.PaymentCaptured | ev.PaymentReversed):
        return None
    if event.data.order_id is not None:
        return None
    if isinstance(event, ev.PaymentCaptured):
        order_id = references.order_id(event.data.reference)
    else:
        order_id = remembered
    if order_id is None:
        return None
    data = event.data.model_copy(update={"order_id": order_id})
    resolved = event.model_copy(update={"data": data, "subject": order_id})
    remember = isinstance(event, ev.PaymentCaptured)
    return Forward(event.data.payment_id, order_id, resolved, remember)


def names_a_payment(event: CloudEvent) -> str | None:
    """The payment id a forwarded order may be remembered under."""
    if isinstance(event, ev.PaymentCaptured | ev.PaymentReversed) and event.data.order_id is None:
        return event.data.payment_id
    return None
