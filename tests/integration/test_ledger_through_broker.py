from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.topics import DEAD_LETTER, MATCHES, MISMATCHES, ORDERS, PAYMENTS
from services.kafka_io import EventProducer
from tests.conftest import RunningWorker, Services
from tests.factories import document, order_placed, payment_captured, unique
from tests.kafka_support import OutputWatcher

pytestmark = pytest.mark.integration


@pytest.fixture
def watcher(services: Services, worker: RunningWorker) -> Iterator[OutputWatcher]:
    w = OutputWatcher(services.kafka_bootstrap, [MATCHES.name, MISMATCHES.name, DEAD_LETTER.name])
    yield w
    w.close()


def test_order_and_its_payment_produce_order_matched(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id = unique("ORD")
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "129.90"))
    out.send(payment_captured(unique("pay"), order_id, "129.90"))
    out.flush()

    def matched(seen: list[tuple[str, CloudEvent]]) -> bool:
        return any(isinstance(e, ev.OrderMatched) and e.data.order_id == order_id for _, e in seen)

    seen = watcher.collect(matched)
    ((topic, event),) = [
        (t, e) for t, e in seen if isinstance(e, ev.OrderMatched) and e.data.order_id == order_id
    ]
    assert topic == MATCHES.name
    assert event.data.paid == event.data.receivable
    assert event.causationid is not None


def test_overpayment_is_reported_on_the_mismatch_topic(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id = unique("ORD")
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "100.00"))
    out.send(payment_captured(unique("pay"), order_id, "180.00"))
    out.flush()

    def overpaid(seen: list[tuple[str, CloudEvent]]) -> bool:
        return any(
            isinstance(e, ev.MismatchDetected)
            and e.data.order_id == order_id
            and e.data.reason == "OVERPAID"
            for _, e in seen
        )

    # Other tests close business days; a payment processed before its order may then be
    # reported as PAYMENT_WITHOUT_ORDER for a moment, and resolved when the order arrives.
    seen = watcher.collect(overpaid)
    detected = [
        e
        for t, e in seen
        if isinstance(e, ev.MismatchDetected)
        and e.data.order_id == order_id
        and e.data.reason == "OVERPAID"
    ]
    assert len(detected) == 1
    assert detected[0].data.difference == 80


def test_invalid_message_goes_to_the_dead_letter_topic_with_its_bytes(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id = unique("ORD")
    bad = document(
        "payment.captured",
        {
            "payment_id": unique("pay"),
            "order_id": order_id,
            "method": "card",
            "amount": 10.5,
            "currency": "CNY",
            "captured_at": "2026-11-01T10:00:00Z",
        },
    )
    raw = orjson.dumps(bad)
    out = EventProducer(services.kafka_bootstrap)
    out.send_raw(PAYMENTS.name, order_id, raw)
    # The worker keeps consuming after the dead letter: a valid order behind it still matches.
    out.send(order_placed(order_id, "10.50"))
    out.send(payment_captured(unique("pay"), order_id, "10.50"))
    out.flush()

    def both(seen: list[tuple[str, CloudEvent]]) -> bool:
        return any(
            isinstance(e, ev.EventRejected) and e.data.original_key == order_id for _, e in seen
        ) and any(isinstance(e, ev.OrderMatched) and e.data.order_id == order_id for _, e in seen)

    seen = watcher.collect(both)
    (rejected,) = [
        e for _, e in seen if isinstance(e, ev.EventRejected) and e.data.original_key == order_id
    ]
    assert rejected.data.original_topic == PAYMENTS.name
    assert base64.b64decode(rejected.data.original_value) == raw
    assert "data.amount" in rejected.data.error
    assert "JSON number" in rejected.data.error
    assert rejected.causationid == bad["id"]


def test_message_key_that_disagrees_with_the_event_is_rejected(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id = unique("ORD")
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "10.00"), ORDERS)  # correct key
    placed = order_placed(unique("ORD"), "10.00")
    from schemas.codec import encode

    out.send_raw(ORDERS.name, order_id, encode(placed))  # key of another order
    out.flush()

    def rejected(seen: list[tuple[str, CloudEvent]]) -> bool:
        return any(isinstance(e, ev.EventRejected) and e.causationid == placed.id for _, e in seen)

    seen = watcher.collect(rejected)
    (event,) = [
        e for _, e in seen if isinstance(e, ev.EventRejected) and e.causationid == placed.id
    ]
    assert event.data.error.startswith("key: message key")
