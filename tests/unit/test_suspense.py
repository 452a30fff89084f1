from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.suspense import (
    Suspense,
    SuspenseRules,
    apply,
    dump_state,
    load_state,
    new_suspense,
)
from tests.factories import T0, event, unique

RULES = SuspenseRules()
DAY0 = T0.date()


def balance(order_id: str, open_amount: str, status: str = "open", **envelope: Any) -> CloudEvent:
    return event(
        "balance.changed",
        {"order_id": order_id, "customer_id": "C-1", "currency": "CNY",
         "receivable": open_amount, "paid": "0", "refunded": "0", "settled": "0",
         "open_balance": open_amount, "status": status,
         "due_date": (DAY0 + timedelta(days=30)).isoformat()},
        **envelope,
    )  # fmt: skip


def line(amount: str, line_id: str | None = None, booked: date = DAY0) -> CloudEvent:
    return event(
        "bank_line.booked",
        {"line_id": line_id or unique("L"), "account_id": "ACC", "booking_date": booked.isoformat(),
         "amount": amount, "currency": "CNY"},
    )  # fmt: skip


def fold(
    events: Sequence[CloudEvent], state: Suspense | None = None
) -> tuple[Suspense, list[CloudEvent]]:
    state = state or new_suspense("C-1")
    outputs: list[CloudEvent] = []
    for e in events:
        state, out = apply(state, e, RULES)
        outputs += out
    return state, outputs


def applied(outputs: Sequence[CloudEvent]) -> dict[str, Decimal]:
    return {o.data.order_id: o.data.amount for o in outputs if isinstance(o, ev.PaymentApplied)}


def detected(outputs: Sequence[CloudEvent]) -> list[ev.MismatchDetected]:
    return [o for o in outputs if isinstance(o, ev.MismatchDetected)]


def test_line_with_one_exact_open_item_is_applied_to_its_order() -> None:
    state, out = fold([balance("ORD-1", "100.00"), balance("ORD-2", "60.00"), line("60.00")])
    (application,) = [o for o in out if isinstance(o, ev.PaymentApplied)]
    assert (application.data.order_id, application.data.method) == ("ORD-2", "exact_amount")
    assert application.partition_key() == "ORD-2"
    assert state.lines == ()


def test_line_within_tolerance_applies_the_line_amount_and_leaves_the_rest_to_the_ledger() -> None:
    _, out = fold([balance("ORD-1", "100.00"), line("99.50")])
    assert applied(out) == {"ORD-1": Decimal("99.50")}


def test_line_paying_several_invoices_is_applied_to_each_order() -> None:
    items = [balance(f"ORD-{n}", a) for n, a in enumerate(["120.00", "75.50", "310.00", "999.00"])]
    _, out = fold([*items, line("505.50")])
    assert applied(out) == {"ORD-0": Decimal("120.00"), "ORD-1": Decimal("75.50"),
                            "ORD-2": Decimal("310.00")}  # fmt: skip
    assert {o.data.method for o in out if isinstance(o, ev.PaymentApplied)} == {"combination"}


def test_two_equal_open_items_make_the_line_ambiguous_with_ranked_suggestions() -> None:
    bank = line("80.00")
    state, out = fold([balance("ORD-1", "80.00"), balance("ORD-2", "80.00"), bank])
    assert applied(out) == {}
    (mismatch,) = detected(out)
    assert mismatch.data.reason.value == "AMBIGUOUS_BANK_LINE"
    assert mismatch.data.line_id == bank.data.line_id  # type: ignore[attr-defined]
    assert [s.order_ids for s in mismatch.data.suggestions] == [("ORD-1",), ("ORD-2",)]
    assert len(state.lines) == 1


