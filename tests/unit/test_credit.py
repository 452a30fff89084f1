"""The credit core: exposure per customer and the events at each crossing of the limit."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.credit import (
    CreditState,
    apply,
    dump_state,
    exposure,
    load_state,
    new_state,
)
from tests.factories import event

CUSTOMER = "C-7"


def customer(limit: str | None, currency: str = "CNY") -> CloudEvent:
    data: dict[str, Any] = {"customer_id": CUSTOMER, "name": "Acme"}
    if limit is not None:
        data |= {"credit_limit": limit, "currency": currency}
    return event("customer.upserted", data)


def balance(
    order_id: str, open_balance: str, status: str = "open", currency: str = "CNY"
) -> CloudEvent:
    return event(
        "balance.changed",
        {
            "order_id": order_id,
            "customer_id": CUSTOMER,
            "currency": currency,
            "receivable": open_balance,
            "paid": "0",
            "refunded": "0",
            "settled": "0",
            "open_balance": open_balance,
            "status": status,
        },
    )


def run(*events: CloudEvent) -> tuple[CreditState, list[CloudEvent]]:
    state = new_state(CUSTOMER)
    outputs: list[CloudEvent] = []
    for e in events:
        state, out = apply(state, e)
        outputs.extend(out)
    return state, outputs


# Limit 1000.00 CNY; exposure in CNY after one order's balance. Unit: currency units.
@pytest.mark.parametrize(
    ("open_balance", "breached"),
    [
        ("999.99", False),  # one cent below the limit
        ("1000.00", False),  # exactly at the limit is not above it
        ("1000.01", True),  # one cent above: the crossing
    ],
)
def test_breach_is_emitted_only_above_the_limit(open_balance: str, breached: bool) -> None:
    _state, outputs = run(customer("1000.00"), balance("O-1", open_balance))
    assert [type(o) for o in outputs] == ([ev.CreditLimitBreached] if breached else [])


def test_breach_then_restore_exactly_at_each_crossing() -> None:
    _state, outputs = run(
        customer("1000.00"),
        balance("O-1", "600.00"),
        balance("O-2", "400.00"),  # 1000.00: at the limit, no breach
        balance("O-2", "400.01"),  # 1000.01: breached
        balance("O-3", "50.00"),  # still above: nothing new
        balance("O-1", "0.00", status="paid"),  # 450.01: restored
        balance("O-1", "0.00", status="paid"),  # a repeated snapshot: nothing
    )
    assert [type(o).__name__ for o in outputs] == ["CreditLimitBreached", "CreditLimitRestored"]
    breached, restored = outputs
    assert isinstance(breached, ev.CreditLimitBreached)
    assert breached.data.exposure == Decimal("1000.01")
    assert isinstance(restored, ev.CreditLimitRestored)
    assert restored.data.exposure == Decimal("450.01")


def test_limit_lowered_below_exposure_breaches_and_raised_restores() -> None:
    _state, outputs = run(
        customer("1000.00"), balance("O-1", "800.00"), customer("500.00"), customer("900.00")
    )
    assert [type(o).__name__ for o in outputs] == ["CreditLimitBreached", "CreditLimitRestored"]


def test_cancelled_orders_and_other_currencies_do_not_count() -> None:
    state, outputs = run(
        customer("100.00"),
        balance("O-1", "500.00", status="cancelled"),
        balance("O-2", "500.00", currency="USD"),
    )
    assert exposure(state) == 0
    assert outputs == []


def test_redelivered_event_changes_nothing_and_ids_are_deterministic() -> None:
    crossing = balance("O-1", "2000.00")
    state, first = run(customer("1000.00"), crossing)
    again, second = apply(state, crossing)
    assert again is state
    assert second == ()
    _, replayed = run(customer("1000.00"), crossing)
    assert [o.id for o in replayed] == [o.id for o in first]


def test_state_survives_the_table_round_trip() -> None:
    state, _ = run(customer("1000.00"), balance("O-1", "1500.00"))
    assert load_state(dump_state(state)) == state


# Building events validates them with pydantic: slow on a busy machine, so no deadline.
@settings(deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=30))
def test_outputs_alternate_and_end_in_the_state_of_the_last_exposure(amounts: list[int]) -> None:
    # One order whose open balance moves through `amounts` (whole units) against limit 1000.
    events = [customer("1000")] + [balance("O-1", str(a)) for a in amounts]
    state, outputs = run(*events)
    kinds = [type(o) for o in outputs]
    assert all(a is not b for a, b in itertools.pairwise(kinds))
    assert not kinds or kinds[0] is ev.CreditLimitBreached
    assert state.breached == (amounts[-1] > 1000)


# Written by credit/1, which kept every balance.changed id it had applied.
CREDIT_1 = (
    b'credit/1:{"customer_id":"C-7","credit_limit":"1000.00","currency":"CNY",'
    b'"orders":{"O-1":["CNY","1500.00"],"O-2":["USD","3.5"]},"breached":true,'
    b'"applied":["e-customer","e-balance-1","e-balance-2"]}'
)


def test_state_of_the_previous_format_still_loads() -> None:
    state = load_state(CREDIT_1)
    assert state.breached
    assert state.credit_limit == Decimal("1000.00")
    assert dict(state.orders) == {
        "O-1": ("CNY", Decimal("1500.00")),
        "O-2": ("USD", Decimal("3.5")),
    }
    assert exposure(state) == Decimal("1500.00")
    assert load_state(dump_state(state)) == state
    _, outputs = apply(state, balance("O-1", "10.00"))
    assert [type(o) for o in outputs] == [ev.CreditLimitRestored]


def test_the_state_holds_open_orders_only_not_every_balance_ever_applied() -> None:
    events = [customer("1000.00")]
    for n in range(200):
        events += [balance(f"O-{n}", "10.00"), balance(f"O-{n}", "0", status="paid")]
    state, _ = run(*events, balance("O-open", "5.00"))
    assert dict(state.orders) == {"O-open": ("CNY", Decimal("5.00"))}
    assert len(state.applied) == 1  # the customer's record
    assert len(dump_state(state)) < 200


def test_stored_credit_state_is_the_same_bytes_whatever_the_order_of_updates() -> None:
    record, one, two = customer("1000.00"), balance("O-1", "1.00"), balance("O-2", "2.00")
    a, _ = run(record, one, two)
    b, _ = run(record, two, one)
    assert dump_state(a) == dump_state(b)
