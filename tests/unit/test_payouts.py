from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import decode, encode
from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES
from services.domain.payouts import (
    PayoutRules,
    PayoutState,
    apply,
    dump_state,
    load_state,
    new_payout,
)
from tests.factories import T0, event

RULES = PayoutRules(bank_days=2)
DAY0 = T0.date()


def item(
    payment_id: str, order_id: str | None, gross: str, fee: str, kind: str = "charge"
) -> dict[str, Any]:
    found = {"payment_id": payment_id, "kind": kind, "gross": gross, "fee": fee}
    if order_id is not None:
        found["order_id"] = order_id
    return found


ITEMS = [item("p-1", "ORD-1", "100.00", "2.00"), item("p-2", "ORD-2", "50.00", "1.00")]


def report(net: str = "147.00", items: list[dict[str, Any]] = ITEMS, **envelope: Any) -> CloudEvent:
    return event(
        "payout.reported",
        {"payout_id": "po_1", "provider": "stripe", "currency": "CNY", "gross_amount": "150.00",
         "fee_amount": "3.00", "net_amount": net, "payout_date": DAY0.isoformat(), "items": items},
        **envelope,
    )  # fmt: skip


def line(amount: str = "147.00", line_id: str = "L-1", booked: date = DAY0) -> CloudEvent:
    return event(
        "bank_line.booked",
        {"line_id": line_id, "account_id": "ACC", "booking_date": booked.isoformat(),
         "amount": amount, "currency": "CNY", "remittance_info": "po_1"},
    )  # fmt: skip


def closed(day: date) -> CloudEvent:
    return event("day.closed", {"date": day.isoformat()})


def fold(
    events: Sequence[CloudEvent], state: PayoutState | None = None
) -> tuple[PayoutState, list[CloudEvent]]:
    state, today, outputs = state or new_payout("po_1"), None, list[CloudEvent]()
    for e in events:
        state, out = apply(state, e, RULES, today)
        if isinstance(e, ev.DayClosed):
            today = e.data.date if today is None else max(today, e.data.date)
        outputs += out
    return state, outputs


def reasons(outputs: Sequence[CloudEvent]) -> list[str]:
    return [o.data.reason.value for o in outputs if isinstance(o, ev.MismatchDetected)]


@pytest.mark.parametrize("arrival", ["report first", "line first"])
def test_payout_and_its_bank_line_match_and_settle_every_item(arrival: str) -> None:
    events = [report(), line()] if arrival == "report first" else [line(), report()]
    state, out = fold(events)
    matched = [o for o in out if isinstance(o, ev.PayoutMatched)]
    settled = [o for o in out if isinstance(o, ev.PaymentSettled)]
    assert [(m.data.payout_id, m.data.line_id) for m in matched] == [("po_1", "L-1")]
    assert [(s.data.order_id, s.data.amount, s.data.fee) for s in settled] == [
        ("ORD-1", Decimal("100.00"), Decimal("2.00")),
        ("ORD-2", Decimal("50.00"), Decimal("1.00")),
    ]
    assert [s.partition_key() for s in settled] == ["ORD-1", "ORD-2"]
    assert all(o.causationid == events[1].id for o in out)
    assert reasons(out) == []
    assert state.matched_line == "L-1"


def test_item_without_an_order_counts_in_the_totals_but_settles_no_order() -> None:
    items = [*ITEMS[:1], item("p-x", None, "50.00", "1.00")]
    _, out = fold([report(items=items), line()])
    assert [o.data.order_id for o in out if isinstance(o, ev.PaymentSettled)] == ["ORD-1"]
    assert reasons(out) == []


# amounts in CNY; tolerance 0.50
@pytest.mark.parametrize(
    ("net", "bank", "expected"),
    [
        ("147.00", "147.00", []),
        ("147.00", "147.50", []),  # bank at the tolerance edge
        ("147.00", "147.51", ["PAYOUT_AMOUNT_MISMATCH"]),  # bank one cent past it
        ("147.50", "147.50", []),  # items at the tolerance edge of the net
        ("147.51", "147.51", ["PAYOUT_AMOUNT_MISMATCH"]),  # items one cent past it
    ],
)
def test_amount_mismatch_boundaries(net: str, bank: str, expected: list[str]) -> None:
    _, out = fold([report(net), line(bank)])
    assert reasons(out) == expected


def test_items_not_adding_up_are_reported_with_expected_and_actual() -> None:
    _, out = fold([report("140.00"), line("140.00")])
    (mismatch,) = [o for o in out if isinstance(o, ev.MismatchDetected)]
    assert (mismatch.data.expected, mismatch.data.actual) == (Decimal("140.00"), Decimal("147.00"))
    assert mismatch.data.payout_id == "po_1"
    assert mismatch.partition_key() == "po_1"
    # The bank brought the net amount: the payout still matches and settles.
    assert any(isinstance(o, ev.PayoutMatched) for o in out)


def test_bank_line_with_another_amount_does_not_match_and_clears_when_the_right_line_comes() -> (
    None
):
    state, out = fold([report(), line("140.00", "L-1")])
    assert reasons(out) == ["PAYOUT_AMOUNT_MISMATCH"]
    assert not any(isinstance(o, ev.PayoutMatched) for o in out)
    state, out = fold([line("147.00", "L-2")], state)
    assert [o.data.line_id for o in out if isinstance(o, ev.PayoutMatched)] == ["L-2"]
    assert [o.data.reason for o in out if isinstance(o, ev.MismatchResolved)] == [
        ev.ReasonCode.PAYOUT_AMOUNT_MISMATCH
    ]


