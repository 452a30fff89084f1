from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.assessment import assess
from services.domain.ledger import Assessment, Ledger, dump_state, load_state, new_ledger
from services.domain.matching import apply
from services.domain.policy import Policy
from tests.factories import T0, event, order_placed, payment_captured

POLICY = Policy()
DAY0 = T0.date()


def fold(
    events: Sequence[CloudEvent], key: str = "ORD-1", policy: Policy = POLICY
) -> tuple[Ledger, list[CloudEvent]]:
    """Apply events in order as the worker does, keeping the business day it would keep."""
    ledger, outputs, today = new_ledger(key), list[CloudEvent](), None
    for e in events:
        ledger, out = apply(ledger, e, policy, today)
        if isinstance(e, ev.DayClosed):
            today = e.data.date if today is None else max(today, e.data.date)
        outputs.extend(out)
    return ledger, outputs


def state(ledger: Ledger, policy: Policy = POLICY) -> Assessment:
    now = assess(ledger, policy)
    assert now is not None
    return now


def kinds(outputs: Sequence[CloudEvent]) -> list[str]:
    return [o.type.removeprefix("o2c.").removesuffix(".v1") for o in outputs]


def detected(outputs: Sequence[CloudEvent]) -> list[str]:
    return [o.data.reason for o in outputs if isinstance(o, ev.MismatchDetected)]


def open_reasons(ledger: Ledger) -> list[str]:
    return sorted(m.reason for m in ledger.open_mismatches)


def day_closed(day: date) -> CloudEvent:
    return event("day.closed", {"date": day.isoformat()}, id=f"day-{day.isoformat()}")


def invoice(amount: str, due: date, invoice_id: str = "INV-1", currency: str = "CNY") -> CloudEvent:
    return event(
        "invoice.issued",
        {
            "invoice_id": invoice_id,
            "order_id": "ORD-1",
            "customer_id": "C-1",
            "amount": amount,
            "currency": currency,
            "issued_at": T0.isoformat(),
            "due_date": due.isoformat(),
        },
    )


def refund(amount: str, refund_id: str = "r1") -> CloudEvent:
    return event(
        "refund.issued",
        {
            "refund_id": refund_id,
            "order_id": "ORD-1",
            "amount": amount,
            "currency": "CNY",
            "issued_at": T0.isoformat(),
        },
    )


def chargeback_opened(amount: str, payment_id: str = "p1") -> CloudEvent:
    return event(
        "chargeback.opened",
        {
            "chargeback_id": "cb1",
            "payment_id": payment_id,
            "order_id": "ORD-1",
            "amount": amount,
            "currency": "CNY",
            "opened_at": T0.isoformat(),
        },
    )


def chargeback_resolved(outcome: str) -> CloudEvent:
    return event(
        "chargeback.resolved", {"chargeback_id": "cb1", "order_id": "ORD-1", "outcome": outcome}
    )


def settled(payment_id: str, amount: str) -> CloudEvent:
    return event(
        "payment.settled",
        {
            "payment_id": payment_id,
            "order_id": "ORD-1",
            "payout_id": "po-1",
            "line_id": "L-1",
            "amount": amount,
            "currency": "CNY",
        },
    )


def applied(line_id: str, amount: str) -> CloudEvent:
    return event(
        "payment.applied",
        {
            "line_id": line_id,
            "order_id": "ORD-1",
            "amount": amount,
            "currency": "CNY",
            "method": "reference",
            "confidence": "1",
        },
    )


# --- matching -------------------------------------------------------------------------------


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


def test_invoice_before_its_order_still_reports_the_balance_when_the_order_arrives() -> None:
    _, outputs = fold(
        [invoice("100.00", DAY0 + timedelta(days=30)), order_placed("ORD-1", "100.00")]
    )
    assert [o.type for o in outputs if isinstance(o, ev.BalanceChanged)] == [
        "o2c.balance.changed.v1"
    ]


