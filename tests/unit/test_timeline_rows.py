"""What the timeline records of an event: every id it names, a one-line summary, the
acting user and the cause."""

from __future__ import annotations

from pathlib import Path

import services.samples
from projections.timeline import (
    _AMOUNT_FIELDS,
    _DETAIL_FIELDS,
    REF_FIELDS,
    refs,
    summary,
    timeline_rows,
)
from schemas.base import CloudEvent
from schemas.codec import decode
from tests.factories import event, order_placed


def test_a_payout_names_its_payments_and_their_orders() -> None:
    payout = event(
        "payout.reported",
        {
            "payout_id": "po_1",
            "provider": "stripe",
            "currency": "CNY",
            "gross_amount": "30.00",
            "fee_amount": "1.00",
            "net_amount": "29.00",
            "payout_date": "2026-11-03",
            "items": [
                {"payment_id": "pay_1", "order_id": "ORD-1", "kind": "charge", "gross": "10.00",
                 "fee": "0.50"},
                {"payment_id": "pay_2", "kind": "charge", "gross": "20.00", "fee": "0.50"},
            ],
        },
    )  # fmt: skip
    assert refs(payout) == [
        ("payout", "po_1"),
        ("payment", "pay_1"),
        ("order", "ORD-1"),
        ("payment", "pay_2"),
    ]
    assert summary(payout) == "payout reported: net amount 29.00 CNY, provider stripe"


def test_a_manual_resolution_says_who_and_why_and_what_caused_it() -> None:
    resolved = event(
        "mismatch.resolved",
        {
            "mismatch_id": "mm-1",
            "resolution": "manual",
            "note": "refunded",
            "order_id": "ORD-1",
            "by": "alice",
        },
        causationid="cause-1",
    )
    rows = timeline_rows(resolved, 7)
    assert [(r[0], r[1]) for r in rows] == [("ORD-1", "order"), ("mm-1", "mismatch")]
    _ref_id, _kind, event_id, _at, kind_name, line, by, cause, _source, pos = rows[0]
    assert (event_id, kind_name, by, cause, pos) == (
        resolved.id,
        "o2c.mismatch.resolved.v1",
        "alice",
        "cause-1",
        7,
    )
    assert line == "mismatch resolved: resolution manual, note refunded"


def test_an_order_placed_names_the_order_and_the_customer() -> None:
    placed = order_placed("ORD-7", "129.90", customer_id="C-9")
    assert refs(placed) == [("order", "ORD-7"), ("customer", "C-9")]
    assert summary(placed) == "order placed: total amount 129.90 CNY, channel web"


def _events() -> list[CloudEvent]:
    demo = Path(services.samples.__file__).parent / "demo.jsonl"
    facts = [decode(line) for line in demo.read_text().splitlines() if line.strip()]
    outputs = [
        event("mismatch.resolved", {"mismatch_id": "MM-1", "resolution": "manual",
              "order_id": "ORD-1", "by": "bo", "note": "see DE89370400440532013000"}),
        event("balance.changed", {"order_id": "ORD-1", "customer_id": "C-1", "currency": "CNY",
              "receivable": "10.00", "paid": "0", "refunded": "0", "settled": "0",
              "open_balance": "10.00", "status": "open", "due_date": "2026-12-01",
              "channel": "web"}),
    ]  # fmt: skip
    return facts + outputs


def test_asking_only_for_the_fields_a_model_has_finds_every_id_and_detail() -> None:
    # The timeline skips the fields an event's model lacks (timeline._has); every id and
    # summary detail that plain getattr finds is still found, in the same order.
    seen = set()
    for e in _events():
        seen.add(e.type)
        names = [(kind, str(getattr(e.data, n))) for n, kind in REF_FIELDS.items()
                 if getattr(e.data, n, None)]  # fmt: skip
        assert [r for r in refs(e) if r in set(names)] == list(dict.fromkeys(names))
        for name in (*_AMOUNT_FIELDS, *_DETAIL_FIELDS):
            value = getattr(e.data, name, None)
            if value and name in _DETAIL_FIELDS and name != "note":
                assert f"{name} {getattr(value, 'value', value)}" in summary(e)
    assert len(seen) >= 7
