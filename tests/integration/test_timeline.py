"""The timeline projection against the real broker and database: each event once per id
it names, whatever is delivered twice, and a rebuild that repeats it."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from projections.rebuild import rebuild
from schemas.base import CloudEvent
from services.web.queries import _QUEUE
from tests.conftest import Services
from tests.factories import T0, event, order_placed, payment_captured, unique
from tests.projection_support import balance, catch_up, publish, query, start_at_end
from tests.web_support import catch_up_timeline, start_timeline_at_end

pytestmark = pytest.mark.integration


def test_an_orders_facts_and_outputs_are_on_its_timeline_once(
    services: Services, read_schema: str
) -> None:
    start_timeline_at_end(services, read_schema)
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


def _mismatch(kind: str, mismatch_id: str, hour: int, **data: object) -> CloudEvent:
    at = T0 + timedelta(hours=hour)
    stamp = {"detected": "detected_at", "assigned": "assigned_at", "resolved": "resolved_at"}
    return event(
        f"mismatch.{kind}",
        {"mismatch_id": mismatch_id, "order_id": mismatch_id, stamp[kind]: at.isoformat(), **data},
        at=at,
    )


def test_the_queue_table_says_what_the_exceptions_view_says(
    services: Services, read_schema: str
) -> None:
    start_at_end(services, read_schema)
    start_timeline_at_end(services, read_schema)
    again, plain, owned, orphan = (unique("MM") for _ in range(4))
    detected = {"reason": "OVERPAID", "severity": "low", "currency": "CNY"}
    batches = [
        [
            _mismatch("detected", again, 1, difference="-5.00", **detected),
            _mismatch("assigned", again, 2, assignee="ann"),
            _mismatch("resolved", again, 3, resolution="auto"),
        ],
        [
            _mismatch("detected", again, 4, actual="7.00", **{**detected, "severity": "high"}),
            _mismatch("detected", plain, 1, expected="9.00", **detected),
            _mismatch("assigned", owned, 0, assignee="bo"),  # before its detection
            _mismatch("assigned", orphan, 0, assignee="cy"),  # never detected
        ],
        [_mismatch("detected", owned, 5, **detected)],
    ]
    for batch in batches:  # in separate batches, so that stored rows are merged too
        publish(services, batch)
        catch_up_timeline(services, read_schema)
    catch_up(services, read_schema, publish_alerts=False)
    columns = (
        "mismatch_id, reason, severity, status, owner, currency, amount, detected_at, age_days"
    )
    ours = (again, plain, owned, orphan)
    view = query(
        services,
        read_schema,
        f"SELECT {columns} FROM exceptions WHERE mismatch_id = ANY(%s) ORDER BY 1",
        (list(ours),),
    )
    table = query(
        services,
        read_schema,
        f"SELECT {columns} FROM ({_QUEUE}) q WHERE mismatch_id = ANY(%s) ORDER BY 1",
        (list(ours),),
    )
    assert table == view
    assert {r[0]: r[3] for r in table} == {again: "assigned", plain: "open", owned: "assigned"}


def test_the_timeline_runner_leaves_the_closed_days_to_the_read_models_runner(
    services: Services, read_schema: str
) -> None:
    """The two runners share the tables; in a rebuild the read models' runner computes the
    closed days once, at its end. A timeline runner computing them as it starts (a second
    or two into the replay) would store figures of half a history, kept for good."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {}.closed_days VALUES ('2025-01-31')").format(
                sql.Identifier(read_schema)
            )
        )
    start_timeline_at_end(services, read_schema)
    catch_up_timeline(services, read_schema)
    assert query(services, read_schema, "SELECT day FROM materialised_days") == []