def test_redelivered_event_changes_nothing() -> None:
    pay = payment_captured("p1", "ORD-1", "40.00")
    once, _ = fold([order_placed("ORD-1", "100.00"), pay])
    twice, outputs = apply(once, pay, POLICY, None)
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


def test_invoices_minus_credit_notes_replace_the_order_total_as_receivable() -> None:
    note = event(
        "credit_note.issued",
        {
            "credit_note_id": "CN-1",
            "invoice_id": "INV-1",
            "order_id": "ORD-1",
            "amount": "20.00",
            "currency": "CNY",
            "issued_at": T0.isoformat(),
        },
    )
    ledger, _ = fold([order_placed("ORD-1", "100.00"), invoice("100.00", DAY0), note])
    assert state(ledger).receivable == Decimal("80.00")
    assert open_reasons(ledger) == ["INVOICE_ORDER_MISMATCH"]


def test_settled_payments_make_a_matched_order_settled() -> None:
    ledger, _ = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "100.00"),
            settled("p1", "100.00"),
        ]
    )
    assert state(ledger).status == "settled"
    assert state(ledger).settled == Decimal("100.00")


def test_bank_line_applied_to_an_order_counts_as_paid_and_settled() -> None:
    ledger, outputs = fold([order_placed("ORD-1", "100.00"), applied("L-9", "100.00")])
    assert "order.matched" in kinds(outputs)
    assert state(ledger).status == "settled"


def test_bank_line_settles_the_bank_transfer_already_captured_instead_of_paying_twice() -> None:
    events = [
        order_placed("ORD-1", "100.00"),
        payment_captured("p1", "ORD-1", "100.00", method="bank_transfer"),
        applied("L-9", "100.00"),
    ]
    for arrival in (events, [events[0], events[2], events[1]]):
        ledger, _ = fold(arrival)
        assert state(ledger).paid == Decimal("100.00")
        assert state(ledger).status == "settled"
        assert open_reasons(ledger) == []


# Tolerance edges. Units are each currency's own: yuan (CNY, 2 decimals), yen (JPY, none),
# dinar (KWD, 3 decimals). The default tolerance is 0.50 of a unit.
@pytest.mark.parametrize(
    ("currency", "total", "paid", "matched", "written_off"),
    [
        ("CNY", "100.00", "100.00", True, "0"),  # exact
        ("CNY", "100.00", "99.50", True, "0.50"),  # short by exactly the tolerance
        ("CNY", "100.00", "99.49", False, "0"),  # one fen beyond it
        ("CNY", "100.00", "100.50", True, "-0.50"),  # over by exactly the tolerance
        ("CNY", "100.00", "100.51", False, "0"),  # one fen beyond it: OVERPAID
        ("JPY", "1000", "1000", True, "0"),  # 0.50 yen tolerates no whole-yen difference
        ("JPY", "1000", "999", False, "0"),
        ("JPY", "1000", "1001", False, "0"),
        ("KWD", "10.000", "9.500", True, "0.500"),  # exactly at tolerance, in fils
        ("KWD", "10.000", "9.499", False, "0"),  # one fils beyond it
        ("KWD", "10.000", "10.501", False, "0"),
    ],
)
def test_tolerance_edges_per_currency(
    currency: str, total: str, paid: str, matched: bool, written_off: str
) -> None:
    ledger, _ = fold(
        [
            order_placed("ORD-1", total, currency=currency),
            payment_captured("p1", "ORD-1", paid, currency=currency),
        ]
    )
    assert state(ledger).matched is matched
    assert state(ledger).written_off == Decimal(written_off)


# A per-currency tolerance of 50 yen: 50 is written off, 51 is not.
@pytest.mark.parametrize(
    ("paid", "matched"), [("950", True), ("949", False), ("1050", True), ("1051", False)]
)
def test_configured_tolerance_for_one_currency(paid: str, matched: bool) -> None:
    policy = Policy(tolerance_by_currency={"JPY": Decimal(50)})
    ledger, _ = fold(
        [
            order_placed("ORD-1", "1000", currency="JPY"),
            payment_captured("p1", "ORD-1", paid, currency="JPY"),
        ],
        policy=policy,
    )
    assert state(ledger, policy).matched is matched