def test_line_without_candidates_is_unmatched_until_an_open_item_fits() -> None:
    bank = line("42.00")
    state, out = fold([balance("ORD-1", "100.00"), bank])
    (mismatch,) = detected(out)
    assert mismatch.data.reason.value == "UNMATCHED_BANK_LINE"
    state, out = fold([balance("ORD-2", "42.00")], state)
    assert applied(out) == {"ORD-2": Decimal("42.00")}
    (resolution,) = [o for o in out if isinstance(o, ev.MismatchResolved)]
    assert resolution.data.mismatch_id == mismatch.data.mismatch_id
    assert resolution.data.resolution == "auto"
    assert resolution.partition_key() == mismatch.partition_key()


def test_ambiguity_clears_when_one_of_the_rivals_is_paid() -> None:
    state, out = fold([balance("ORD-1", "80.00"), balance("ORD-2", "80.00"), line("80.00")])
    state, out = fold([balance("ORD-1", "0", status="paid")], state)
    assert applied(out) == {"ORD-2": Decimal("80.00")}
    assert [o.data.reason for o in out if isinstance(o, ev.MismatchResolved)] == [
        ev.ReasonCode.AMBIGUOUS_BANK_LINE
    ]


def test_money_applied_but_not_yet_reported_is_not_applied_twice() -> None:
    state, out = fold([balance("ORD-1", "50.00"), line("50.00")])
    (first,) = [o for o in out if isinstance(o, ev.PaymentApplied)]
    # A second line of the same amount arrives before the ledger reported the first.
    state, out = fold([line("50.00")], state)
    assert applied(out) == {}
    # The ledger's balance.changed caused by the application releases the hold.
    state, out = fold([balance("ORD-1", "0", status="settled", causationid=first.id)], state)
    assert state.pending == ()
    assert applied(out) == {}


def test_redelivered_and_resent_lines_change_nothing() -> None:
    bank = line("50.00", "L-1")
    state, _ = fold([balance("ORD-1", "50.00"), bank])
    again, out = fold([bank], state)
    assert (again, out) == (state, [])
    resend = line("50.00", "L-1")  # same line id, another event id
    _, out = fold([resend], state)
    assert applied(out) == {}


def test_outputs_carry_causation_and_ids_derived_from_it() -> None:
    events = [balance("ORD-1", "50.00", id="b-1"), line("50.00", "L-9")]
    _, first = fold(events)
    _, second = fold(events)
    assert [o.id for o in first] == [o.id for o in second]
    assert all(o.causationid == events[1].id for o in first)


# Open items whose amounts are distinct powers of two (in whole CNY): every set of them has
# its own sum, so whatever arrives first a line never has two answers.
@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    count=st.integers(min_value=1, max_value=8),
)
def test_arrival_order_of_open_items_and_line_does_not_change_the_application(
    data: st.DataObject, count: int
) -> None:
    amounts = [Decimal(2**n) for n in range(count)]
    chosen = data.draw(st.sets(st.integers(0, count - 1), min_size=1), label="paid items")
    items = [balance(f"ORD-{n}", f"{a:.2f}") for n, a in enumerate(amounts)]
    bank = line(f"{sum(amounts[n] for n in chosen):.2f}", "L-1")
    arrival = data.draw(st.permutations([*items, bank]), label="arrival")
    state, out = fold(arrival)
    assert applied(out) == {f"ORD-{n}": amounts[n] for n in chosen}
    assert state.lines == ()
    assert state.open_mismatches == ()


def test_balance_that_changes_no_open_item_returns_the_same_state_so_nothing_is_written() -> None:
    state = new_suspense("C-1")

    after_paid, outputs = apply(state, balance("O-1", "0", status="paid"), RULES)
    assert after_paid is state
    assert outputs == []

    with_item, _ = apply(state, balance("O-2", "40.00"), RULES)
    again, _ = apply(with_item, balance("O-2", "40.00"), RULES)
    assert with_item is not state
    assert again is with_item


