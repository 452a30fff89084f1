"""`apply(ledger, event, policy, today) -> (ledger, outputs)`: the ledger's rules.

The event's fact is recorded (ledger.py), the facts are assessed (assessment.py) and
checked against the mismatch conditions (conditions.py); the outputs are the difference
between that and what was last reported. `today` is the last business day closed, which
the shell keeps; a `day.closed` event re-assesses a ledger on the new day.
"""

from __future__ import annotations

from datetime import date

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.assessment import Money, assess_with_money
from services.domain.conditions import SEVERITY, Condition, conditions
from services.domain.folding import apply_once, evolve
from services.domain.ledger import Assessment, Ledger, OpenMismatch, Outputs, record
from services.domain.outputs import derived_id, output, trusted
from services.domain.policy import Policy


def apply(
    ledger: Ledger, event: CloudEvent, policy: Policy, today: date | None
) -> tuple[Ledger, Outputs]:
    def report_on(state: Ledger, cause: CloudEvent, day: date | None) -> tuple[Ledger, Outputs]:
        return report(state, cause, policy, day)

    return apply_once(ledger, event, today, record, report_on, ())


def may_change_with_time(ledger: Ledger, policy: Policy) -> bool:
    """False when no later business day can change what `ledger` reports, so closing a day
    may skip it. Only three rules read the day (PAYMENT_WITHOUT_ORDER, PAYMENT_NOT_SETTLED,
    UNDERPAID), each holds from some day on, and a fact that could change that arrives as
    an event, which re-assesses the ledger anyway. Conservative: True whenever in doubt."""
    if ledger.order is None:
        return bool(ledger.captures)  # PAYMENT_WITHOUT_ORDER, once its day has passed
    now = ledger.reported
    if now is None or (now.paid > 0 and now.open_balance > 0):
        return True  # UNDERPAID, once past due
    settled: set[tuple[str | None, str]] = {(s.payment_id, s.currency) for s in ledger.settlements}
    settled |= {(a.payment_id, a.currency) for a in ledger.applications}
    return any(  # PAYMENT_NOT_SETTLED, once its settlement days have passed
        c.method in policy.settlement_days and (c.payment_id, c.currency) not in settled
        for c in ledger.captures
    )


def report(
    ledger: Ledger, cause: CloudEvent, policy: Policy, today: date | None
) -> tuple[Ledger, Outputs]:
    """Outputs for what changed since the last report, and the ledger that remembers it."""
    assessed = assess_with_money(ledger, policy)
    if assessed is None:
        return ledger, ()
    now, m = assessed
    before = ledger.reported
    outputs: list[CloudEvent] = []
    if ledger.order is not None:
        if before is None or _balance_view(before) != _balance_view(now):
            outputs.append(_balance_changed(ledger, now, cause))
        written_off_before = before.written_off if before else 0
        if now.written_off != written_off_before:
            outputs.append(_writeoff(ledger, now, cause, now.written_off - written_off_before))
        if now.matched and not (before and before.matched):
            outputs.append(_matched(ledger, now, cause))
    open_mismatches, changes = _mismatch_changes(ledger, now, m, policy, today, cause)
    outputs.extend(changes)
    # A balance is reported only once the order is known: an assessment from an invoice or
    # a payment that came first must not pass for the balance.changed never sent.
    reported = now if ledger.order is not None else None
    if reported == before and open_mismatches == ledger.open_mismatches:
        return ledger, outputs
    return evolve(ledger, reported=reported, open_mismatches=open_mismatches), outputs


def _balance_view(a: Assessment) -> tuple[object, ...]:
    return (a.status, a.open_balance, a.receivable, a.paid, a.refunded, a.settled, a.due_date)


def _mismatch_changes(
    ledger: Ledger,
    now: Assessment,
    m: Money,
    policy: Policy,
    today: date | None,
    cause: CloudEvent,
) -> tuple[tuple[OpenMismatch, ...], list[CloudEvent]]:
    holding = {
        derived_id(ledger.key, c.reason, c.discriminator): c
        for c in conditions(ledger, now, policy, today, m)
    }
    outputs: list[CloudEvent] = []
    still_open = []
    for mismatch in ledger.open_mismatches:
        if mismatch.mismatch_id in holding:
            still_open.append(mismatch)
        else:
            outputs.append(_resolved(ledger, mismatch, cause))
    already = {m.mismatch_id for m in ledger.open_mismatches}
    for mismatch_id, condition in sorted(holding.items()):
        if mismatch_id in already:
            continue
        still_open.append(OpenMismatch(mismatch_id, condition.reason, condition.discriminator))
        outputs.append(_detected(ledger, mismatch_id, condition, cause))
    return tuple(sorted(still_open, key=lambda m: m.mismatch_id)), outputs


def _balance_changed(ledger: Ledger, now: Assessment, cause: CloudEvent) -> ev.BalanceChanged:
    assert ledger.order is not None
    data = trusted(
        ev.BalanceChangedData,
        order_id=ledger.key,
        customer_id=ledger.customer_id,
        currency=now.currency,
        receivable=now.receivable,
        paid=now.paid,
        refunded=now.refunded,
        settled=now.settled,
        open_balance=now.open_balance,
        status=now.status,
        due_date=now.due_date,
        channel=ledger.order.channel,
        region=ledger.order.region,
    )
    return output(ev.BalanceChanged, data, cause, ledger.key)


def _writeoff(
    ledger: Ledger, now: Assessment, cause: CloudEvent, amount: object
) -> ev.WriteoffApplied:
    data = trusted(
        ev.WriteoffAppliedData,
        order_id=ledger.key,
        amount=amount,
        currency=now.currency,
        reason="difference within the tolerance of the currency",
    )
    return output(ev.WriteoffApplied, data, cause, ledger.key)


def _matched(ledger: Ledger, now: Assessment, cause: CloudEvent) -> ev.OrderMatched:
    assert ledger.order is not None
    data = trusted(
        ev.OrderMatchedData,
        order_id=ledger.key,
        customer_id=ledger.order.customer_id,
        currency=now.currency,
        receivable=now.receivable,
        paid=now.paid,
        refunded=now.refunded,
        settled=now.settled,
        written_off=now.written_off,
    )
    return output(ev.OrderMatched, data, cause, ledger.key)


def _detected(
    ledger: Ledger, mismatch_id: str, condition: Condition, cause: CloudEvent
) -> ev.MismatchDetected:
    expected, actual = condition.expected, condition.actual
    data = trusted(
        ev.MismatchDetectedData,
        mismatch_id=mismatch_id,
        reason=condition.reason,
        severity=SEVERITY[condition.reason],
        currency=condition.currency,
        expected=expected,
        actual=actual,
        difference=None if expected is None or actual is None else actual - expected,
        order_id=ledger.order_id,
        payment_id=condition.payment_id,
        payout_id=condition.payout_id,
        customer_id=ledger.customer_id,
        detected_at=cause.time,
    )
    return output(ev.MismatchDetected, data, cause, mismatch_id)


def _resolved(ledger: Ledger, mismatch: OpenMismatch, cause: CloudEvent) -> ev.MismatchResolved:
    data = trusted(
        ev.MismatchResolvedData,
        mismatch_id=mismatch.mismatch_id,
        resolution="auto",
        reason=mismatch.reason,
        order_id=ledger.order_id,
        customer_id=ledger.customer_id,
        resolved_at=cause.time,
    )
    return output(ev.MismatchResolved, data, cause, mismatch.mismatch_id)