def test_write_off_is_reported_once_with_its_amount() -> None:
    _, outputs = fold([order_placed("ORD-1", "100.00"), payment_captured("p1", "ORD-1", "99.70")])
    writeoffs = [o for o in outputs if isinstance(o, ev.WriteoffApplied)]
    assert [w.data.amount for w in writeoffs] == [Decimal("0.30")]


# --- every reason code ------------------------------------------------------------------------


def test_second_capture_of_the_same_amount_is_a_duplicate_payment() -> None:
    _, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "100.00"),
            payment_captured("p2", "ORD-1", "100.00"),
        ]
    )
    assert detected(outputs) == ["DUPLICATE_PAYMENT"]


def test_payment_above_the_total_is_overpaid_until_an_amendment_explains_it() -> None:
    ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "120.00"),
            event("order.amended", {"order_id": "ORD-1", "total_amount": "120.00"}),
        ]
    )
    assert detected(outputs) == ["OVERPAID"]
    assert "mismatch.resolved" in kinds(outputs)
    assert ledger.open_mismatches == ()
    assert state(ledger).matched


def test_partly_paid_order_past_its_due_date_is_underpaid() -> None:
    due = DAY0 + timedelta(days=30)
    ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00", payment_terms_days=30),
            payment_captured("p1", "ORD-1", "60.00", method="voucher"),
            day_closed(due - timedelta(days=1)),
        ]
    )
    assert detected(outputs) == []
    ledger, out = apply(ledger, day_closed(due), POLICY, due - timedelta(days=1))
    assert detected(out) == ["UNDERPAID"]
    ledger, out = apply(
        ledger, payment_captured("p2", "ORD-1", "40.00", method="voucher"), POLICY, due
    )
    assert "mismatch.resolved" in kinds(out)
    assert state(ledger).matched


def test_order_paid_on_its_due_date_is_not_underpaid() -> None:
    _ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "60.00", method="voucher"),
            payment_captured("p2", "ORD-1", "40.00", method="voucher"),
            day_closed(DAY0),
        ]
    )
    assert detected(outputs) == []


def test_unpaid_order_past_due_is_overdue_not_a_mismatch() -> None:
    _ledger, outputs = fold([order_placed("ORD-1", "100.00"), day_closed(DAY0 + timedelta(days=5))])
    assert detected(outputs) == []


def test_payment_in_another_currency_is_a_currency_mismatch_and_not_counted() -> None:
    ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "14.00", currency="USD"),
        ]
    )
    assert detected(outputs) == ["CURRENCY_MISMATCH"]
    assert state(ledger).paid == 0


def test_payment_whose_order_does_not_arrive_by_the_next_business_day() -> None:
    ledger, outputs = fold([payment_captured("p9", None, "50.00"), day_closed(DAY0)], key="p9")
    assert detected(outputs) == []
    ledger, out = apply(ledger, day_closed(DAY0 + timedelta(days=1)), POLICY, DAY0)
    (mismatch,) = [o for o in out if isinstance(o, ev.MismatchDetected)]
    assert mismatch.data.reason == "PAYMENT_WITHOUT_ORDER"
    assert mismatch.data.payment_id == "p9"
    assert mismatch.data.order_id is None
    assert mismatch.partition_key() == "p9"


def test_payment_on_a_cancelled_order_until_refunded() -> None:
    ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            event("order.cancelled", {"order_id": "ORD-1"}),
            payment_captured("p1", "ORD-1", "100.00"),
        ]
    )
    assert detected(outputs) == ["PAYMENT_ON_CANCELLED_ORDER"]
    ledger, out = apply(ledger, refund("100.00"), POLICY, None)
    assert "mismatch.resolved" in kinds(out)
    assert ledger.open_mismatches == ()


