"""Invariants of the ledger over generated histories of one order, with hypothesis."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import decode, encode
from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES
from services.domain.assessment import assess
from services.domain.ledger import dump_state, load_state
from services.domain.matching import apply, may_change_with_time
from tests.factories import T0, event, order_placed, payment_captured
from tests.unit.test_ledger import POLICY, fold

cents = st.integers(min_value=0, max_value=30_000).map(lambda c: Decimal(c) / 100)
days = st.integers(min_value=0, max_value=40).map(lambda d: T0.date() + timedelta(days=d))


def _money(amount: Decimal, currency: str = "CNY") -> dict[str, str]:
    return {"amount": str(amount), "currency": currency}


@st.composite
def histories(draw: st.DrawFn) -> list[CloudEvent]:
    """Everything that can happen to one order, in the order it happened."""
    total = draw(cents)
    history: list[CloudEvent] = []
    if draw(st.integers(0, 9)) > 0:
        terms = draw(st.sampled_from([None, 0, 30]))
        history.append(order_placed("ORD-1", str(total), payment_terms_days=terms))
    for n in range(draw(st.integers(0, 2))):
        history.append(
            event(
                "order.amended",
                {"order_id": "ORD-1", "total_amount": str(draw(cents))},
                at=T0 + timedelta(hours=n + 1),
            )
        )
    if draw(st.integers(0, 7)) == 0:
        history.append(event("order.cancelled", {"order_id": "ORD-1"}))
    for n in range(draw(st.integers(0, 2))):
        history.append(
            event(
                "invoice.issued",
                {
                    "invoice_id": f"INV-{n}",
                    "order_id": "ORD-1",
                    "customer_id": "C-1",
                    **_money(draw(cents)),
                    "issued_at": T0.isoformat(),
                    "due_date": draw(days).isoformat(),
                },
            )
        )
    if draw(st.booleans()):
        history.append(
            event(
                "credit_note.issued",
                {
                    "credit_note_id": "CN-0",
                    "invoice_id": "INV-0",
                    "order_id": "ORD-1",
                    **_money(draw(cents)),
                    "issued_at": T0.isoformat(),
                },
            )
        )
    payment_ids = []
    for n in range(draw(st.integers(0, 4))):
        amount = total if draw(st.booleans()) else draw(cents)
        currency = draw(st.sampled_from(["CNY", "CNY", "CNY", "USD"]))
        method = draw(st.sampled_from(["card", "alipay", "voucher", "bank_transfer", "cod"]))
        captured_at = T0 + timedelta(days=draw(st.integers(0, 5)), minutes=n)
        history.append(
            payment_captured(
                f"p{n}", "ORD-1", str(amount), currency=currency, method=method, at=captured_at
            )
        )
        payment_ids.append(f"p{n}")
    if draw(st.booleans()) and payment_ids:
        history.append(
            event(
                "payment.reversed",
                {
                    "payment_id": draw(st.sampled_from(payment_ids)),
                    "order_id": "ORD-1",
                    **_money(draw(cents)),
                },
            )
        )
    for n in range(draw(st.integers(0, 2))):
        history.append(
            event(
                "refund.issued",
                {
                    "refund_id": f"r{n}",
                    "order_id": "ORD-1",
                    **_money(draw(cents)),
                    "issued_at": T0.isoformat(),
                },
            )
        )
    if draw(st.booleans()) and payment_ids:
        history.append(
            event(
                "chargeback.opened",
                {
                    "chargeback_id": "cb",
                    "order_id": "ORD-1",
                    "payment_id": payment_ids[0],
                    **_money(draw(cents)),
                    "opened_at": T0.isoformat(),
                },
            )
        )
        if draw(st.booleans()):
            history.append(
                event(
                    "chargeback.resolved",
                    {
                        "chargeback_id": "cb",
                        "order_id": "ORD-1",
                        "outcome": draw(st.sampled_from(["won", "lost"])),
                    },
                )
            )
    for payment_id in payment_ids:
        if draw(st.booleans()):
            history.append(
                event(
                    "payment.settled",
                    {
                        "payment_id": payment_id,
                        "order_id": "ORD-1",
                        "payout_id": "po",
                        "line_id": "L",
                        **_money(draw(cents)),
                    },
                )
            )
    for n in range(draw(st.integers(0, 2))):
        history.append(
            event(
                "payment.applied",
                {
                    "line_id": f"L{n}",
                    "order_id": "ORD-1",
                    **_money(total if draw(st.booleans()) else draw(cents)),
                    "method": "reference",
                    "confidence": "1",
                },
            )
        )
    closed: set[date] = set(draw(st.lists(days, max_size=3)))
    history += [event("day.closed", {"date": d.isoformat()}, id=f"day-{d}") for d in closed]
    return history


@settings(max_examples=400, deadline=None)
@given(data=st.data(), history=histories())
def test_any_arrival_order_and_any_duplication_fold_to_the_same_ledger(
    data: st.DataObject, history: list[CloudEvent]
) -> None:
    reference, _ = fold(history)
    shuffled = data.draw(st.permutations(history))
    redelivered = data.draw(st.lists(st.sampled_from(history), max_size=4)) if history else []
    positions = data.draw(
        st.lists(
            st.integers(0, len(shuffled)), min_size=len(redelivered), max_size=len(redelivered)
        )
    )
    arrival = list(shuffled)
    for event_, position in zip(redelivered, positions, strict=True):
        arrival.insert(position, event_)
    other, _ = fold(arrival)
    assert other == reference
    assert assess(other, POLICY) == assess(reference, POLICY)
    assert {m.mismatch_id for m in other.open_mismatches} == {
        m.mismatch_id for m in reference.open_mismatches
    }


@settings(max_examples=400, deadline=None)
@given(data=st.data(), history=histories())
def test_the_last_balance_reported_is_the_final_balance_whatever_the_arrival_order(
    data: st.DataObject, history: list[CloudEvent]
) -> None:
    arrival = data.draw(st.permutations(history))
    ledger, outputs = fold(arrival)
    if ledger.order is None:
        return
    now = assess(ledger, POLICY)
    assert now is not None
    balances = [o for o in outputs if isinstance(o, ev.BalanceChanged)]
    assert balances, "an order with facts must have reported its balance"
    last = balances[-1].data
    assert (last.status, last.open_balance, last.receivable, last.paid, last.due_date) == (
        now.status,
        now.open_balance,
        now.receivable,
        now.paid,
        now.due_date,
    )


@settings(max_examples=400, deadline=None)
@given(history=histories())
def test_money_is_conserved_to_the_cent(history: list[CloudEvent]) -> None:
    ledger, _ = fold(history)
    now = assess(ledger, POLICY)
    if now is None:
        return
    assert now.receivable == now.paid + now.open_balance + now.written_off
    assert abs(now.written_off) <= POLICY.tolerance(now.currency)


def _floats_in(value: object) -> list[object]:
    if isinstance(value, float):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            f for field in dataclasses.fields(value) for f in _floats_in(getattr(value, field.name))
        ]
    if isinstance(value, tuple | list | frozenset | set):
        return [f for item in value for f in _floats_in(item)]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats_in(item)]
    return []


@settings(max_examples=200, deadline=None)
@given(history=histories())
def test_no_float_anywhere_in_the_ledger_or_its_outputs(history: list[CloudEvent]) -> None:
    ledger, outputs = fold(history)
    assert _floats_in(ledger) == []
    assert _floats_in(assess(ledger, POLICY)) == []
    for output in outputs:
        assert _floats_in(output.data.model_dump()) == []


@settings(max_examples=300, deadline=None)
@given(history=histories())
def test_every_output_is_a_valid_event_of_the_contract(history: list[CloudEvent]) -> None:
    """Outputs are built without re-running the validators (outputs.py); this is the check
    that they would pass them: parsing the encoded output gives the same event back."""
    _ledger, outputs = fold(history)
    for output in outputs:
        assert decode(encode(output), max_bytes=OUTPUT_MAX_MESSAGE_BYTES) == output


@settings(max_examples=50, deadline=None)
@given(history=histories())
def test_stored_ledger_round_trips_exactly(history: list[CloudEvent]) -> None:
    ledger, _ = fold(history)
    assert load_state(dump_state(ledger)) == ledger


@settings(max_examples=400, deadline=None)
@given(history=histories(), later=st.integers(min_value=0, max_value=400))
def test_a_ledger_that_time_cannot_change_is_unchanged_by_any_later_day(
    history: list[CloudEvent], later: int
) -> None:
    ledger, _ = fold(history)
    if may_change_with_time(ledger, POLICY):
        return
    closed_days = [e.data.date for e in history if isinstance(e, ev.DayClosed)]
    last = max(closed_days, default=None)
    day = (last or T0.date()) + timedelta(days=later)
    closed = event("day.closed", {"date": day.isoformat()}, id=f"later-{day}")
    after, outputs = apply(ledger, closed, POLICY, last)
    assert (after, list(outputs)) == (ledger, [])


def test_time_sensitivity_is_not_vacuous() -> None:
    """A guard on the property above: generated histories include ledgers on both sides."""
    sides: set[bool] = set()

    # The same draws every run, as in the guard below.
    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(history=histories())
    def collect(history: list[CloudEvent]) -> None:
        sides.add(may_change_with_time(fold(history)[0], POLICY))

    collect()
    assert sides == {True, False}


def test_generated_histories_reach_every_ledger_reason_code() -> None:
    """A guard on the generator itself: the invariants above must see every reason."""
    seen: set[str] = set()

    # The same draws every run (derandomize): a guard must fail when the generator
    # changes, not by chance; 600 random draws missed PAYMENT_WITHOUT_ORDER in a CI run.
    @settings(max_examples=600, deadline=None, database=None, derandomize=True)
    @given(history=histories())
    def collect(history: list[CloudEvent]) -> None:
        _ledger, outputs = fold(history)
        seen.update(
            o.data.reason
            for o in outputs
            if hasattr(o.data, "reason") and o.type.endswith("detected.v1")
        )

    collect()
    expected = {
        "UNDERPAID",
        "OVERPAID",
        "DUPLICATE_PAYMENT",
        "CURRENCY_MISMATCH",
        "PAYMENT_ON_CANCELLED_ORDER",
        "REFUND_EXCEEDS_PAID",
        "CHARGEBACK",
        "PAYMENT_NOT_SETTLED",
        "INVOICE_ORDER_MISMATCH",
        "PAYMENT_WITHOUT_ORDER",
    }
    assert expected <= seen, expected - seen