# Written by suspense/1: two equal open items, a line of 80.00 (ambiguous) and one of 5.00.
SUSPENSE_1 = (
    b'suspense/1\n{"customer_id":"C-1","items":[{"order_id":"O-1","currency":"CNY",'
    b'"open_amount":"80.00","due_date":"2026-12-02"},{"order_id":"O-2","currency":"CNY",'
    b'"open_amount":"80.00","due_date":"2026-12-02"}],"lines":[{"event_id":"84129353-cc11-4a07-'
    b'9c69-9b76ae4b72f5","line_id":"L-1","amount":"80.00","currency":"CNY","booking_date":'
    b'"2026-11-02","payer_confidence":"1"},{"event_id":"76993df6-3ec7-4c09-a511-14ebe89f22da",'
    b'"line_id":"L-2","amount":"5.00","currency":"CNY","booking_date":"2026-11-02",'
    b'"payer_confidence":"1"}],"pending":[],"applied_lines":[],"applied_event_ids":["84129353-'
    b'cc11-4a07-9c69-9b76ae4b72f5","76993df6-3ec7-4c09-a511-14ebe89f22da"],"open_mismatches":'
    b'[{"mismatch_id":"4af665ef-319e-559c-98d1-997a39d32bea","reason":"UNMATCHED_BANK_LINE",'
    b'"payout_id":null,"line_id":"L-2","customer_id":"C-1"},{"mismatch_id":"964b186c-5350-54c0-'
    b'b39a-913df8cfa447","reason":"AMBIGUOUS_BANK_LINE","payout_id":null,"line_id":"L-1",'
    b'"customer_id":"C-1"}]}'
)


def test_state_of_the_previous_format_still_loads_and_settles_as_before() -> None:
    from services.domain.suspense import STATE_FORMAT, dump_state, load_state

    state = load_state(SUSPENSE_1)
    assert list(state.items) == ["O-1", "O-2"]
    assert [x.line_id for x in state.lines] == ["L-1", "L-2"]
    assert len(state.open_mismatches) == 2
    rewritten = dump_state(state)
    assert rewritten.startswith(STATE_FORMAT)
    assert load_state(rewritten) == state
    assert len(rewritten) < len(SUSPENSE_1)
    # O-2 is paid: the 80.00 line now has one candidate, and is applied to O-1.
    after, outputs = apply(state, balance("O-2", "0", status="paid"), RULES)
    assert applied(outputs) == {"O-1": Decimal("80.00")}
    assert [x.line_id for x in after.lines] == ["L-2"]


def test_a_balance_costs_the_same_whatever_the_customer_holds_and_shares_nothing() -> None:
    """An update leaves the earlier state as it was (the map is copied, never changed)."""
    state, _ = fold([balance(f"O-{n}", "10.00") for n in range(300)])
    before = dict(state.items)
    later, _ = fold([balance("O-7", "4.00"), balance("O-8", "0", status="paid")], state)
    assert dict(state.items) == before
    assert later.items["O-7"].open_amount == Decimal("4.00")
    assert "O-8" not in later.items
    assert len(later.items) == 299


# --- lines a person applied (the workbench's "apply suggestion") ---------------------------


def by_hand(line_id: str, order_id: str, amount: str, **envelope: Any) -> CloudEvent:
    """A manual payment.applied as services/manual_actions.py publishes it."""
    return event(
        "payment.applied",
        {"line_id": line_id, "order_id": order_id, "amount": amount, "currency": "CNY",
         "method": "manual", "confidence": "1", "by": "alice", "customer_id": "C-1"},
        **envelope,
    )  # fmt: skip


def ambiguous_line(line_id: str = "L-1") -> tuple[Suspense, ev.MismatchDetected]:
    items = [balance("ORD-1", "80.00"), balance("ORD-2", "80.00")]
    state, out = fold([*items, line("80.00", line_id)])
    (mismatch,) = detected(out)
    assert mismatch.data.reason is ev.ReasonCode.AMBIGUOUS_BANK_LINE
    return state, mismatch


def test_a_line_applied_by_hand_leaves_suspense_without_a_resolution_of_ours() -> None:
    state, _ = ambiguous_line()
    state, out = fold([by_hand("L-1", "ORD-1", "80.00", id="m-1")], state)
    assert out == []  # the person's mismatch.resolved is the resolution
    assert state.lines == ()
    assert state.open_mismatches == ()
    assert "L-1" in state.applied_lines


