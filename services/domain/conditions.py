"""Mismatch conditions: which reasons hold for a ledger on a business day.

Each condition is a function of the facts, the assessment and the business day only, so
the set of open mismatches does not depend on the order in which events arrived. The
ledger raises what newly holds and resolves what no longer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from schemas.events import ReasonCode, Severity
from services.domain.assessment import Money, invoiced, money, net_capture, total
from services.domain.ledger import ZERO, Assessment, Capture, Ledger
from services.domain.policy import Policy


@dataclass(frozen=True, slots=True, init=False)
class Condition:
    reason: ReasonCode
    discriminator: str  # what, within the order, is wrong: a payment id, an invoice id, …
    currency: str
    expected: Decimal | None = None
    actual: Decimal | None = None
    payment_id: str | None = None
    payout_id: str | None = None

    # Written out, not generated (init=False): see services/domain/native.py, "__init__".
    def __init__(
        self,
        reason: ReasonCode,
        discriminator: str,
        currency: str,
        expected: Decimal | None = None,
        actual: Decimal | None = None,
        payment_id: str | None = None,
        payout_id: str | None = None,
    ) -> None:
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "discriminator", discriminator)
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "expected", expected)
        object.__setattr__(self, "actual", actual)
        object.__setattr__(self, "payment_id", payment_id)
        object.__setattr__(self, "payout_id", payout_id)


SEVERITY: dict[ReasonCode, Severity] = {
    ReasonCode.CURRENCY_MISMATCH: "high",
    ReasonCode.PAYMENT_ON_CANCELLED_ORDER: "high",
    ReasonCode.REFUND_EXCEEDS_PAID: "high",
    ReasonCode.CHARGEBACK: "high",
    ReasonCode.DUPLICATE_PAYMENT: "medium",
    ReasonCode.OVERPAID: "medium",
    ReasonCode.UNDERPAID: "medium",
    ReasonCode.PAYMENT_WITHOUT_ORDER: "medium",
    ReasonCode.INVOICE_ORDER_MISMATCH: "medium",
    ReasonCode.PAYMENT_NOT_SETTLED: "low",
    ReasonCode.FEE_MISMATCH: "low",
}


def conditions(
    ledger: Ledger, now: Assessment, policy: Policy, today: date | None, m: Money | None = None
) -> list[Condition]:
    """`m`, when given, is `money(ledger, now.currency)`, already summed by the caller."""
    found = _foreign_currency(ledger, now.currency)
    if ledger.order is None:
        return found + _without_order(ledger, now, today)
    if m is None:
        m = money(ledger, now.currency)
    found += _chargebacks(ledger)
    found += _fee_differences(ledger, policy)
    found += _unsettled(ledger, now.currency, m, policy, today)
    found += _refunds_beyond_paid(m, now.currency, policy)
    if ledger.cancelled:
        if now.paid > policy.tolerance(now.currency):
            found.append(
                Condition(ReasonCode.PAYMENT_ON_CANCELLED_ORDER, "", now.currency, ZERO, now.paid)
            )
        return found
    found += _invoice_vs_order(ledger, now.currency, policy)
    found += _balance(ledger, now, policy, today)
    return found


def _foreign_currency(ledger: Ledger, currency: str) -> list[Condition]:
    found = [
        Condition(
            ReasonCode.CURRENCY_MISMATCH,
            c.payment_id,
            c.currency,
            None,
            net_capture(ledger, c),
            c.payment_id,
        )
        for c in ledger.captures
        if c.currency != currency and net_capture(ledger, c) > 0
    ]
    found += [
        Condition(ReasonCode.CURRENCY_MISMATCH, i.invoice_id, i.currency, None, i.amount)
        for i in ledger.invoices
        if i.currency != currency
    ]
    return found


def _without_order(ledger: Ledger, now: Assessment, today: date | None) -> list[Condition]:
    """A payment whose order has not arrived by the end of the next business day."""
    if today is None:
        return []
    return [
        Condition(
            ReasonCode.PAYMENT_WITHOUT_ORDER, c.payment_id, c.currency, None, c.amount, c.payment_id
        )
        for c in ledger.captures
        if c.currency == now.currency and today > c.captured_at.date()
    ]


def _chargebacks(ledger: Ledger) -> list[Condition]:
    resolved = {o.chargeback_id for o in ledger.chargeback_outcomes}
    return [
        Condition(ReasonCode.CHARGEBACK, c.chargeback_id, c.currency, None, c.amount, c.payment_id)
        for c in ledger.chargebacks
        if c.chargeback_id not in resolved
    ]


def _fee_differences(ledger: Ledger, policy: Policy) -> list[Condition]:
    """A payout item whose fee differs from the fee the capture reported. PSPs print fees
    with either sign, so magnitudes are compared."""
    fees = {c.payment_id: c for c in ledger.captures if c.fee is not None}
    found = []
    for s in ledger.settlements:
        capture = fees.get(s.payment_id)
        if s.fee is None or capture is None or capture.fee is None:
            continue
        if s.amount <= 0:
            continue  # a refund or chargeback item: its fee is not the capture's fee
        if abs(abs(s.fee) - capture.fee) > policy.fee_tolerance:
            found.append(
                Condition(
                    ReasonCode.FEE_MISMATCH,
                    s.settlement_id,
                    s.currency,
                    capture.fee,
                    abs(s.fee),
                    s.payment_id,
                    s.payout_id,
                )
            )
    return found


def _unsettled(
    ledger: Ledger, currency: str, m: Money, policy: Policy, today: date | None
) -> list[Condition]:
    if today is None:
        return []
    settled = m.settled_payment_ids
    return [
        Condition(
            ReasonCode.PAYMENT_NOT_SETTLED, c.payment_id, c.currency, None, c.amount, c.payment_id
        )
        for c in ledger.captures
        if c.currency == currency
        and c.payment_id not in settled
        and _settlement_overdue(c, policy, today)
        and net_capture(ledger, c) > 0
    ]


def _settlement_overdue(capture: Capture, policy: Policy, today: date) -> bool:
    days = policy.settlement_days.get(capture.method)
    return days is not None and today >= capture.captured_at.date() + timedelta(days=days)


def _refunds_beyond_paid(m: Money, currency: str, policy: Policy) -> list[Condition]:
    received = m.captured + m.from_bank
    if m.refunded - received > policy.tolerance(currency):
        return [Condition(ReasonCode.REFUND_EXCEEDS_PAID, "", currency, received, m.refunded)]
    return []


def _invoice_vs_order(ledger: Ledger, currency: str, policy: Policy) -> list[Condition]:
    billed, ordered = invoiced(ledger, currency), total(ledger)
    if billed is None or ordered is None or policy.within(billed - ordered, currency):
        return []
    return [Condition(ReasonCode.INVOICE_ORDER_MISMATCH, "", currency, ordered, billed)]


def _balance(
    ledger: Ledger, now: Assessment, policy: Policy, today: date | None
) -> list[Condition]:
    tolerance = policy.tolerance(now.currency)
    excess = -now.open_balance
    if excess > tolerance:
        duplicate = _duplicate_capture(ledger, now.currency)
        if duplicate is not None and net_capture(ledger, duplicate) <= excess + tolerance:
            return [
                Condition(
                    ReasonCode.DUPLICATE_PAYMENT,
                    duplicate.payment_id,
                    now.currency,
                    now.receivable,
                    now.paid,
                    duplicate.payment_id,
                )
            ]
        return [Condition(ReasonCode.OVERPAID, "", now.currency, now.receivable, now.paid)]
    past_due = today is not None and now.due_date is not None and today >= now.due_date
    if past_due and now.paid > 0 and now.open_balance > tolerance:
        return [Condition(ReasonCode.UNDERPAID, "", now.currency, now.receivable, now.paid)]
    return []


def _duplicate_capture(ledger: Ledger, currency: str) -> Capture | None:
    """The later of two captures of the same amount under different payment ids."""
    seen: set[Decimal] = set()
    for capture in sorted(ledger.captures, key=lambda c: (c.captured_at, c.payment_id)):
        net = net_capture(ledger, capture)
        if capture.currency != currency or net <= 0:
            continue
        if net in seen:
            return capture
        seen.add(net)
    return None
