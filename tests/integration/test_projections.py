"""The projection against the real broker and database: exactly-once effect under
redelivery and a crash between write and commit, and a rebuild that repeats the tables."""

from __future__ import annotations

import multiprocessing
import os
from datetime import timedelta
from decimal import Decimal

import pytest
from confluent_kafka import Message, TopicPartition

from projections.rebuild import rebuild
from projections.runner import end_positions
from schemas.topics import MATCHES
from services.kafka_io import consumer
from tests.conftest import Services
from tests.factories import T0, unique
from tests.projection_support import (
    balance,
    catch_up,
    dump,
    publish,
    query,
    runner,
    start_at_end,
)
from tests.web_support import catch_up_timeline

pytestmark = pytest.mark.integration


def _history(services: Services, schema: str, order_id: str) -> list[tuple[object, ...]]:
    return query(
        services,
        schema,
        "SELECT paid, open_balance FROM balance_history WHERE order_id = %s ORDER BY pos",
        (order_id,),
    )


def _current(services: Services, schema: str, order_id: str) -> Decimal:
    (row,) = query(
        services,
        schema,
        "SELECT open_balance FROM balance_current WHERE order_id = %s",
        (order_id,),
    )
    value = row[0]
    assert isinstance(value, Decimal)
    return value


def test_a_batch_delivered_twice_and_republished_events_count_once(
    services: Services, read_schema: str
) -> None:
    start_at_end(services, read_schema)
    stored = end_positions(services.kafka_bootstrap)
    order_id = unique("ORD")
    events = [
        balance(order_id, T0, receivable="100.00", due="2026-12-01"),
        balance(
            order_id, T0 + timedelta(hours=1), receivable="100.00", paid="40.00", due="2026-12-01"
        ),
    ]
    publish(services, events)

    reader = consumer(services.kafka_bootstrap, unique("reader"))
    reader.assign([TopicPartition(t, p, o) for (t, p), o in stored.items() if t == MATCHES.name])
    messages: list[Message] = []
    while len(messages) < len(events):
        msg = reader.poll(5)
        assert msg is not None, "the published events did not arrive"
        messages.append(msg)
    reader.close()

    r = runner(services, read_schema)
    try:
        r.handle_batch(messages)
        r.handle_batch(messages)  # the same batch again, as after a lost acknowledgement
    finally:
        r.close()
    assert _history(services, read_schema, order_id) == [
        (Decimal("0"), Decimal("100.00")),
        (Decimal("40.00"), Decimal("60.00")),
    ]

    publish(services, events)  # a restarted processor re-sends its outputs, same ids
    stats = catch_up(services, read_schema)
    assert stats.duplicates == 2
    assert len(_history(services, read_schema, order_id)) == 2
    assert _current(services, read_schema, order_id) == Decimal("60.00")


def _write_then_die(bootstrap: str, database_url: str, schema: str) -> None:
    from projections.runner import ProjectionRunner, end_positions

    def die() -> None:
        os._exit(137)  # like SIGKILL: no rollback by us, no cleanup; the server rolls back

    r = ProjectionRunner(
        bootstrap, database_url, schema, group_id=unique("dying"), before_commit=die
    )
    r.run(until_offsets=end_positions(bootstrap), max_seconds=60)


def test_a_projection_killed_between_write_and_commit_leaves_no_double_counting(
    services: Services, read_schema: str
) -> None:
    start_at_end(services, read_schema)
    order_ids = [unique("ORD") for _ in range(5)]
    publish(
        services,
        [balance(o, T0, receivable="10.00", due="2026-12-01") for o in order_ids]
        + [
            balance(o, T0 + timedelta(hours=2), receivable="10.00", paid="10.00", status="paid")
            for o in order_ids
        ],
    )
    child = multiprocessing.get_context("fork").Process(
        target=_write_then_die, args=(services.kafka_bootstrap, services.database_url, read_schema)
    )
    child.start()
    child.join(90)
    assert child.exitcode == 137, "the projection should have died before its first commit"
    assert query(services, read_schema, "SELECT count(*) FROM balance_history") == [(0,)]

    stats = catch_up(services, read_schema)
    assert stats.applied == 10
    rows = query(
        services,
        read_schema,
        "SELECT order_id, count(*), sum(open_balance) FROM balance_history"
        " GROUP BY order_id ORDER BY order_id",
    )
    assert rows == [(o, 2, Decimal("10.00")) for o in sorted(order_ids)]
    assert all(_current(services, read_schema, o) == 0 for o in order_ids)


def test_rebuild_from_offset_zero_gives_identical_tables(
    services: Services, read_schema: str
) -> None:
    order_id = unique("ORD")
    publish(
        services,
        [
            balance(order_id, T0, receivable="70.00", due="2026-12-01"),
            balance(order_id, T0 + timedelta(days=1), receivable="70.00", paid="20.00"),
        ],
    )
    catch_up(services, read_schema)  # the live tables, from offset 0
    # The rebuild makes the timeline too (its claims are in processed_events). Its rows are
    # compared in test_timeline.py: which copy of an id that a shared stack's log carries
    # with two contents wins depends on the order partitions are read in.
    catch_up_timeline(services, read_schema)
    before = dump(services, read_schema, (*_tables(), "projection_offsets"))
    assert any(row[1] == order_id for row in before["balance_history"])

    done = rebuild(services.kafka_bootstrap, services.database_url, read_schema)
    assert done.swapped
    after = dump(services, read_schema, (*_tables(), "projection_offsets"))
    for table in _tables():
        assert after[table] == before[table], f"{table} differs after the rebuild"
    # The rebuild also records partitions that were empty (offset 0); the rest agree.
    assert set(before["projection_offsets"]) <= set(after["projection_offsets"])
    assert all(
        row[3] == 0 for row in set(after["projection_offsets"]) - set(before["projection_offsets"])
    )


def _tables() -> tuple[str, ...]:
    from tests.projection_support import PROJECTED_TABLES

    return PROJECTED_TABLES


def test_a_running_projection_carries_on_in_the_rebuilt_tables_after_the_swap(
    services: Services, read_schema: str
) -> None:
    import threading
    import time

    catch_up(services, read_schema)
    live = runner(services, read_schema)
    worker = threading.Thread(target=live.run, kwargs={"max_seconds": 600})
    worker.start()
    try:
        before_swap = unique("ORD")
        publish(services, [balance(before_swap, T0, receivable="1.00", due="2026-12-01")])
        rebuild(services.kafka_bootstrap, services.database_url, read_schema)
        after_swap = unique("ORD")
        publish(services, [balance(after_swap, T0, receivable="2.00", due="2026-12-01")])
        deadline = time.monotonic() + 60
        counts: list[tuple[object, ...]] = []
        while time.monotonic() < deadline:
            counts = query(
                services,
                read_schema,
                "SELECT order_id, count(*) FROM balance_history WHERE order_id = ANY(%s)"
                " GROUP BY order_id ORDER BY order_id",
                ([before_swap, after_swap],),
            )
            if len(counts) == 2:
                break
            time.sleep(0.5)
    finally:
        live.stopping = True
        worker.join(30)
        live.close()
    assert counts == sorted([(before_swap, 1), (after_swap, 1)])
