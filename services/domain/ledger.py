"""The per-order ledger: `apply(ledger, event) -> (ledger, outputs)`.

This first version covers orders and payments; invoices, refunds, settlement and time
arrive with the full ledger (issue 4) on the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from schemas import events as ev
from schemas.base import CloudEvent, Model
from schemas.events import OrderStatus, ReasonCode, Severity
from services.domain.outputs import derived_id, output
from services.domain.tolerance import Tolerances

ZERO = Decimal(0)


class Payment(Model):
    payment_id: str
    amount: Decimal
    currency: str
    captured_at: datetime
    reversed: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.amount - self.reversed


class OpenMismatch(Model):
    mismatch_id: str
    reason: ReasonCode
    discriminator: str


class Assessment(Model):
    """What the ledger's facts mean under a tolerance: derived, never accumulated, so the
    same facts give the same assessment whatever order they arrived in."""

    receivable: Decimal
    paid: Decimal
    written_off: Decimal
    open_balance: Decimal
    matched: bool
    status: OrderStatus


class Ledger(Model):
    order_id: str
    customer_id: str | None = None
    currency: str | None = None
    channel: str | None = None
    region: str | None = None
    total: Decimal | None = None
    placed_at: datetime | None = None
    cancelled: bool = False
    payments: tuple[Payment, ...] = ()
    open_mismatches: tuple[OpenMismatch, ...] = ()
    # The assessment last reported in outputs, so only real changes are emitted.
    reported: Assessment | None = None
    applied_event_ids: frozenset[str] = frozenset()

    @property
    def known(self) -> bool:
        """The order itself has arrived (payments may come first)."""
        return self.total is not None and self.currency is not None

    @property
    def receivable(self) -> Decimal:
        if self.cancelled or self.total is None:
            return ZERO
        return self.total

    @property
    def paid(self) -> Decimal:
        """Payments in the order's currency; others are a CURRENCY_MISMATCH, not money paid."""
        return sum((p.net for p in self.payments if p.currency == self.currency), ZERO)


def assess(ledger: Ledger, tolerances: Tolerances) -> Assessment:
    receivable, paid = ledger.receivable, ledger.paid
    difference = receivable - paid
    matched = (
        ledger.known
        and not ledger.cancelled
        and paid > 0
        and tolerances.within(difference, ledger.currency or "")
    )
    written_off = difference if matched else ZERO
    open_balance = difference - written_off
    status: OrderStatus
    if ledger.cancelled:
        status = "cancelled"
    elif open_balance < 0:
        status = "overpaid"
    elif matched:
        status = "written_off" if written_off else "paid"
    else:
        status = "partially_paid" if paid > 0 else "open"
    return Assessment(
        receivable=receivable,
        paid=paid,
        written_off=written_off,
        open_balance=open_balance,
        matched=matched,
        status=status,
    )


def new_ledger(order_id: str) -> Ledger:
    return Ledger(order_id=order_id)


Outputs = list[CloudEvent]


def apply(
    ledger: Ledger, event: CloudEvent, tolerances: Tolerances
) -> tuple[Ledger, Sequence[CloudEvent]]:
    """Fold one event into an order's ledger; a redelivered event id changes nothing."""
    if event.id in ledger.applied_event_ids:
        return ledger, ()
    updated = _mutate(ledger, event)
    if updated is ledger:
        return ledger, ()
    updated = updated.model_copy(
        update={"applied_event_ids": ledger.applied_event_ids | {event.id}}
    )
    return _report_changes(updated, event, tolerances)


