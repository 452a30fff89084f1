"""The projection at its edges: invalid input is dead-lettered, and people's decisions on
exceptions travel through Kafka back into the read model."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.topics import DEAD_LETTER, ORDERS
from services.kafka_io import EventProducer
from tests.conftest import Services, service_env
from tests.factories import T0, event, unique
from tests.kafka_support import OutputWatcher
from tests.projection_support import balance, catch_up, publish, query, start_at_end

pytestmark = pytest.mark.integration


def test_an_invalid_message_is_dead_lettered_and_the_projection_goes_on(
    services: Services, read_schema: str
) -> None:
    start_at_end(services, read_schema)
    watcher = OutputWatcher(services.kafka_bootstrap, [DEAD_LETTER.name])
    order_id = unique("ORD")
    out = EventProducer(services.kafka_bootstrap)
    out.send_raw(ORDERS.name, order_id, b'{"specversion": "1.0", "type": "o2c.order.placed.v1"}')
    out.flush()
    publish(services, [balance(order_id, T0, receivable="5.00", due="2026-12-01")])
    try:
        stats = catch_up(services, read_schema)
        seen = watcher.collect(
            lambda s: any(
                isinstance(e, ev.EventRejected) and e.data.original_key == order_id for _, e in s
            )
        )
    finally:
        watcher.close()
    assert stats.dead_letters == 1
    (letter,) = {e.id: e for _, e in seen if isinstance(e, ev.EventRejected)}.values()
    assert isinstance(letter, ev.EventRejected)
    assert letter.data.original_topic == ORDERS.name
    assert "data" in letter.data.error  # names what is missing
    assert query(
        services,
        read_schema,
        "SELECT count(*) FROM balance_history WHERE order_id = %s",
        (order_id,),
    ) == [(1,)]


def _o2c(services: Services, schema: str, *args: str) -> str:
    o2c = str(Path(sys.executable).with_name("o2c"))
    done = subprocess.run(
        [o2c, *args],
        env=service_env(services, O2C_READ_SCHEMA=schema),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _exception(services: Services, schema: str, mismatch_id: str) -> tuple[object, ...]:
    (row,) = query(
        services,
        schema,
        "SELECT status, owner, resolution, note FROM exceptions WHERE mismatch_id = %s",
        (mismatch_id,),
    )
    return row


def test_assigning_and_resolving_an_exception_goes_through_kafka(
    services: Services, read_schema: str
) -> None:
    start_at_end(services, read_schema)
    mismatch_id = unique("mm")
    publish(
        services,
        [
            event(
                "mismatch.detected",
                {
                    "mismatch_id": mismatch_id,
                    "reason": "UNDERPAID",
                    "severity": "medium",
                    "currency": "CNY",
                    "difference": "-12.50",
                    "order_id": unique("ORD"),
                    "detected_at": T0.isoformat(),
                },
            )
        ],
    )
    catch_up(services, read_schema)
    assert _exception(services, read_schema, mismatch_id) == ("open", None, None, None)

    _o2c(services, read_schema, "exceptions", "assign", mismatch_id[:12], "--to", "alice")
    assert _exception(services, read_schema, mismatch_id)[0] == "open"  # not before it's applied
    catch_up(services, read_schema)
    assert _exception(services, read_schema, mismatch_id) == ("assigned", "alice", None, None)

    _o2c(services, read_schema, "exceptions", "resolve", mismatch_id, "--note", "short shipped")
    catch_up(services, read_schema)
    assert _exception(services, read_schema, mismatch_id) == (
        "resolved",
        "alice",
        "manual",
        "short shipped",
    )
    report = orjson.loads(_o2c(services, read_schema, "report", "exceptions", "--format", "json"))
    assert [r["status"] for r in report if r["mismatch_id"] == mismatch_id] == ["resolved"]


def _publish_in_one_transaction(services: Services, events: list[CloudEvent]) -> int:
    """As an exactly-once worker does: its outputs, then a commit marker after them.
    Returns how many messages the projection reads of them."""
    from confluent_kafka import Producer

    from projections.model import TOPICS
    from schemas.codec import encode
    from schemas.topics import destinations
    from services.connections import kafka_config

    producer = Producer(
        kafka_config(services.kafka_bootstrap, **{"transactional.id": unique("tx-marker")})
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    read = 0
    for e in events:
        for target, key in destinations(e):
            producer.produce(target.name, key=key, value=encode(e))
            read += target in TOPICS
    producer.commit_transaction(30)
    return read


def test_a_catch_up_ends_on_a_partition_whose_last_offset_is_a_transaction_marker(
    services: Services, read_schema: str
) -> None:
    """An exactly-once worker's outputs end with a commit marker, which no consumer is
    given: a rebuild or catch-up waiting for the last message's offset + 1 to reach the
    end offset would wait forever."""
    start_at_end(services, read_schema)
    read = _publish_in_one_transaction(
        services, [balance(unique("ORD"), T0, receivable="10.00", due="2026-12-01")]
    )
    started = time.monotonic()
    stats = catch_up(services, read_schema)
    assert stats.messages == read
    assert time.monotonic() - started < 60, "the catch-up waited for an offset no message has"


def test_a_projection_resumes_past_a_commit_marker_without_seeking_back_to_it(
    services: Services, read_schema: str
) -> None:
    """The stored offset after a transaction's last message is its commit marker's; the
    next message read is one beyond it. That is no sign of moved tables: seeking back to
    the marker would hand over the same batch again, for ever."""
    start_at_end(services, read_schema)
    order_id = unique("ORD")
    _publish_in_one_transaction(
        services, [balance(order_id, T0, receivable="10.00", due="2026-12-01")]
    )
    catch_up(services, read_schema)
    read = _publish_in_one_transaction(
        services,
        [
            balance(
                order_id,
                T0 + timedelta(hours=1),
                receivable="10.00",
                paid="10.00",
                due="2026-12-01",
            )
        ],
    )
    started = time.monotonic()
    stats = catch_up(services, read_schema)
    assert stats.reseeks == 0
    assert stats.messages == read
    assert time.monotonic() - started < 60, "the catch-up fetched the same batch over and over"
    rows = query(
        services,
        read_schema,
        "SELECT count(*) FROM balance_history WHERE order_id = %s",
        (order_id,),
    )
    assert rows == [(2,)]
