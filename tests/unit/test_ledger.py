from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.ledger import Assessment, Ledger, apply, assess, new_ledger
from services.domain.tolerance import Tolerances
from tests.factories import event, order_placed, payment_captured

TOL = Tolerances()


def fold(events: Sequence[CloudEvent], order_id: str = "ORD-1") -> tuple[Ledger, list[CloudEvent]]:
    ledger, outputs = new_ledger(order_id), list[CloudEvent]()
    for e in events:
        ledger, out = apply(ledger, e, TOL)
        outputs.extend(out)
    return ledger, outputs


def state(ledger: Ledger) -> Assessment:
    return assess(ledger, TOL)


def kinds(outputs: Sequence[CloudEvent]) -> list[str]:
    return [o.type.removeprefix("o2c.").removesuffix(".v1") for o in outputs]


def reasons(outputs: Sequence[CloudEvent]) -> list[str]:
    return [o.data.reason for o in outputs if isinstance(o, ev.MismatchDetected)]


def test_full_payment_matches_the_order() -> None:
    ledger, outputs = fold(
        [order_placed("ORD-1", "100.00"), payment_captured("p1", "ORD-1", "100.00")]
    )
    assert kinds(outputs) == ["balance.changed", "balance.changed", "order.matched"]
    assert state(ledger).status == "paid"
    assert state(ledger).open_balance == 0


def test_payment_before_its_order_matches_when_the_order_arrives() -> None:
    ledger, outputs = fold(
        [payment_captured("p1", "ORD-1", "100.00"), order_placed("ORD-1", "100.00")]
    )
    assert kinds(outputs) == ["balance.changed", "order.matched"]
    assert state(ledger).matched


def test_redelivered_event_changes_nothing() -> None:
    pay = payment_captured("p1", "ORD-1", "40.00")
    once, _ = fold([order_placed("ORD-1", "100.00"), pay])
    twice, outputs = apply(once, pay, TOL)
    assert twice is once
    assert outputs == ()


def test_same_payment_id_in_a_new_event_counts_once() -> None:
    ledger, _ = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "40.00"),
            payment_captured("p1", "ORD-1", "40.00"),
        ]
    )
    assert state(ledger).paid == Decimal("40.00")
    assert state(ledger).status == "partially_paid"


# Tolerance edges, in CNY yuan: 0.50 is written off, 0.51 is not.
@pytest.mark.parametrize(
    ("paid", "matched", "written_off"),
    [
        ("100.00", True, "0"),  # exact
        ("99.50", True, "0.50"),  # short by exactly the tolerance
        ("99.49", False, "0"),  # short by one fen beyond it
        ("100.50", True, "-0.50"),  # over by exactly the tolerance
        ("100.51", False, "0"),  # over by one fen beyond it: OVERPAID
    ],
)
def test_tolerance_edges(paid: str, matched: bool, written_off: str) -> None:
    ledger, _ = fold([order_placed("ORD-1", "100.00"), payment_captured("p1", "ORD-1", paid)])
    assert state(ledger).matched is matched
    assert state(ledger).written_off == Decimal(written_off)


def test_second_capture_of_the_same_amount_is_a_duplicate_payment() -> None:
    _, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "100.00"),
            payment_captured("p2", "ORD-1", "100.00"),
        ]
    )
    assert reasons(outputs) == ["DUPLICATE_PAYMENT"]


def test_payment_above_the_total_is_overpaid_until_an_amendment_explains_it() -> None:
    ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "120.00"),
            event("order.amended", {"order_id": "ORD-1", "total_amount": "120.00"}),
        ]
    )
    assert reasons(outputs) == ["OVERPAID"]
    assert "mismatch.resolved" in kinds(outputs)
    assert ledger.open_mismatches == ()
    assert state(ledger).matched


def test_payment_in_another_currency_is_a_currency_mismatch_and_not_counted() -> None:
    ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "14.00", currency="USD"),
        ]
    )
    assert reasons(outputs) == ["CURRENCY_MISMATCH"]
    assert state(ledger).paid == 0


def test_payment_on_a_cancelled_order() -> None:
    _, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            event("order.cancelled", {"order_id": "ORD-1"}),
            payment_captured("p1", "ORD-1", "100.00"),
        ]
    )
    assert reasons(outputs) == ["PAYMENT_ON_CANCELLED_ORDER"]


def test_output_ids_are_derived_from_their_cause() -> None:
    events = [order_placed("ORD-1", "100.00"), payment_captured("p1", "ORD-1", "100.00")]
    _, first = fold(events)
    _, again = fold(events)
    assert [o.id for o in first] == [o.id for o in again]
    assert all(o.causationid in {e.id for e in events} for o in first)


# --- invariants -------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c) / 100)


@st.composite
def order_histories(draw: st.DrawFn) -> list[CloudEvent]:
    total = draw(amounts)
    history: list[CloudEvent] = [order_placed("ORD-1", str(total))]
    for n in range(draw(st.integers(0, 4))):
        currency = draw(st.sampled_from(["CNY", "CNY", "CNY", "USD"]))
        history.append(payment_captured(f"p{n}", "ORD-1", str(draw(amounts)), currency=currency))
    if draw(st.booleans()):
        history.append(
            event("order.amended", {"order_id": "ORD-1", "total_amount": str(draw(amounts))})
        )
    if draw(st.integers(0, 5)) == 0:
        history.append(event("order.cancelled", {"order_id": "ORD-1"}))
    return history


@settings(max_examples=300, deadline=None)
@given(data=st.data(), history=order_histories())
def test_any_arrival_order_and_duplication_gives_the_same_final_state(
    data: st.DataObject, history: list[CloudEvent]
) -> None:
    reference, _ = fold(history)
    shuffled = data.draw(st.permutations(history))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(history), max_size=3))
    other, _ = fold(duplicated)
    assert state(other) == state(reference)
    assert other.open_mismatches == reference.open_mismatches


@settings(max_examples=300, deadline=None)
@given(history=order_histories())
def test_money_is_conserved_to_the_cent(history: list[CloudEvent]) -> None:
    ledger, outputs = fold(history)
    now = state(ledger)
    assert now.receivable == now.paid + now.open_balance + now.written_off
    for output in outputs:
        for value in output.data.model_dump().values():
            assert not isinstance(value, float)