def test_refund_beyond_what_was_paid() -> None:
    _, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "100.00"),
            refund("60.00", "r1"),
            refund("60.00", "r2"),
        ]
    )
    assert "REFUND_EXCEEDS_PAID" in detected(outputs)


def test_open_chargeback_is_a_mismatch_until_resolved_and_a_lost_one_reduces_paid() -> None:
    ledger, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "100.00"),
            chargeback_opened("100.00"),
        ]
    )
    assert detected(outputs) == ["CHARGEBACK"]
    assert state(ledger).paid == Decimal("100.00")
    lost, out = apply(ledger, chargeback_resolved("lost"), POLICY, None)
    assert "mismatch.resolved" in kinds(out)
    assert state(lost).paid == 0
    won, _ = apply(ledger, chargeback_resolved("won"), POLICY, None)
    assert state(won).paid == Decimal("100.00")
    assert won.open_mismatches == ()


def test_card_payment_not_in_a_payout_after_its_settlement_days() -> None:
    base = [
        order_placed("ORD-1", "100.00"),
        payment_captured("p1", "ORD-1", "100.00", method="card"),
    ]
    _, early = fold([*base, day_closed(DAY0 + timedelta(days=1))])
    assert "PAYMENT_NOT_SETTLED" not in detected(early)
    ledger, late = fold([*base, day_closed(DAY0 + timedelta(days=2))])
    assert "PAYMENT_NOT_SETTLED" in detected(late)
    ledger, out = apply(ledger, settled("p1", "100.00"), POLICY, DAY0 + timedelta(days=2))
    assert "mismatch.resolved" in kinds(out)


def test_vouchers_and_bank_transfers_are_not_expected_in_payouts() -> None:
    _, outputs = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "50.00", method="voucher"),
            payment_captured("p2", "ORD-1", "50.00", method="bank_transfer"),
            day_closed(DAY0 + timedelta(days=10)),
        ]
    )
    assert "PAYMENT_NOT_SETTLED" not in detected(outputs)


def test_invoices_that_differ_from_the_order_total() -> None:
    ledger, outputs = fold([order_placed("ORD-1", "100.00"), invoice("90.00", DAY0)])
    assert detected(outputs) == ["INVOICE_ORDER_MISMATCH"]
    ledger, out = apply(
        ledger, event("order.amended", {"order_id": "ORD-1", "total_amount": "90.00"}), POLICY, None
    )
    assert "mismatch.resolved" in kinds(out)


def test_mismatch_ids_and_output_ids_are_derived_from_their_causes() -> None:
    events = [order_placed("ORD-1", "100.00"), payment_captured("p1", "ORD-1", "150.00")]
    _, first = fold(events)
    _, again = fold(events)
    assert [o.id for o in first] == [o.id for o in again]
    assert all(o.causationid in {e.id for e in events} for o in first)


def test_ledger_state_survives_storage_unchanged() -> None:
    ledger, _ = fold(
        [
            order_placed("ORD-1", "100.00"),
            payment_captured("p1", "ORD-1", "150.00"),
            invoice("100.00", DAY0),
            chargeback_opened("10.00"),
            day_closed(DAY0),
        ]
    )
    assert load_state(dump_state(ledger)) == ledger


def test_state_of_another_format_is_refused_with_what_to_do() -> None:
    from services.domain.ledger import StateFormatError

    with pytest.raises(StateFormatError, match="new O2C_APP_ID"):
        load_state(b'{"order_id": "ORD-1"}')


