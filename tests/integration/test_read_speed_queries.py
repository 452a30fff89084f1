"""The narrower queries behind the overview, the daily report and credit exposure (issue
#19's and #20's speed at a million orders) give what the views they stand for give, on a
read schema fed by a simulated month through the real worker and projection, and after a
rebuild."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from projections.migrate import migrate
from projections.rebuild import rebuild
from projections.reports import DAILY_OF_DAY, Reports
from services.web.queries import ReadModels
from tests.conftest import RunningWorker, Services
from tests.factories import unique
from tests.pipeline_support import fill_read_schema
from tests.projection_support import query
from tests.web_support import catch_up_timeline, start_timeline_at_end

pytestmark = pytest.mark.integration

# credit_exposure as migration 0003 defined it: summed over balance_current on each query.
_EXPOSURE_BEFORE = """
WITH exposure AS (
    SELECT customer_id, currency, sum(open_balance) AS exposure, count(*) AS open_orders
    FROM balance_current WHERE open_balance > 0 AND customer_id IS NOT NULL
    GROUP BY customer_id, currency
),
last_credit AS (
    SELECT DISTINCT ON (customer_id) customer_id, kind
    FROM credit_events ORDER BY customer_id, pos DESC
),
breaches AS (
    SELECT customer_id, count(*) AS breaches, max(at) AS last_breach_at
    FROM credit_events WHERE kind = 'breached' GROUP BY customer_id
)
SELECT coalesce(e.customer_id, c.customer_id) AS customer_id, c.name AS customer_name,
       coalesce(e.currency, c.currency) AS currency, coalesce(e.exposure, 0) AS exposure,
       coalesce(e.open_orders, 0) AS open_orders, c.credit_limit,
       CASE WHEN c.credit_limit > 0 AND c.currency = coalesce(e.currency, c.currency)
            THEN round(coalesce(e.exposure, 0) / c.credit_limit, 4) END AS utilisation,
       coalesce(l.kind = 'breached', false) AS breached,
       coalesce(b.breaches, 0) AS breaches, b.last_breach_at