def _mutate(ledger: Ledger, event: CloudEvent) -> Ledger:
    match event:
        case ev.OrderPlaced(data=d):
            return ledger.model_copy(
                update={
                    "customer_id": d.customer_id,
                    "currency": d.currency,
                    "channel": d.channel,
                    "region": d.region,
                    "total": ledger.total if ledger.total is not None else d.total_amount,
                    "placed_at": d.placed_at,
                }
            )
        case ev.OrderAmended(data=d):
            return ledger.model_copy(update={"total": d.total_amount})
        case ev.OrderCancelled():
            return ledger.model_copy(update={"cancelled": True})
        case ev.PaymentCaptured(data=d):
            if any(p.payment_id == d.payment_id for p in ledger.payments):
                return ledger
            payment = Payment(
                payment_id=d.payment_id,
                amount=d.amount,
                currency=d.currency,
                captured_at=d.captured_at,
            )
            payments = tuple(sorted((*ledger.payments, payment), key=_capture_order))
            return ledger.model_copy(update={"payments": payments})
        case ev.PaymentReversed(data=d):
            payments = tuple(
                p.model_copy(update={"reversed": d.amount}) if p.payment_id == d.payment_id else p
                for p in ledger.payments
            )
            return ledger.model_copy(update={"payments": payments})
    return ledger


def _capture_order(payment: Payment) -> tuple[datetime, str]:
    return payment.captured_at, payment.payment_id


def _report_changes(
    ledger: Ledger, cause: CloudEvent, tolerances: Tolerances
) -> tuple[Ledger, Outputs]:
    if not ledger.known:
        return ledger, []
    now = assess(ledger, tolerances)
    before = ledger.reported
    outputs: Outputs = []
    if before is None or (now.status, now.open_balance, now.receivable, now.paid) != (
        before.status,
        before.open_balance,
        before.receivable,
        before.paid,
    ):
        outputs.append(_balance_changed(ledger, now, cause))
    written_off_before = before.written_off if before else ZERO
    if now.written_off != written_off_before:
        outputs.append(_writeoff(ledger, cause, now.written_off - written_off_before))
    if now.matched and not (before and before.matched):
        outputs.append(_matched(ledger, now, cause))
    ledger, mismatch_changes = _reconcile_mismatches(ledger, now, cause, tolerances)
    outputs.extend(mismatch_changes)
    return ledger.model_copy(update={"reported": now}), outputs


def _balance_changed(ledger: Ledger, now: Assessment, cause: CloudEvent) -> ev.BalanceChanged:
    assert ledger.currency is not None
    data = ev.BalanceChangedData(
        order_id=ledger.order_id,
        customer_id=ledger.customer_id,
        currency=ledger.currency,
        receivable=now.receivable,
        paid=now.paid,
        refunded=ZERO,
        settled=ZERO,
        open_balance=now.open_balance,
        status=now.status,
        channel=ledger.channel,
        region=ledger.region,
    )
    return output(ev.BalanceChanged, data, cause, ledger.order_id)


def _writeoff(ledger: Ledger, cause: CloudEvent, amount: Decimal) -> ev.WriteoffApplied:
    assert ledger.currency is not None
    data = ev.WriteoffAppliedData(
        order_id=ledger.order_id,
        amount=amount,
        currency=ledger.currency,
        reason="difference within tolerance",
    )
    return output(ev.WriteoffApplied, data, cause, ledger.order_id)


def _matched(ledger: Ledger, now: Assessment, cause: CloudEvent) -> ev.OrderMatched:
    assert ledger.currency is not None
    assert ledger.customer_id is not None
    data = ev.OrderMatchedData(
        order_id=ledger.order_id,
        customer_id=ledger.customer_id,
        currency=ledger.currency,
        receivable=now.receivable,
        paid=now.paid,
        refunded=ZERO,
        settled=ZERO,
        written_off=now.written_off,
    )
    return output(ev.OrderMatched, data, cause, ledger.order_id)


# --- mismatches ---------------------------------------------------------------------------
# Open mismatches are derived from the ledger's state alone, never from the event that just
# arrived, so every arrival order of the same events leaves the same set open.

Condition = tuple[ReasonCode, str, Payment | None]  # reason, discriminator, payment at fault

_SEVERITY: dict[ReasonCode, Severity] = {
    ReasonCode.CURRENCY_MISMATCH: "high",
    ReasonCode.PAYMENT_ON_CANCELLED_ORDER: "high",
    ReasonCode.DUPLICATE_PAYMENT: "medium",
    ReasonCode.OVERPAID: "medium",
}


