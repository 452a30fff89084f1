"""The credit processor in the worker: breach and restore at the crossings, through Kafka."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.topics import CREDIT
from services.kafka_io import EventProducer
from tests.conftest import RunningWorker, Services
from tests.factories import event, order_placed, payment_captured, unique
from tests.kafka_support import OutputWatcher

pytestmark = pytest.mark.integration


@pytest.fixture
def watcher(services: Services, worker: RunningWorker) -> Iterator[OutputWatcher]:
    w = OutputWatcher(services.kafka_bootstrap, [CREDIT.name])
    yield w
    w.close()


def test_breach_and_restore_are_emitted_once_each_at_the_crossings(
    services: Services, watcher: OutputWatcher
) -> None:
    customer = unique("CUST")
    first, second = unique("ORD"), unique("ORD")
    out = EventProducer(services.kafka_bootstrap)
    out.send(
        event(
            "customer.upserted",
            {
                "customer_id": customer,
                "name": "Credit Co",
                "credit_limit": "1000.00",
                "currency": "CNY",
            },
        )
    )
    out.send(order_placed(first, "600.00", customer_id=customer))
    out.send(order_placed(second, "400.00", customer_id=customer))  # 1000.00: at the limit
    out.flush()

    def mine(seen: list[tuple[str, CloudEvent]]) -> list[CloudEvent]:
        return [
            e
            for _, e in seen
            if isinstance(e, ev.CreditLimitBreached | ev.CreditLimitRestored)
            and e.data.customer_id == customer
        ]

    with pytest.raises(AssertionError):  # at the limit is not above it
        watcher.collect(lambda s: bool(mine(s)), timeout=15)

    out.send(
        event("order.amended", {"order_id": second, "total_amount": "400.01", "currency": "CNY"})
    )
    out.flush()
    watcher.collect(lambda s: len(mine(s)) >= 1, timeout=60)

    out.send(payment_captured(unique("pay"), first, "600.00", customer_id=customer))
    out.flush()
    watcher.collect(lambda s: len(mine(s)) >= 2, timeout=60)
    with pytest.raises(AssertionError):  # nothing more: exposure stays below the limit
        watcher.collect(lambda s: len(mine(s)) >= 3, timeout=5)

    breached, restored = mine(watcher.seen)
    assert isinstance(breached, ev.CreditLimitBreached)
    assert str(breached.data.exposure) == "1000.01"
    assert isinstance(restored, ev.CreditLimitRestored)
    assert str(restored.data.exposure) == "400.01"