FROM exposure e
FULL JOIN customers c ON c.customer_id = e.customer_id
LEFT JOIN last_credit l ON l.customer_id = coalesce(e.customer_id, c.customer_id)
LEFT JOIN breaches b ON b.customer_id = coalesce(e.customer_id, c.customer_id)
"""

_OPEN_BY_CUSTOMER = (
    "SELECT customer_id, currency, exposure, open_orders FROM open_by_customer"
    " WHERE open_orders > 0 ORDER BY 1, 2"
)
_SUMMED = (
    "SELECT customer_id, currency, sum(open_balance), count(*) FROM balance_current"
    " WHERE open_balance > 0 GROUP BY 1, 2 ORDER BY 1, 2"
)


def _drop(services: Services, *schemas: str) -> None:
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def month(services: Services, worker: RunningWorker) -> Iterator[str]:
    schema = f"test_speed_{unique('m').replace('-', '_')}"
    migrate(services.database_url, schema)
    try:
        start_timeline_at_end(services, schema)
        fill_read_schema(services, worker, schema, orders=300, days=22)
        catch_up_timeline(services, schema)  # the exception queue's table
        yield schema
    finally:
        _drop(services, schema)


def _days_with_facts(services: Services, schema: str) -> list[date]:
    """Every day of the view, one day before the first and one after the last."""
    days = [r[0] for r in query(services, schema, "SELECT DISTINCT day FROM daily_recon_report")]
    assert len(days) >= 20
    return sorted({*days, min(days) - timedelta(days=1), max(days) + timedelta(days=1)})


def test_the_daily_report_of_one_day_equals_the_view_for_every_day(
    services: Services, month: str
) -> None:
    columns = (
        "day, channel, currency, orders, paid, settled, matched, matched_rate, mismatches,"
        " mismatches_by_reason, written_off"
    )
    for day in _days_with_facts(services, month):
        view = query(
            services,
            month,
            f"SELECT {columns} FROM daily_recon_report WHERE day = %s ORDER BY 2, 3",
            (day,),
        )
        one_day = query(
            services, month, f"SELECT {columns} FROM ({DAILY_OF_DAY}) r ORDER BY 2, 3", {"day": day}
        )
        assert one_day == view, day
    # The stream's month has paid, settled, matched, mismatched and written-off amounts.
    totals = query(
        services,
        month,
        "SELECT sum(paid), sum(settled), sum(matched), sum(mismatches), sum(written_off)"
        " FROM daily_recon_report",
    )[0]
    assert all(t > 0 for t in totals), totals


def test_the_overview_totals_and_open_reasons_equal_the_views(
    services: Services, month: str
) -> None:
    read = ReadModels(services.database_url, month)
    for day in _days_with_facts(services, month):
        expected = query(
            services,
            month,
            "SELECT currency, sum(orders), sum(matched),"
            " CASE WHEN sum(orders) > 0 THEN round(sum(matched) / sum(orders), 4) END,"
            " sum(paid), sum(settled), sum(written_off)"
            " FROM daily_recon_report WHERE day = %s GROUP BY currency ORDER BY currency",
            (day,),
        )
        assert [tuple(r.values()) for r in read.day_totals(day)] == expected, day
    open_reasons = query(
        services,
        month,
        "SELECT reason, count(*) FROM exceptions WHERE status <> 'resolved'"
        " GROUP BY reason ORDER BY reason",
    )
    assert len(open_reasons) >= 5
    assert [tuple(r.values()) for r in read.open_by_reason()] == open_reasons


def _rows(services: Services, schema: str, text: str) -> list[tuple[Any, ...]]:
    return query(services, schema, text)


def test_exposure_kept_per_customer_equals_the_sum_over_current_balances(
    services: Services, month: str
) -> None:
    kept = _rows(services, month, _OPEN_BY_CUSTOMER)
    assert len(kept) >= 20
    assert kept == _rows(services, month, _SUMMED)
    # A customer whose orders are all settled keeps a row of nothing.
    assert _rows(
        services,
        month,
        "SELECT count(*) FROM open_by_customer WHERE open_orders = 0 AND exposure <> 0",
    ) == [(0,)]
    ordering = " ORDER BY customer_id, currency"
    assert _rows(services, month, "SELECT * FROM credit_exposure" + ordering) == _rows(
        services, month, f"SELECT * FROM ({_EXPOSURE_BEFORE}) e" + ordering
    )


@pytest.mark.parametrize("limit", [5, 20, 100_000])
def test_the_largest_exposures_equal_the_view_in_its_order(
    services: Services, month: str, limit: int
) -> None:
    read = ReadModels(services.database_url, month)
    expected = _rows(
        services,
        month,
        f"SELECT * FROM credit_exposure ORDER BY exposure DESC, customer_id, currency"
        f" LIMIT {limit}",
    )
    found = [tuple(r.values()) for r in read.largest_exposures(limit)]
    # Ties of exposure and customer (two currencies) may come in either order.
    assert sorted(found, key=lambda r: (-r[3], r[0], r[2])) == expected
    assert [(r[3], r[0]) for r in found] == [(r[3], r[0]) for r in expected]


def test_the_daily_report_command_reads_the_one_day_query(services: Services, month: str) -> None:
    day = max(_days_with_facts(services, month)) - timedelta(days=3)
    reports = Reports(services.database_url, month)
    try:
        report = reports.daily(day)
    finally:
        reports.close()
    assert report.rows
    assert report.rows == query(
        services,
        month,
        "SELECT channel, currency, orders, paid, settled, matched, matched_rate, mismatches,"
        " mismatches_by_reason, written_off FROM daily_recon_report WHERE day = %s"
        " ORDER BY channel, currency",
        (day,),
    )


def test_a_rebuild_keeps_the_same_exposure_per_customer(services: Services, month: str) -> None:
    live = f"test_rebuilt_{unique('x').replace('-', '_')}"
    try:
        done = rebuild(services.kafka_bootstrap, services.database_url, live, swap=False)
        assert _rows(services, done.schema, _OPEN_BY_CUSTOMER) == _rows(
            services, done.schema, _SUMMED
        )
        assert _rows(services, done.schema, _OPEN_BY_CUSTOMER)
    finally:
        _drop(services, live, f"{live}_build")