def _conditions(ledger: Ledger, now: Assessment, tolerances: Tolerances) -> list[Condition]:
    assert ledger.currency is not None
    found: list[Condition] = [
        (ReasonCode.CURRENCY_MISMATCH, p.payment_id, p)
        for p in ledger.payments
        if p.currency != ledger.currency and p.net > 0
    ]
    if ledger.cancelled:
        found.extend(
            (ReasonCode.PAYMENT_ON_CANCELLED_ORDER, p.payment_id, p)
            for p in ledger.payments
            if p.currency == ledger.currency and p.net > 0
        )
        return found
    excess = -now.open_balance
    if excess > tolerances.of(ledger.currency):
        duplicate = _duplicate_of(ledger)
        if duplicate is not None and duplicate.net <= excess + tolerances.of(ledger.currency):
            found.append((ReasonCode.DUPLICATE_PAYMENT, duplicate.payment_id, duplicate))
        else:
            found.append((ReasonCode.OVERPAID, "", None))
    return found


def _duplicate_of(ledger: Ledger) -> Payment | None:
    """The later of two captures of the same amount under different payment ids."""
    seen: set[Decimal] = set()
    for payment in ledger.payments:  # in capture order
        if payment.currency != ledger.currency or payment.net <= 0:
            continue
        if payment.net in seen:
            return payment
        seen.add(payment.net)
    return None


def _reconcile_mismatches(
    ledger: Ledger, now: Assessment, cause: CloudEvent, tolerances: Tolerances
) -> tuple[Ledger, Outputs]:
    assert ledger.currency is not None
    wanted = {
        derived_id(ledger.order_id, reason, discriminator): (reason, discriminator, payment)
        for reason, discriminator, payment in _conditions(ledger, now, tolerances)
    }
    outputs: Outputs = []
    still_open = []
    for mismatch in ledger.open_mismatches:
        if mismatch.mismatch_id in wanted:
            still_open.append(mismatch)
        else:
            outputs.append(_resolved(ledger, mismatch, cause))
    known = {m.mismatch_id for m in ledger.open_mismatches}
    for mismatch_id, (reason, discriminator, payment) in sorted(wanted.items()):
        if mismatch_id in known:
            continue
        still_open.append(
            OpenMismatch(mismatch_id=mismatch_id, reason=reason, discriminator=discriminator)
        )
        outputs.append(_detected(ledger, now, mismatch_id, reason, payment, cause))
    ledger = ledger.model_copy(
        update={"open_mismatches": tuple(sorted(still_open, key=lambda m: m.mismatch_id))}
    )
    return ledger, outputs


def _detected(
    ledger: Ledger,
    now: Assessment,
    mismatch_id: str,
    reason: ReasonCode,
    payment: Payment | None,
    cause: CloudEvent,
) -> ev.MismatchDetected:
    assert ledger.currency is not None
    currency: str = ledger.currency
    expected: Decimal | None = now.receivable
    actual: Decimal = now.paid
    if reason is ReasonCode.CURRENCY_MISMATCH and payment is not None:
        currency, expected, actual = payment.currency, None, payment.net
    data = ev.MismatchDetectedData(
        mismatch_id=mismatch_id,
        reason=reason,
        severity=_SEVERITY.get(reason, "medium"),
        currency=currency,
        expected=expected,
        actual=actual,
        difference=None if expected is None or actual is None else actual - expected,
        order_id=ledger.order_id,
        payment_id=payment.payment_id if payment else None,
        customer_id=ledger.customer_id,
        detected_at=cause.time,
    )
    return output(ev.MismatchDetected, data, cause, mismatch_id)


def _resolved(ledger: Ledger, mismatch: OpenMismatch, cause: CloudEvent) -> ev.MismatchResolved:
    data = ev.MismatchResolvedData(
        mismatch_id=mismatch.mismatch_id,
        resolution="auto",
        reason=mismatch.reason,
        order_id=ledger.order_id,
        customer_id=ledger.customer_id,
        resolved_at=cause.time,
    )
    return output(ev.MismatchResolved, data, cause, mismatch.mismatch_id)
