"""daily_recon_report's rows stored per closed day (migration 0010) equal what the view
computed on every query before (migration 0003's definition, run here as it was) for every
day of a simulated month, closed or not, and after a rebuild (which cuts its batches
differently). A later order.matched naming an order placed days before changes that
day's "matched": the month's matches arrive days after the orders, so a stored day not
recomputed then would differ here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from projections.migrate import use_schema
from projections.rebuild import rebuild
from tests.conftest import RunningWorker, Services
from tests.factories import event, order_placed, unique
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
_VIEW_BEFORE = re.search(
    r"CREATE VIEW daily_recon_report AS\n(.*?);\n",
    (_MIGRATIONS / "0003_read_models.sql").read_text(),
    re.DOTALL,
)
assert _VIEW_BEFORE is not None
_ON_THE_FLY = _VIEW_BEFORE.group(1)
_COLUMNS = (
    "day, channel, currency, orders, paid, settled, matched, matched_rate, mismatches,"
    " mismatches_by_reason, written_off"
)
_ORDER = " ORDER BY 1, 2, 3"


@pytest.fixture(scope="module")
def month(services: Services, worker: RunningWorker) -> Iterator[str]:
    with simulated_month(services, worker, "test_recon") as schema:
        yield schema


def assert_stored_equals_on_the_fly(services: Services, schema: str) -> int:
    """Every closed day's stored rows, and the view over every day, equal 0003's view;
    returns how many closed days with rows were compared."""
    on_the_fly = query(services, schema, f"SELECT {_COLUMNS} FROM ({_ON_THE_FLY}) r{_ORDER}")
    assert query(services, schema, f"SELECT {_COLUMNS} FROM daily_recon_report{_ORDER}") == (
        on_the_fly
    )
    closed = {r[0] for r in query(services, schema, "SELECT day FROM closed_days")}
    stored = query(services, schema, f"SELECT {_COLUMNS} FROM recon_by_day{_ORDER}")
    assert stored == [r for r in on_the_fly if r[0] in closed]
    return len({r[0] for r in stored})


def test_stored_daily_report_equals_the_on_the_fly_view_for_every_closed_day(
    services: Services, month: str
) -> None:
    assert assert_stored_equals_on_the_fly(services, month) >= 20
    # The month has matched, paid, settled, mismatched and written-off amounts.
    totals = query(
        services,
        month,
        "SELECT sum(matched), sum(paid), sum(settled), sum(mismatches), sum(written_off)"
        " FROM recon_by_day",
    )[0]
    assert all(t > 0 for t in totals), totals


def test_days_not_stored_are_computed_on_the_fly_as_before(services: Services, month: str) -> None:
    # Every day of the simulated month closes; so that the view computes some days, a
    # transaction forgets that half of them were stored (rolled back after).
    with psycopg.connect(services.database_url) as conn:
        use_schema(conn, month)
        forgotten = conn.execute(
            "DELETE FROM materialised_days WHERE extract(day FROM day)::int % 2 = 0 RETURNING day"
        ).fetchall()
        assert len(forgotten) >= 10
        view = conn.execute(f"SELECT {_COLUMNS} FROM daily_recon_report{_ORDER}").fetchall()
        before = conn.execute(f"SELECT {_COLUMNS} FROM ({_ON_THE_FLY}) r{_ORDER}").fetchall()
        conn.rollback()
    assert view == before
    # Forgotten days with facts are in the view, computed now.
    assert len({r[0] for r in forgotten} & {r[0] for r in view}) >= 10


def test_a_rebuild_stores_daily_report_rows_equal_to_the_on_the_fly_view(
    services: Services, month: str
) -> None:
    live = f"test_recon_rebuilt_{unique('r').replace('-', '_')}"
    try:
        done = rebuild(services.kafka_bootstrap, services.database_url, live, swap=False)
        assert assert_stored_equals_on_the_fly(services, done.schema) >= 20
    finally:
        drop_schemas(services, live, f"{live}_build")


# A batch of one message is always full: the projection is catching up and defers the
# closed days a late fact changes until it has read everything.
@pytest.mark.parametrize("batch_max", [5000, 1], ids=["caught-up", "catching-up"])
def test_a_later_match_recomputes_the_closed_day_its_order_was_placed(
    services: Services, read_schema: str, batch_max: int
) -> None:
    start_at_end(services, read_schema)
    order = unique("ORD")
    publish(
        services,
        [
            order_placed(order, "100.00", currency="SGD", at=utc("2025-04-01T10:00")),
            event("day.closed", {"date": "2025-04-01"}, at=utc("2025-04-02T00:00")),
            event("day.closed", {"date": "2025-04-02"}, at=utc("2025-04-03T00:00")),
        ],
    )
    catch_up(services, read_schema, batch_max=batch_max)
    _day = "SELECT orders, matched FROM recon_by_day WHERE day = '2025-04-01' AND currency = 'SGD'"
    assert query(services, read_schema, _day) == [(1, 0)]

    # Matched two days after the day it was placed closed.
    matched = {
        "order_id": order,
        "customer_id": "C-1",
        "currency": "SGD",
        "receivable": "100.00",
        "paid": "100.00",
        "refunded": "0",
        "settled": "0",
        "written_off": "0",
    }
    publish(services, [event("order.matched", matched, at=utc("2025-04-03T09:00"))])
    catch_up(services, read_schema, batch_max=batch_max)

    assert query(services, read_schema, _day) == [(1, 1)]
    assert query(
        services, read_schema, f"SELECT {_COLUMNS} FROM daily_recon_report{_ORDER}"
    ) == query(services, read_schema, f"SELECT {_COLUMNS} FROM ({_ON_THE_FLY}) r{_ORDER}")
