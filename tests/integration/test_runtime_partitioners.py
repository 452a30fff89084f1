"""Any producer's partitioner (issue #16): orders, payments and bank lines placed by
librdkafka's default partitioner (consistent_random, CRC32: what a confluent_kafka.Producer
without a `partitioner` setting does) or put on explicitly wrong partitions are all handled
as if they were on their contract partition (murmur2(key) mod 12): every order is matched,
those paid by a bank line naming them too (bank line → payment.applied → order.matched),
and the worker counts the re-routed records in
o2c_rerouted_records_total{topic=...} on its Prometheus port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer

from schemas.base import CloudEvent
from schemas.codec import encode
from schemas.topics import topic_for
from tests.conftest import Services
from tests.factories import event, order_placed, payment_captured
from tests.runtime_support import (
    OutputReader,
    Workers,
    contract_partition,
    fresh_app,
    input_ends,
    new_tag,
    output_ends,
    workers,
)

pytestmark = pytest.mark.integration

ORDERS = 24  # per producer: half paid by a capture, half by a bank line naming the order
REROUTED = "o2c_rerouted_records_total"


@dataclass
class Placed:
    """What one producer published, and where its records landed."""

    events: list[CloudEvent]
    orders: list[str]
    by_bank_line: dict[str, str]  # order id -> line id
    partitions: dict[str, int] = field(default_factory=dict)  # event id -> partition
    errors: list[str] = field(default_factory=list)

    def misplaced(self, topic: str) -> int:
        return sum(
            1
            for e in self.events
            if topic_for(e).name == topic
            and self.partitions[e.id] != contract_partition(str(e.partition_key()))
        )


def _scenario(tag: str) -> Placed:
    events: list[CloudEvent] = []
    orders: list[str] = []
    by_line: dict[str, str] = {}
    for n in range(ORDERS):
        order_id = f"ORD-{tag}{n:04d}"
        amount = f"{100 + n}.00"
        orders.append(order_id)
        events.append(order_placed(order_id, amount, payment_terms_days=30))
        if n % 2 == 0:
            events.append(payment_captured(f"PAY-{tag}{n:04d}", order_id, amount))
        else:
            line_id = f"BL-{tag}{n:04d}"
            by_line[order_id] = line_id
            data = {
                "line_id": line_id,
                "account_id": f"ACC-{tag}-MAIN",
                "booking_date": "2026-11-02",
                "amount": amount,
                "currency": "CNY",
                "remittance_info": f"Payment {order_id} thank you",
            }
            events.append(event("bank_line.booked", data))
    return Placed(events, orders, by_line)


def _produce(producer: Producer, placed: Placed, partition_of: Any) -> None:
    def delivered(event_id: str) -> Any:
        def record(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                placed.errors.append(str(err))
            else:
                placed.partitions[event_id] = int(msg.partition() or 0)

        return record

    for n, e in enumerate(placed.events):
        key = str(e.partition_key())
        extra: dict[str, Any] = {}
        if partition_of is not None:
            extra["partition"] = partition_of(n, key)
        producer.produce(
            topic_for(e).name, value=encode(e), key=key, on_delivery=delivered(e.id), **extra
        )
        producer.poll(0)
    assert producer.flush(60) == 0, "records not delivered within 60s"
    assert not placed.errors, placed.errors[:3]
    assert len(placed.partitions) == len(placed.events)


def _wrong_partition(n: int, key: str) -> int:
    """Never the contract's partition, and another wrong one for each record of an order."""
    return (contract_partition(key) + 1 + n % 11) % 12


@dataclass
class Outcome:
    placed: dict[str, Placed]
    matched: set[str]
    applied: dict[str, tuple[str | None, str | None]]  # order id -> (line id, method)
    rerouted: dict[str, float]  # topic -> metric value


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("partitioners"))


@pytest.fixture(scope="module")
def outcome(services: Services, pool: Workers) -> Outcome:
    source = "rt-partitioners"
    app_id = fresh_app(services, source, input_ends(services))
    since = output_ends(services)
    placed = {"default": _scenario(new_tag()), "explicit": _scenario(new_tag())}
    # librdkafka's defaults: no `partitioner`, so consistent_random (CRC32 of the key).
    _produce(Producer({"bootstrap.servers": services.kafka_bootstrap}), placed["default"], None)
    # Each record on a partition of the producer's choosing, never the contract's.
    explicit = Producer({"bootstrap.servers": services.kafka_bootstrap})
    _produce(explicit, placed["explicit"], _wrong_partition)
    orders = {o for p in placed.values() for o in p.orders}
    reader = OutputReader(services, since, source)
    try:
        worker = pool.start(app_id, name=source, env={"O2C_SOURCE": source})

        def matched(r: OutputReader) -> set[str]:
            return {
                o.document["data"]["order_id"]
                for o in r.unique.values()
                if o.type == "o2c.order.matched.v1"
            }

        # On a timeout the tests below say which orders are missing.
        reader.wait_until(lambda r: orders <= matched(r), 90, [worker])
        reader.settle(quiet=2, timeout=60, what=source)
        applied = {
            o.document["data"]["order_id"]: (
                o.document["data"].get("line_id"),
                o.document["data"].get("method"),
            )
            for o in reader.unique.values()
            if o.type == "o2c.payment.applied.v1"
        }
        rerouted = {}
        deadline = time.monotonic() + 15  # the metric may trail the outputs a little
        for topic in ("o2c.orders", "o2c.payments", "o2c.bank-lines"):
            wanted = sum(p.misplaced(topic) for p in placed.values())
            while (value := worker.metric(REROUTED, topic=topic)) < wanted:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            rerouted[topic] = value
        pool.assert_running(worker)
        pool.stop(worker)
        return Outcome(placed, matched(reader) & orders, applied, rerouted)
    finally:
        reader.close()


@pytest.mark.parametrize("producer", ["default", "explicit"])
def test_every_order_is_matched_whatever_partition_its_records_are_on(
    outcome: Outcome, producer: str
) -> None:
    placed = outcome.placed[producer]
    misplaced = {t: placed.misplaced(t) for t in ("o2c.orders", "o2c.payments", "o2c.bank-lines")}
    print(f"{producer}: records off their contract partition {misplaced}")
    assert misplaced["o2c.orders"] > 0, "no order record off its partition: nothing tested"
    unmatched = sorted(set(placed.orders) - outcome.matched)
    paid_by = {o: "bank line" if o in placed.by_bank_line else "capture" for o in unmatched}
    assert not unmatched, (
        f"{len(unmatched)} of {len(placed.orders)} orders never matched: "
        + ", ".join(f"{o} ({paid_by[o]})" for o in unmatched[:8])
    )


@pytest.mark.parametrize("producer", ["default", "explicit"])
def test_bank_lines_naming_an_order_are_applied_to_it(outcome: Outcome, producer: str) -> None:
    placed = outcome.placed[producer]
    expected = {o: (line, "reference") for o, line in placed.by_bank_line.items()}
    got = {o: outcome.applied.get(o) for o in placed.by_bank_line}
    assert got == expected


def test_the_worker_counts_the_rerouted_records_by_topic(outcome: Outcome) -> None:
    for topic in ("o2c.orders", "o2c.payments"):
        wanted = sum(p.misplaced(topic) for p in outcome.placed.values())
        assert outcome.rerouted[topic] >= wanted, (
            f'{REROUTED}{{topic="{topic}"}} is {outcome.rerouted[topic]:g}; '
            f"{wanted} records of this test were off their contract partition"
        )