def test_a_line_applied_by_hand_is_not_applied_again_when_it_would_match_uniquely() -> None:
    state, _ = ambiguous_line()
    manual = by_hand("L-1", "ORD-1", "80.00")
    state, _ = fold([manual], state)
    # The ledger reports ORD-1 paid: ORD-2 alone would now match the line, were it held.
    state, out = fold([balance("ORD-1", "0", status="paid", causationid=manual.id)], state)
    assert applied(out) == {}
    assert [o for o in out if isinstance(o, ev.MismatchResolved | ev.MismatchDetected)] == []
    # Nor later, when another open item of the line's amount arrives.
    _, out = fold([balance("ORD-3", "80.00")], state)
    assert (applied(out), out) == ({}, [])


def test_money_applied_by_hand_is_held_against_its_order_until_the_ledger_reports_it() -> None:
    state, _ = ambiguous_line()
    manual = by_hand("L-1", "ORD-1", "80.00")
    state, _ = fold([manual], state)
    # A second line of 80.00 before the ledger reported: ORD-1 is taken, so ORD-2 it is.
    state, out = fold([line("80.00", "L-2")], state)
    assert applied(out) == {"ORD-2": Decimal("80.00")}
    state, out = fold([balance("ORD-1", "0", status="paid", causationid=manual.id)], state)
    assert [p.order_id for p in state.pending] == ["ORD-2"]
    assert out == []


def test_a_redelivered_manual_application_changes_nothing() -> None:
    state, _ = ambiguous_line()
    manual = by_hand("L-1", "ORD-1", "80.00")
    state, _ = fold([manual], state)
    again, out = fold([manual], state)
    assert (again, out) == (state, [])
    assert len(again.pending) == 1


def test_a_line_applied_by_hand_to_a_combination_holds_each_order_its_part() -> None:
    # 100 + 200 and 150 + 150 both pay the line to the cent: two answers.
    amounts = {"ORD-1": "100.00", "ORD-2": "200.00", "ORD-3": "150.00", "ORD-4": "150.00"}
    items = [balance(order_id, amount) for order_id, amount in amounts.items()]
    state, out = fold([*items, line("300.00", "L-1")])
    (mismatch,) = detected(out)
    assert mismatch.data.reason is ev.ReasonCode.AMBIGUOUS_BANK_LINE
    first, second = by_hand("L-1", "ORD-1", "100.00"), by_hand("L-1", "ORD-2", "200.00")
    state, out = fold([first, second], state)
    assert out == []
    assert {(p.order_id, p.amount) for p in state.pending} == {
        ("ORD-1", Decimal("100.00")),
        ("ORD-2", Decimal("200.00")),
    }
    state, out = fold(
        [
            balance("ORD-1", "0", status="paid", causationid=first.id),
            balance("ORD-2", "0", status="paid", causationid=second.id),
        ],
        state,
    )
    # ORD-3 and ORD-4 alone would now pay the line: it is not taken again.
    assert (state.pending, out) == ((), [])


def test_a_manual_application_before_its_line_keeps_the_line_out_of_suspense() -> None:
    state, out = fold([balance("ORD-1", "80.00"), by_hand("L-1", "ORD-1", "80.00")])
    assert out == []
    state, out = fold([balance("ORD-2", "80.00"), line("80.00", "L-1")], state)
    assert (applied(out), detected(out)) == ({}, [])
    assert state.lines == ()


def test_applications_other_than_manual_ones_change_nothing() -> None:
    state, _ = ambiguous_line()
    automatic = event(
        "payment.applied",
        {"line_id": "L-1", "order_id": "ORD-1", "amount": "80.00", "currency": "CNY",
         "method": "exact_amount", "confidence": "1"},
    )  # fmt: skip
    after, out = fold([automatic], state)
    assert after is state
    assert out == []


def test_a_state_holding_a_manual_application_survives_storage() -> None:
    state, _ = ambiguous_line()
    state, _ = fold([by_hand("L-1", "ORD-1", "80.00")], state)
    assert load_state(dump_state(state)) == state
