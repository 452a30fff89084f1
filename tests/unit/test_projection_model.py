"""The pure projection: which rows each event becomes, folded per key within a batch."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from projections.model import BALANCE_COLUMNS, OrderPatch, merge, project
from tests.factories import T0, event, order_placed
from tests.projection_support import balance


def test_balance_changes_append_history_and_keep_the_latest_by_offset_as_current() -> None:
    first = balance("O-1", T0, receivable="100.00", due="2026-12-01")
    later = balance("O-1", T0 - timedelta(hours=1), receivable="100.00", paid="30.00")
    changes = project([(later, 8), (first, 5)])  # event time does not order them; offsets do
    assert [row[0] for row in changes.appended["balance_history"]] == [later.id, first.id]
    current = dict(zip(BALANCE_COLUMNS[1:], changes.current_balances["O-1"], strict=True))
    assert current["open_balance"] == Decimal("70.00")
    assert current["pos"] == 8


def test_order_facts_of_one_batch_fold_into_one_patch() -> None:
    placed = order_placed("O-2", "50.00", customer_id="C-9")
    amended = event("order.amended", {"order_id": "O-2", "total_amount": "55.00"})
    cancelled = event("order.cancelled", {"order_id": "O-2"})
    changes = project([(placed, 1), (amended, 2), (cancelled, 3)])
    patch = changes.orders["O-2"]
    assert (patch.customer_id, patch.placed_total, patch.amended_total) == (
        "C-9",
        Decimal("50.00"),
        Decimal("55.00"),
    )
    assert patch.cancelled_at == cancelled.time


def test_an_older_amendment_never_replaces_a_newer_one() -> None:
    newer = OrderPatch("O-3", amended_total=Decimal("9.00"), amended_pos=7)
    older = OrderPatch("O-3", amended_total=Decimal("8.00"), amended_pos=4)
    assert merge(newer, older).amended_total == Decimal("9.00")
    assert merge(older, newer).amended_total == Decimal("9.00")


def test_mismatch_lifecycle_rows_carry_kind_and_owner() -> None:
    detected = event(
        "mismatch.detected",
        {
            "mismatch_id": "M-1",
            "reason": "UNDERPAID",
            "severity": "medium",
            "currency": "CNY",
            "difference": "-5.00",
            "order_id": "O-4",
            "detected_at": T0.isoformat(),
        },
    )
    assigned = event(
        "mismatch.assigned",
        {
            "mismatch_id": "M-1",
            "assignee": "alice",
            "order_id": "O-4",
            "assigned_at": T0.isoformat(),
        },
    )
    resolved = event(
        "mismatch.resolved",
        {"mismatch_id": "M-1", "resolution": "manual", "note": "ok", "order_id": "O-4"},
    )
    rows = project([(detected, 1), (assigned, 2), (resolved, 3)]).appended["mismatch_events"]
    assert [(r[2], r[16], r[17]) for r in rows] == [
        ("detected", None, None),
        ("assigned", "alice", None),
        ("resolved", None, "manual"),
    ]


def test_events_the_read_models_do_not_use_change_nothing() -> None:
    applied = event(
        "payment.applied",
        {
            "payment_id": "P-1",
            "order_id": "O-5",
            "amount": "1.00",
            "currency": "CNY",
            "method": "reference",
            "confidence": "1",
        },
    )
    assert len(project([(applied, 1)])) == 0


def test_a_closed_day_is_recorded_once_per_batch() -> None:
    day = event("day.closed", {"date": "2026-11-02"})
    again = event("day.closed", {"date": "2026-11-02"})
    assert project([(day, 1), (again, 2)]).closed_days == {T0.date()}
