"""The `exceptions` view and `ar_ageing` read stored rows (migration 0012) and give what
they gave when computed on each query (0003's fold of mismatch_events, 0004's sums of
ageing_by_day, run here as they were): on a simulated month, after a rebuild, and through
a mismatch's whole life, in batches of one message and of many. The rebuild's tables are
compared row for row with a live run's in test_projections.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from projections.migrate import use_schema
from projections.rebuild import rebuild
from tests.conftest import RunningWorker, Services
from tests.factories import event, unique
from tests.projection_support import (
    catch_up,
    drop_schemas,
    publish,
    query,
    simulated_month,
    start_at_end,
    utc,
)

pytestmark = pytest.mark.integration

_MIGRATIONS = Path(__file__).parents[2] / "projections" / "migrations"


def _view_as_defined_in(migration: str, view: str) -> str:
    found = re.search(
        rf"CREATE (?:OR REPLACE )?VIEW {view} AS\n(.*?);\n",
        (_MIGRATIONS / migration).read_text(),
        re.DOTALL,
    )
    assert found is not None, (migration, view)
    return found.group(1)


_EXCEPTIONS_0003 = _view_as_defined_in("0003_read_models.sql", "exceptions")
_AR_AGEING_0004 = _view_as_defined_in("0004_materialised_days.sql", "ar_ageing")
_BY_ID = " ORDER BY mismatch_id"
_BY_GROUP = " ORDER BY 1, 2, 3, 4, 5"


@pytest.fixture(scope="module")
def month(services: Services, worker: RunningWorker) -> Iterator[str]:
    with simulated_month(services, worker, "test_exceptions") as schema:
        yield schema


def assert_exceptions_as_folded(services: Services, schema: str) -> list[tuple[Any, ...]]:
    """The view's rows equal 0003's fold of mismatch_events; returns them."""
    stored = query(services, schema, f"SELECT * FROM exceptions{_BY_ID}")
    assert stored == query(services, schema, f"SELECT * FROM ({_EXCEPTIONS_0003}) e{_BY_ID}")
    return stored


def test_the_exceptions_view_equals_the_fold_of_every_mismatch_event(
    services: Services, month: str
) -> None:
    rows = assert_exceptions_as_folded(services, month)
    assert len(rows) >= 10
    statuses = {r[3] for r in rows}
    assert {"open", "resolved"} <= statuses, statuses


def test_ar_ageing_equals_the_sums_of_the_stored_ageing_on_every_closed_day(
    services: Services, month: str
) -> None:
    days = [r[0] for r in query(services, month, "SELECT day FROM closed_days ORDER BY 1")]
    assert len(days) >= 28
    compared = 0
    with psycopg.connect(services.database_url) as conn:
        for day in days:
            use_schema(conn, month)  # in the transaction: rolled back with it
            # business_today is the last closed day: forget the later ones (rolled back).
            conn.execute("DELETE FROM closed_days WHERE day > %s", (day,))
            view = conn.execute(f"SELECT * FROM ar_ageing{_BY_GROUP}").fetchall()
            before = conn.execute(f"SELECT * FROM ({_AR_AGEING_0004}) a{_BY_GROUP}").fetchall()
            conn.rollback()
            assert view == before, day
            compared += bool(view)
    assert compared >= 20


def test_the_exceptions_report_with_a_limit_gives_the_oldest_and_says_more_are_left(
    services: Services, month: str
) -> None:
    from projections.reports import Reports

    reports = Reports(services.database_url, month)
    try:
        every = reports.exceptions("open")
        assert len(every.rows) > 3
        assert not every.more
        first = reports.exceptions("open", limit=3)
        assert first.rows == every.rows[:3]
        assert first.more
        whole = reports.exceptions("open", limit=len(every.rows))
        assert whole.rows == every.rows
        assert not whole.more
    finally:
        reports.close()


def test_a_rebuild_gives_the_same_exceptions_and_ageing(services: Services, month: str) -> None:
    live = f"test_exceptions_rebuilt_{unique('r').replace('-', '_')}"
    try:
        done = rebuild(services.kafka_bootstrap, services.database_url, live, swap=False)
        rebuilt = assert_exceptions_as_folded(services, done.schema)
        assert rebuilt  # the month's mismatches are in the log the rebuild read
        ageing = query(services, done.schema, f"SELECT * FROM ar_ageing{_BY_GROUP}")
        assert ageing == query(
            services, done.schema, f"SELECT * FROM ({_AR_AGEING_0004}) a{_BY_GROUP}"
        )
    finally:
        drop_schemas(services, live, f"{live}_build")


def _detected(mismatch_id: str, order_id: str, at: str, difference: str) -> Any:
    return event(
        "mismatch.detected",
        {
            "mismatch_id": mismatch_id,
            "reason": "UNDERPAID",
            "severity": "medium",
            "currency": "SGD",
            "difference": difference,
            "order_id": order_id,
            "detected_at": utc(at).isoformat(),
        },
        at=utc(at),
    )


# A batch of one message: every event of the mismatch is folded in on its own.
@pytest.mark.parametrize("batch_max", [5000, 1], ids=["one-batch", "message-by-message"])
def test_a_mismatch_moves_through_its_states_as_the_fold_says(
    services: Services, read_schema: str, batch_max: int
) -> None:
    start_at_end(services, read_schema)
    mismatch_id, order_id = unique("MM"), unique("ORD")
    mine = (
        "SELECT status, owner, amount, resolution, note FROM exceptions"
        f" WHERE mismatch_id = '{mismatch_id}'"
    )
    steps: list[tuple[list[Any], tuple[Any, ...]]] = [
        ([_detected(mismatch_id, order_id, "2025-05-01T10:00", "-12.50")],
         ("open", None, Decimal("12.50"), None, None)),
        ([event("mismatch.assigned",
                {"mismatch_id": mismatch_id, "assignee": "alice", "order_id": order_id,
                 "assigned_at": utc("2025-05-02T09:00").isoformat()},
                at=utc("2025-05-02T09:00"))],
         ("assigned", "alice", Decimal("12.50"), None, None)),
        ([event("mismatch.resolved",
                {"mismatch_id": mismatch_id, "resolution": "manual", "note": "short shipped",
                 "order_id": order_id, "resolved_at": utc("2025-05-03T09:00").isoformat()},
                at=utc("2025-05-03T09:00"))],
         ("resolved", "alice", Decimal("12.50"), "manual", "short shipped")),
        # Detected again after the resolution: open again, with the new detection's facts
        # and the first detection's time; the owner stays.
        ([_detected(mismatch_id, order_id, "2025-05-04T10:00", "-20.00"),
          event("day.closed", {"date": "2025-05-04"}, at=utc("2025-05-05T00:00"))],
         ("assigned", "alice", Decimal("20.00"), None, None)),
    ]  # fmt: skip
    for events, expected in steps:
        publish(services, events)
        catch_up(services, read_schema, batch_max=batch_max)
        assert query(services, read_schema, mine) == [expected]
        assert_exceptions_as_folded(services, read_schema)
    detected, age = query(
        services,
        read_schema,
        f"SELECT detected_at, age_days FROM exceptions WHERE mismatch_id = '{mismatch_id}'",
    )[0]
    assert detected == utc("2025-05-01T10:00")
    assert age >= 3  # from the first detection to business_today (2025-05-04 or later)


def test_refolding_a_batch_of_mismatches_probes_them_by_id_before_any_statistics(
    services: Services, read_schema: str
) -> None:
    """A rebuild or a new schema catching up writes mismatch_events before autovacuum has
    analysed it. The refresh must still find each mismatch's detection through an index
    led by mismatch_id: through 0005's index led by event_time, each probe scanned the
    whole index, and a batch's refresh grew with the table (280 us a row at 40,000)."""
    body = (_MIGRATIONS / "0012_stored_exceptions_and_ageing.sql").read_text()
    insert = body.split("DELETE FROM exception_state WHERE mismatch_id = ANY (ids);\n", 1)[1]
    insert = insert.split("\nEND;", 1)[0].replace("unnest(ids)", "unnest(%(ids)s::text[])")
    ids = [f"M-{i:05d}" for i in range(12_000)]
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        use_schema(conn, read_schema)
        conn.execute("ALTER TABLE mismatch_events SET (autovacuum_enabled = false)")
        for start in range(0, len(ids), 3000):  # batches, as a projection writes them
            conn.execute(
                "INSERT INTO mismatch_events (event_id, mismatch_id, kind, event_time, pos,"
                " reason, currency, difference)"
                " SELECT 'e-' || m, m, 'detected', now(), 1, 'amount_mismatch', 'CNY', 1"
                " FROM unnest(%s::text[]) m",
                (ids[start : start + 3000],),
            )
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(("EXPLAIN " + insert).encode(), {"ids": ids[:3000]}).fetchall()
        )
    assert "mismatch_events_detected on" not in plan, plan
    assert "mismatch_events_detection on" in plan, plan
