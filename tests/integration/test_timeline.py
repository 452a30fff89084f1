"""The timeline projection against the real broker and database: each event once per id
it names, whatever is delivered twice, and a rebuild that repeats it."""

from __future__ import annotations

from collections import Counter

import pytest

from projections.rebuild import rebuild
from projections.runner import end_positions, unique_group
from projections.timeline import TimelineRunner
from tests.conftest import Services
from tests.factories import event, order_placed, payment_captured, unique
from tests.projection_support import balance, publish, query
from tests.web_support import catch_up_timeline

pytestmark = pytest.mark.integration


def _start_at_end(services: Services, schema: str) -> None:
    r = TimelineRunner(
        services.kafka_bootstrap, services.database_url, schema, group_id=unique_group("t")
    )
    try:
        r.store.save_offsets(end_positions(services.kafka_bootstrap, TimelineRunner.topics))
    finally:
        r.close()


def test_an_orders_facts_and_outputs_are_on_its_timeline_once(
    services: Services, read_schema: str
) -> None:
    _start_at_end(services, read_schema)
    order_id = unique("ORD")
    placed = order_placed(order_id, "100.00")
    paid = payment_captured(unique("pay"), order_id, "100.00")
    changed = balance(order_id, placed.time, receivable="100.00", paid="100.00")
    resolved = event(
        "mismatch.resolved",
        {"mismatch_id": unique("MM"), "resolution": "manual", "order_id": order_id, "by": "bo"},
        causationid=paid.id,
    )
    publish(services, [placed, paid, changed, resolved])
    publish(services, [paid, resolved])  # republished: the same ids count once
    stats = catch_up_timeline(services, read_schema)
    assert stats.duplicates == 2
    rows = query(
        services,
        read_schema,
        "SELECT event_id, type, by_user, causation_id FROM timeline"
        " WHERE ref_id = %s ORDER BY event_time, pos",
        (order_id,),
    )
    # A worker running on the same stack may add its own outputs for the order; ours are
    # there, and every event once.
    counts = Counter(r[0] for r in rows)
    assert {e.id for e in (placed, paid, changed, resolved)} <= set(counts)
    assert set(counts.values()) == {1}
    assert ("o2c.mismatch.resolved.v1", "bo", paid.id) in {r[1:] for r in rows}


def test_a_rebuild_repeats_the_timeline(services: Services, read_schema: str) -> None:
    order_id, payment_id = unique("ORD"), unique("pay")
    ours = [order_placed(order_id, "50.00"), payment_captured(payment_id, order_id, "50.00")]
    publish(services, ours)
    catch_up_timeline(services, read_schema)
    # Workers on the same stack may publish more between the two reads: compare the rows
    # of this test's events, which both must hold exactly once.
    text = "SELECT * FROM timeline WHERE event_id = ANY(%s) ORDER BY ref_id, ref_kind, event_id"
    ids = [e.id for e in ours]
    before = query(services, read_schema, text, (ids,))
    rebuild(services.kafka_bootstrap, services.database_url, read_schema)
    after = query(services, read_schema, text, (ids,))
    assert after == before
    assert sorted((r[1], r[0]) for r in after) == sorted(
        [("order", order_id), ("customer", "C-1"), ("order", order_id), ("payment", payment_id)]
    )