@pytest.mark.parametrize(
    ("days_closed", "raised"),
    [
        (0, False),  # the payout day itself
        (1, False),
        (2, True),  # two business days after the payout date: bank_days = 2
    ],
)
def test_payout_not_in_bank_after_its_days(days_closed: int, raised: bool) -> None:
    _, out = fold([report(), closed(DAY0 + timedelta(days=days_closed))])
    assert reasons(out) == (["PAYOUT_NOT_IN_BANK"] if raised else [])


def test_payout_not_in_bank_resolves_when_its_line_arrives() -> None:
    state, out = fold([report(), closed(DAY0 + timedelta(days=3))])
    assert reasons(out) == ["PAYOUT_NOT_IN_BANK"]
    state, out = fold([line()], state)
    assert [o.data.reason for o in out if isinstance(o, ev.MismatchResolved)] == [
        ev.ReasonCode.PAYOUT_NOT_IN_BANK
    ]
    assert any(isinstance(o, ev.PaymentSettled) for o in out)


def test_line_naming_a_payout_nobody_reported_is_unmatched_after_the_days_then_resolved() -> None:
    state, out = fold([line(), closed(DAY0 + timedelta(days=2))])
    (mismatch,) = [o for o in out if isinstance(o, ev.MismatchDetected)]
    assert (mismatch.data.reason.value, mismatch.data.line_id) == ("UNMATCHED_BANK_LINE", "L-1")
    state, out = fold([report()], state)
    assert [o.data.mismatch_id for o in out if isinstance(o, ev.MismatchResolved)] == [
        mismatch.data.mismatch_id
    ]


def test_redelivery_and_resend_change_nothing() -> None:
    first = report()
    state, _ = fold([first, line()])
    _, out = fold([first, line()], state)
    assert out == []
    resend, out = fold([report(id="a-resend-with-another-id")], state)
    assert out == []
    assert load_state(dump_state(resend)) == resend


def test_only_charge_items_carry_the_fee_that_fee_mismatch_compares() -> None:
    items = [
        item("p-1", "ORD-1", "100.00", "2.00"),
        item("p-2", "ORD-2", "-40.00", "0", kind="refund"),
        item("p-3", "ORD-3", "-30.00", "0", kind="chargeback"),
        item("p-3", "ORD-3", "30.00", "0", kind="adjustment"),
    ]
    _, out = fold([report(net="58.00", items=items), line("58.00")])
    settled = {
        (o.data.payment_id, o.data.amount): o.data.fee
        for o in out
        if isinstance(o, ev.PaymentSettled)
    }
    assert settled == {
        ("p-1", Decimal("100.00")): Decimal("2.00"),
        ("p-2", Decimal("-40.00")): None,
        ("p-3", Decimal("-30.00")): None,
        ("p-3", Decimal("30.00")): None,
    }


@st.composite
def payout_histories(draw: st.DrawFn) -> list[CloudEvent]:
    """A payout report (items of every kind, with and without orders, fees that may not add
    up), zero or more bank lines and day closes, redeliveries, in any order."""
    kinds = st.sampled_from(["charge", "refund", "chargeback", "adjustment"])
    money = st.decimals(min_value=-500, max_value=500, places=2, allow_nan=False)
    items = [
        item(
            f"p-{n}",
            draw(st.sampled_from([f"ORD-{n}", None])),
            str(draw(money)),
            str(draw(money.filter(lambda d: d >= 0))),
            draw(kinds),
        )
        for n in range(draw(st.integers(min_value=1, max_value=4)))
    ]
    gross = sum(Decimal(i["gross"]) for i in items)
    fees = sum(Decimal(i["fee"]) for i in items)
    net = draw(st.sampled_from([gross - fees, gross - fees + Decimal("0.10"), gross]))
    the_report = event(
        "payout.reported",
        {"payout_id": "po_1", "provider": "stripe", "currency": "CNY",
         "gross_amount": str(gross), "fee_amount": str(fees), "net_amount": str(net),
         "payout_date": DAY0.isoformat(), "items": items},
    )  # fmt: skip
    lines = [
        line(str(draw(st.sampled_from([net, net + 1]))), f"L-{n}")
        for n in range(draw(st.integers(min_value=0, max_value=2)))
    ]
    days = [closed(DAY0 + timedelta(days=d)) for d in draw(st.lists(st.integers(0, 6), max_size=3))]
    history = [the_report, *lines, *days]
    history += draw(st.lists(st.sampled_from(history), max_size=2))  # redelivered
    return draw(st.permutations(history))


@settings(max_examples=300, deadline=None)
@given(history=payout_histories())
def test_every_payout_output_is_a_valid_event_of_the_contract(history: list[CloudEvent]) -> None:
    """Outputs are built without re-running the validators (services/domain/outputs.py);
    this is the check that they would pass them."""
    state, outputs = fold(history)
    for output in outputs:
        assert decode(encode(output), max_bytes=OUTPUT_MAX_MESSAGE_BYTES) == output
    assert load_state(dump_state(state)) == state
