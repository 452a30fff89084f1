"""What an order's facts add up to: receivable, paid, settled, write-off and status.

Derived afresh from the facts every time, never accumulated, so the same facts give the
same assessment whatever order they arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from schemas.events import OrderStatus
from services.domain.ledger import ZERO, Assessment, Capture, Ledger
from services.domain.policy import NO_SETTLEMENT_NEEDED, Policy


def currency_of(ledger: Ledger) -> str | None:
    if ledger.order is not None:
        return ledger.order.currency
    for facts in (ledger.invoices, ledger.captures):
        for fact in facts:
            return fact.currency
    return None


def total(ledger: Ledger) -> Decimal | None:
    """The order's total: the latest amendment's, else the placed total."""
    if ledger.amendments:
        return max(ledger.amendments, key=lambda a: (a.at, a.event_id)).total
    return ledger.order.total if ledger.order is not None else None


def invoiced(ledger: Ledger, currency: str) -> Decimal | None:
    """Invoices minus credit notes in the order's currency; None before any invoice."""
    invoices = [i.amount for i in ledger.invoices if i.currency == currency]
    if not invoices:
        return None
    notes = [n.amount for n in ledger.credit_notes if n.currency == currency]
    return sum(invoices, ZERO) - sum(notes, ZERO)


def receivable(ledger: Ledger, currency: str) -> Decimal:
    if ledger.cancelled:
        return ZERO
    from_invoices = invoiced(ledger, currency)
    if from_invoices is not None:
        return from_invoices
    return total(ledger) or ZERO


def due_date(ledger: Ledger) -> date | None:
    if ledger.invoices:
        return min(i.due_date for i in ledger.invoices)
    if ledger.order is None:
        return None
    terms = ledger.order.terms_days or 0
    return ledger.order.placed_at.date() + timedelta(days=terms)


@dataclass(frozen=True, slots=True, init=False)
class Money:
    """The payment side of an order, in its currency."""

    captured: Decimal  # captures less their reversals
    from_bank: Decimal  # bank lines applied that settle no captured payment
    refunded: Decimal
    charged_back: Decimal  # lost chargebacks
    settled: Decimal
    settled_payment_ids: frozenset[str]

    # Written out, not generated (init=False): see services/domain/native.py, "__init__".
    def __init__(
        self,
        captured: Decimal,
        from_bank: Decimal,
        refunded: Decimal,
        charged_back: Decimal,
        settled: Decimal,
        settled_payment_ids: frozenset[str],
    ) -> None:
        object.__setattr__(self, "captured", captured)
        object.__setattr__(self, "from_bank", from_bank)
        object.__setattr__(self, "refunded", refunded)
        object.__setattr__(self, "charged_back", charged_back)
        object.__setattr__(self, "settled", settled)
        object.__setattr__(self, "settled_payment_ids", settled_payment_ids)

    @property
    def paid(self) -> Decimal:
        return self.captured + self.from_bank - self.refunded - self.charged_back


def net_capture(ledger: Ledger, capture: Capture) -> Decimal:
    reversed_ = sum(
        (r.amount for r in ledger.reversals if r.payment_id == capture.payment_id), ZERO
    )
    return capture.amount - reversed_


def money(ledger: Ledger, currency: str) -> Money:
    captures = [c for c in ledger.captures if c.currency == currency]
    captured = sum((net_capture(ledger, c) for c in captures), ZERO)
    settled_ids = {s.payment_id for s in ledger.settlements if s.currency == currency}
    settled = sum((s.amount for s in ledger.settlements if s.currency == currency), ZERO)
    # A bank line applied to the order either settles a bank transfer already captured
    # (same amount, not yet settled; paired in canonical order) or is money received.
    unsettled_transfers = [
        c for c in captures if c.method == "bank_transfer" and c.payment_id not in settled_ids
    ]
    from_bank = ZERO
    for application in ledger.applications:
        if application.currency != currency:
            continue
        settled += application.amount
        named = application.payment_id
        if named is not None and any(c.payment_id == named for c in captures):
            settled_ids.add(named)
            continue
        twin = next((c for c in unsettled_transfers if c.amount == application.amount), None)
        if twin is not None:
            unsettled_transfers.remove(twin)
            settled_ids.add(twin.payment_id)
        else:
            from_bank += application.amount
    settled += sum(
        (net_capture(ledger, c) for c in captures if c.method in NO_SETTLEMENT_NEEDED), ZERO
    )
    refunded = sum((r.amount for r in ledger.refunds if r.currency == currency), ZERO)
    lost = {o.chargeback_id for o in ledger.chargeback_outcomes if o.lost}
    charged_back = sum(
        (
            c.amount
            for c in ledger.chargebacks
            if c.chargeback_id in lost and c.currency == currency
        ),
        ZERO,
    )
    return Money(captured, from_bank, refunded, charged_back, settled, frozenset(settled_ids))


def assess(ledger: Ledger, policy: Policy) -> Assessment | None:
    """None until the ledger knows its currency (no order, invoice or payment yet)."""
    assessed = assess_with_money(ledger, policy)
    return None if assessed is None else assessed[0]


def assess_with_money(ledger: Ledger, policy: Policy) -> tuple[Assessment, Money] | None:
    """The assessment and the payment side it was made from, which the mismatch conditions
    read too: summed once per event."""
    currency = currency_of(ledger)
    if currency is None:
        return None
    owed = receivable(ledger, currency)
    m = money(ledger, currency)
    paid = m.paid
    difference = owed - paid
    known = ledger.order is not None
    matched = known and not ledger.cancelled and paid > 0 and policy.within(difference, currency)
    written_off = difference if matched else ZERO
    open_balance = difference - written_off
    status: OrderStatus
    if ledger.cancelled:
        status = "cancelled"
    elif open_balance < 0:
        status = "overpaid"
    elif matched and written_off:
        status = "written_off"
    elif matched:
        status = "settled" if m.settled >= paid - policy.tolerance(currency) else "paid"
    else:
        status = "partially_paid" if paid > 0 else "open"
    assessment = Assessment(
        currency=currency,
        receivable=owed,
        paid=paid,
        refunded=m.refunded,
        settled=m.settled,
        written_off=written_off,
        open_balance=open_balance,
        matched=matched,
        status=status,
        due_date=due_date(ledger),
    )
    return assessment, m
