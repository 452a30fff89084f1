"""DSO and ageing stored per closed day equal the on-the-fly computation over the balance
history, for every closed day of a simulated month, after late facts, and after a
rebuild (which cuts its batches differently). The rebuild's tables are compared row for
row with a live run's in test_projections.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from projections.rebuild import rebuild
from projections.reports import Reports
from tests.conftest import RunningWorker, Services
from tests.factories import event, unique
from tests.projection_support import (
    balance,
    catch_up,
    drop_schemas,
    publish,
    query,
    simulated_month,
    start_at_end,
    utc,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def month(services: Services, worker: RunningWorker) -> Iterator[str]:
    with simulated_month(services, worker, "test_month") as schema:
        yield schema


def _closed_days(services: Services, schema: str) -> list[date]:
    return [r[0] for r in query(services, schema, "SELECT day FROM closed_days ORDER BY 1")]


def assert_stored_equals_on_the_fly(services: Services, schema: str) -> int:
    """Every closed day's stored DSO and ageing (by customer, channel and region) equal
    the computation from the balance history; returns how many days were compared."""
    days = _closed_days(services, schema)
    reports = Reports(services.database_url, schema)
    try:
        for day in days:
            assert reports.stored(day), day
            stored, computed = reports.dso(day), reports.dso(day, on_the_fly=True)
            assert stored.headers == computed.headers
            assert stored.rows == computed.rows, f"DSO of {day}"
            for by in ("customer", "channel", "region"):
                stored, computed = (
                    reports.ageing(day, by),
                    reports.ageing(day, by, on_the_fly=True),
                )
                assert stored.rows == computed.rows, f"ageing of {day} by {by}"
    finally:
        reports.close()
    return len(days)


def test_stored_dso_and_ageing_equal_the_on_the_fly_computation_for_every_closed_day(
    services: Services, month: str
) -> None:
    compared = assert_stored_equals_on_the_fly(services, month)
    assert compared >= 28  # 22 order days and the tail, each closed
    rows = query(services, month, "SELECT count(*), count(dso_days) FROM dso_daily")
    assert rows[0][1] > 0


def test_ar_ageing_reads_the_stored_snapshot_of_the_last_closed_day(
    services: Services, month: str
) -> None:
    columns = "as_of, customer_id, channel, region, currency"
    buckets = {
        "not_due": "not_due",
        "days_1_30": "1-30",
        "days_31_60": "31-60",
        "days_61_90": "61-90",
        "days_over_90": ">90",
    }
    on_the_fly = (
        f"SELECT {columns}, "
        + ", ".join(
            f"sum(open_amount) FILTER (WHERE bucket = '{b}') AS {c}" for c, b in buckets.items()
        )
        + f", sum(open_amount) AS total FROM ar_ageing_items GROUP BY {columns}"
    )
    ordering = " ORDER BY 1, 2, 3, 4, 5"
    stored = query(services, month, f"SELECT * FROM ar_ageing{ordering}")
    assert stored
    assert stored == query(services, month, on_the_fly + ordering)


def test_a_rebuild_stores_figures_equal_to_the_on_the_fly_computation(
    services: Services, month: str
) -> None:
    live = f"test_rebuilt_{unique('r').replace('-', '_')}"
    try:
        done = rebuild(services.kafka_bootstrap, services.database_url, live, swap=False)
        assert assert_stored_equals_on_the_fly(services, done.schema) >= 28
    finally:
        drop_schemas(services, live, f"{live}_build")


# A batch of one message is always full: the projection is catching up and defers the
# closed days a late fact changes until it has read everything.
@pytest.mark.parametrize("batch_max", [5000, 1], ids=["caught-up", "catching-up"])
def test_late_facts_and_master_data_recompute_the_closed_days_they_change(
    services: Services, read_schema: str, batch_max: int
) -> None:
    start_at_end(services, read_schema)
    customer = unique("C")
    first, late = unique("ORD"), unique("ORD")
    publish(
        services,
        [
            event(
                "customer.upserted",
                {"customer_id": customer, "name": "Late Ltd", "region": "north"},
                at=utc("2025-03-01T08:00"),
            ),
            balance(
                first,
                utc("2025-03-03T10:00"),
                receivable="100.00",
                due="2025-03-02",
                customer_id=customer,
                currency="SGD",
                channel="web",
            ),
            event("day.closed", {"date": "2025-03-03"}, at=utc("2025-03-04T00:00")),
        ],
    )
    catch_up(services, read_schema, batch_max=batch_max)
    _dso = "SELECT receivables FROM dso_daily WHERE day = '2025-03-03' AND currency = 'SGD'"
    assert query(services, read_schema, _dso) == [(100,)]

    # A fact of the closed day arrives after its close; the customer moves region.
    publish(
        services,
        [
            balance(
                late,
                utc("2025-03-03T23:50"),
                receivable="40.00",
                due="2025-03-31",
                customer_id=customer,
                currency="SGD",
                channel="web",
            ),
            event(
                "customer.upserted",
                {"customer_id": customer, "name": "Late Ltd", "region": "south"},
                at=utc("2025-03-04T09:00"),
            ),
        ],
    )
    catch_up(services, read_schema, batch_max=batch_max)

    assert query(services, read_schema, _dso) == [(140,)]
    reports = Reports(services.database_url, read_schema)
    try:
        by_region = reports.ageing(date(2025, 3, 3), "region")
        assert by_region.rows == reports.ageing(date(2025, 3, 3), "region", on_the_fly=True).rows
        # region, currency, not_due, 1-30, 31-60, 61-90, >90, total
        assert by_region.rows == [("south", "SGD", 40, 100, 0, 0, 0, 140)]
    finally:
        reports.close()
