"""Every reason code the ledger raises, end to end through the real broker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.topics import CLOCK
from services.kafka_io import EventProducer
from tests.conftest import Services
from tests.factories import T0, event, order_placed, payment_captured, unique
from tests.kafka_support import OutputWatcher

pytestmark = pytest.mark.integration

Seen = list[tuple[str, CloudEvent]]
DAY0 = T0.date()


def _cny(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "CNY"}


def scenarios() -> dict[str, tuple[str, list[CloudEvent]]]:
    """reason -> (the key its mismatch carries, the events that cause it)."""

    def order(total: str = "100.00") -> tuple[str, CloudEvent]:
        order_id = unique("ORD")
        return order_id, order_placed(order_id, total)

    cases: dict[str, tuple[str, list[CloudEvent]]] = {}
    o, placed = order()
    cases["UNDERPAID"] = (o, [placed, payment_captured(unique("p"), o, "60.00", method="voucher")])
    o, placed = order()
    cases["OVERPAID"] = (o, [placed, payment_captured(unique("p"), o, "150.00", method="voucher")])
    o, placed = order()
    cases["DUPLICATE_PAYMENT"] = (o, [
        placed,
        payment_captured(unique("p"), o, "100.00", method="voucher"),
        payment_captured(unique("p"), o, "100.00", method="voucher", at=T0 + timedelta(minutes=1)),
    ])  # fmt: skip
    o, placed = order()
    cases["CURRENCY_MISMATCH"] = (
        o,
        [placed, payment_captured(unique("p"), o, "14.00", currency="USD")],
    )
    orphan = unique("p")
    cases["PAYMENT_WITHOUT_ORDER"] = (
        orphan,
        [payment_captured(orphan, None, "30.00", reference="thanks")],
    )
    o, placed = order()
    cases["PAYMENT_ON_CANCELLED_ORDER"] = (o, [
        placed,
        event("order.cancelled", {"order_id": o}),
        payment_captured(unique("p"), o, "100.00", method="voucher"),
    ])  # fmt: skip
    o, placed = order()
    pay = unique("p")
    cases["REFUND_EXCEEDS_PAID"] = (o, [
        placed,
        payment_captured(pay, o, "100.00", method="voucher"),
        event("refund.issued", {"refund_id": unique("r"), "order_id": o, **_cny("150.00"),
              "issued_at": T0.isoformat()}),
    ])  # fmt: skip
    o, placed = order()
    pay = unique("p")
    cases["CHARGEBACK"] = (o, [
        placed,
        payment_captured(pay, o, "100.00", method="voucher"),
        event("chargeback.opened", {"chargeback_id": unique("cb"), "payment_id": pay,
              "order_id": o, **_cny("100.00"), "opened_at": T0.isoformat()}),
    ])  # fmt: skip
    o, placed = order()
    cases["PAYMENT_NOT_SETTLED"] = (
        o,
        [placed, payment_captured(unique("p"), o, "100.00", method="card")],
    )
    o, placed = order()
    cases["INVOICE_ORDER_MISMATCH"] = (o, [
        placed,
        event("invoice.issued", {"invoice_id": unique("INV"), "order_id": o, "customer_id": "C-1",
              **_cny("90.00"), "issued_at": T0.isoformat(),
              "due_date": (DAY0 + timedelta(days=30)).isoformat()}),
    ])  # fmt: skip
    return cases


def _mismatches(seen: Seen) -> dict[tuple[str, str], ev.MismatchDetected]:
    found = {}
    for _, e in seen:
        if isinstance(e, ev.MismatchDetected):
            found[(e.data.reason.value, e.partition_key() or "")] = e
    return found


def test_every_ledger_reason_code_is_raised_end_to_end(
    services: Services, watcher: OutputWatcher
) -> None:
    cases = scenarios()
    out = EventProducer(services.kafka_bootstrap)
    for _key, events in cases.values():
        for e in events:
            out.send(e)
    out.flush()
    # Time passes: the day of the events ends, then the next two (settlement is due by T+2).
    for offset in range(3):
        day = DAY0 + timedelta(days=offset)
        out.send(event("day.closed", {"date": day.isoformat()}, id=f"day-{day}", at=T0), CLOCK)
    out.flush()

    wanted = {(reason, key) for reason, (key, _) in cases.items()}

    def all_raised(seen: Seen) -> bool:
        return wanted <= set(_mismatches(seen))

    seen = watcher.collect(all_raised, timeout=120)
    found = _mismatches(seen)
    for reason, key in wanted:
        mismatch = found[(reason, key)]
        assert mismatch.causationid is not None
        assert mismatch.data.detected_at is not None
    orphan = found[("PAYMENT_WITHOUT_ORDER", cases["PAYMENT_WITHOUT_ORDER"][0])]
    assert orphan.data.payment_id == cases["PAYMENT_WITHOUT_ORDER"][0]
    assert orphan.data.order_id is None


def _matched(order_id: str) -> Callable[[Seen], bool]:
    def done(seen: Seen) -> bool:
        return any(isinstance(e, ev.OrderMatched) and e.data.order_id == order_id for _, e in seen)

    return done


def test_payment_naming_its_order_only_in_the_reference_reaches_that_order(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id = f"ORD-{unique('R')}"
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "45.00"))
    out.send(payment_captured(unique("p"), None, "45.00", reference=f"payment for {order_id}"))
    out.flush()
    watcher.collect(_matched(order_id))


def test_settlement_reported_on_the_matches_topic_settles_the_order(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id, pay = unique("ORD"), unique("p")
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "20.00"))
    out.send(payment_captured(pay, order_id, "20.00", method="card"))
    out.send(event("payment.settled", {"payment_id": pay, "order_id": order_id, "payout_id": "po-1",
                   "line_id": "L-1", **_cny("20.00")}))  # fmt: skip
    out.flush()

    def settled(seen: Seen) -> bool:
        return any(
            isinstance(e, ev.BalanceChanged)
            and e.data.order_id == order_id
            and e.data.status == "settled"
            for _, e in seen
        )

    watcher.collect(settled)


def test_reversal_naming_only_the_payment_follows_a_capture_forwarded_by_reference(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id, pay = f"ORD-{unique('V')}", unique("p")
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "45.00"))
    out.send(payment_captured(pay, None, "45.00", reference=f"payment for {order_id}"))
    out.flush()
    before = len(watcher.collect(_matched(order_id)))

    out.send(event("payment.reversed", {"payment_id": pay, **_cny("45.00")}))
    out.flush()

    def reopened(seen: Seen) -> bool:
        return any(
            isinstance(e, ev.BalanceChanged)
            and e.data.order_id == order_id
            and e.data.paid == 0
            and e.data.open_balance == 45
            for _, e in seen[before:]
        )

    watcher.collect(reopened)