def test_stored_ledger_is_the_same_bytes_in_every_process() -> None:
    """Set iteration order follows the process's string-hash salt; stored state must not."""
    import subprocess
    import sys

    program = (
        "from tests.unit.test_ledger import fold; from tests.factories import *; "
        "from services.domain.ledger import dump_state; import sys; "
        "ledger, _ = fold([order_placed('ORD-1', '100.00').model_copy(update={'id': 'o'})] + "
        "[payment_captured(f'p{n}', 'ORD-1', '1.00').model_copy(update={'id': f'e{n}'}) "
        "for n in range(20)]); "
        "sys.stdout.buffer.write(dump_state(ledger))"
    )
    stored = {
        subprocess.run(
            [sys.executable, "-c", program],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(stored) == 1


# Written by the version before ledger/4 (bench/golden.py's throughput stream, ORD-00003).
LEDGER_3 = (
    b'ledger/3\nt{"key":"ORD-00003","order":{"event_id":"8ad93bab-9346-50b3-9868-97083d3fd3c4",'
    b'"customer_id":"CUST-003","channel":"pos","region":null,"currency":"CNY","total":"800.88",'
    b'"placed_at":"2026-11-02T09:21:00Z","terms_days":0},"amendments":[],"cancellation":null,'
    b'"invoices":[],"credit_notes":[],"captures":[{"event_id":"98e71dfc-1b21-5d3f-abe2-'
    b'20826e81496d","payment_id":"pay-00003","method":"card","amount":"800.88","currency":"CNY",'
    b'"fee":null,"captured_at":"2026-11-02T09:23:00Z","customer_id":null},{"event_id":"b8b95ebe-'
    b'32b6-5869-8002-c24acca0dbf2","payment_id":"pay-00003-b","method":"card","amount":"800.88",'
    b'"currency":"CNY","fee":null,"captured_at":"2026-11-02T09:24:00Z","customer_id":null}],'
    b'"reversals":[],"refunds":[],"chargebacks":[],"chargeback_outcomes":[],"settlements":[],'
    b'"applications":[],"applied_event_ids":["8ad93bab-9346-50b3-9868-97083d3fd3c4","98e71dfc-'
    b'1b21-5d3f-abe2-20826e81496d","b8b95ebe-32b6-5869-8002-c24acca0dbf2"],"reported":{"currency"'
    b':"CNY","receivable":"800.88","paid":"1601.76","refunded":"0","settled":"0","written_off":'
    b'"0","open_balance":"-800.88","matched":false,"status":"overpaid","due_date":"2026-11-02"},'
    b'"open_mismatches":[{"mismatch_id":"9d446bcc-3474-5406-b552-581d61c889a6","reason":'
    b'"DUPLICATE_PAYMENT","discriminator":"pay-00003-b"}]}'
)


def test_a_ledger_stored_in_the_previous_format_still_loads() -> None:
    from services.domain.ledger import STATE_FORMAT, stored_time_driven

    ledger = load_state(LEDGER_3)
    assert ledger.key == "ORD-00003"
    assert [c.payment_id for c in ledger.captures] == ["pay-00003", "pay-00003-b"]
    assert ledger.reported is not None
    assert ledger.reported.open_balance == Decimal("-800.88")
    assert len(ledger.applied_event_ids) == 3
    assert stored_time_driven(LEDGER_3)
    rewritten = dump_state(ledger)
    assert rewritten.startswith(STATE_FORMAT)
    assert load_state(rewritten) == ledger
    assert len(rewritten) < len(LEDGER_3) / 2


def test_stored_ledger_keeps_every_decimal_and_offset_exactly() -> None:
    """1.50 is not 1.5 on the wire, and 00:30+01:00 is on another day than 23:30Z."""
    from datetime import timedelta, timezone

    placed = datetime(2026, 11, 3, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    ledger, _ = fold(
        [
            order_placed("ORD-1", "100.50", at=placed),
            payment_captured("p1", "ORD-1", "100.5"),
        ]
    )
    again = load_state(dump_state(ledger))
    assert again.order is not None
    assert ledger.order is not None
    assert str(again.order.total) == str(ledger.order.total) == "100.50"
    assert str(again.captures[0].amount) == "100.5"
    assert again.order.placed_at.utcoffset() == timedelta(hours=1)
    assert again.order.placed_at.date() == placed.date()
    assert again == ledger
