"""AR ageing and DSO as of given days, against figures computed by hand.

Four orders of one customer, in CNY (amounts in yuan, days counted by hand):
  A  receivable 100.00 on 2024-01-31 (a month end), due 2024-02-29 (a leap day), unpaid
  B  receivable 200.00 on 2024-03-01, due 2024-03-31, paid in full on its due date
  C  receivable 300.00 on 2024-01-02, due 2024-01-31, 120.00 paid on 2024-02-15
     (partially paid, overdue)
  D  receivable  50.00 on 2023-10-31, due 2023-11-30, unpaid (channel b2b)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from projections.migrate import migrate
from projections.reports import Reports
from schemas import events as ev
from schemas.topics import ALERTS
from tests.conftest import Services
from tests.factories import event, unique
from tests.kafka_support import OutputWatcher
from tests.projection_support import balance, catch_up, publish, start_at_end

pytestmark = pytest.mark.integration


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def ledger_history(services: Services) -> Iterator[tuple[str, str]]:
    schema = f"test_{unique('ageing').replace('-', '_')}"
    migrate(services.database_url, schema)
    start_at_end(services, schema)
    customer = unique("C")
    a, b, c, d = (unique(n) for n in "ABCD")
    publish(
        services,
        [
            balance(
                a,
                _at("2024-01-31T10:00"),
                receivable="100.00",
                due="2024-02-29",
                customer_id=customer,
            ),
            balance(
                b,
                _at("2024-03-01T09:00"),
                receivable="200.00",
                due="2024-03-31",
                customer_id=customer,
            ),
            balance(
                b,
                _at("2024-03-31T15:00"),
                receivable="200.00",
                paid="200.00",
                status="paid",
                due="2024-03-31",
                customer_id=customer,
            ),
            balance(
                c,
                _at("2024-01-02T08:00"),
                receivable="300.00",
                due="2024-01-31",
                customer_id=customer,
            ),
            balance(
                c,
                _at("2024-02-15T12:00"),
                receivable="300.00",
                paid="120.00",
                due="2024-01-31",
                customer_id=customer,
            ),
            balance(
                d,
                _at("2023-10-31T23:30"),
                receivable="50.00",
                due="2023-11-30",
                customer_id=customer,
                channel="b2b",
            ),
        ],
    )
    catch_up(services, schema)
    yield schema, customer
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# Open amounts per bucket: not due, 1-30, 31-60, 61-90, >90 days past due, total.
@pytest.mark.parametrize(
    ("as_of", "buckets"),
    [
        ("2023-12-31", ("0", "0", "50.00", "0", "0", "50.00")),  # D 31 days late
        ("2024-01-31", ("400.00", "0", "0", "50.00", "0", "450.00")),  # C due today: not due
        ("2024-02-29", ("100.00", "180.00", "0", "0", "50.00", "330.00")),  # leap day: A due
        ("2024-03-01", ("200.00", "280.00", "0", "0", "50.00", "530.00")),  # A 1 day late
        ("2024-03-30", ("200.00", "100.00", "180.00", "0", "50.00", "530.00")),  # A 30, C 59
        ("2024-03-31", ("0", "0", "280.00", "0", "50.00", "330.00")),  # B paid on its due date
    ],
)
def test_ageing_by_customer_matches_hand_computed_buckets(
    services: Services, ledger_history: tuple[str, str], as_of: str, buckets: tuple[str, ...]
) -> None:
    schema, customer = ledger_history
    reports = Reports(services.database_url, schema)
    try:
        report = reports.ageing(date.fromisoformat(as_of), "customer")
    finally:
        reports.close()
    assert report.headers == (
        "customer",
        "currency",
        "not_due",
        "1-30",
        "31-60",
        "61-90",
        ">90",
        "total",
    )
    assert report.rows == [(customer, "CNY", *(Decimal(v) for v in buckets))]


def test_ageing_by_channel_splits_the_same_items(
    services: Services, ledger_history: tuple[str, str]
) -> None:
    schema, _ = ledger_history
    reports = Reports(services.database_url, schema)
    try:
        rows = reports.ageing(date(2024, 2, 29), "channel").rows
    finally:
        reports.close()
    zero = Decimal(0)
    assert rows == [
        ("b2b", "CNY", zero, zero, zero, zero, Decimal("50.00"), Decimal("50.00")),
        ("web", "CNY", Decimal("100.00"), Decimal("180.00"), zero, zero, zero, Decimal("280.00")),
    ]


# DSO = receivables at the end of the day / credit sales of the 90 days ending that day x 90.
@pytest.mark.parametrize(
    ("as_of", "receivables", "sales", "dso", "flagged"),
    [
        ("2023-12-31", "50.00", "50.00", "90.00", True),  # D alone
        ("2024-02-29", "330.00", "400.00", "74.25", True),  # window from 2023-12-02: A + C
        (
            "2024-03-31",
            "330.00",
            "600.00",
            "49.50",
            False,
        ),  # window from 01-02: A+B+C; = alert line
        ("2024-04-01", "330.00", "300.00", "99.00", True),  # C (01-02) has left the window
    ],
)
def test_dso_matches_hand_computed_figures(
    services: Services,
    ledger_history: tuple[str, str],
    as_of: str,
    receivables: str,
    sales: str,
    dso: str,
    flagged: bool,
) -> None:
    schema, _ = ledger_history
    reports = Reports(services.database_url, schema)
    try:
        ((_day, currency, ar, credit_sales, dso_days, target, alert, is_flagged),) = reports.dso(
            date.fromisoformat(as_of)
        ).rows
    finally:
        reports.close()
    assert (currency, ar, credit_sales, dso_days) == (
        "CNY",
        Decimal(receivables),
        Decimal(sales),
        Decimal(dso),
    )
    assert (target, alert) == (Decimal(45), Decimal("49.50"))  # the default target x 1.1
    assert is_flagged is flagged


def test_closing_a_day_above_the_alert_line_publishes_one_alert(
    services: Services, ledger_history: tuple[str, str]
) -> None:
    schema, _ = ledger_history
    watcher = OutputWatcher(services.kafka_bootstrap, [ALERTS.name])
    try:
        publish(
            services,
            [
                event("day.closed", {"date": "2024-03-31"}, at=_at("2024-04-01T00:00")),
                event("day.closed", {"date": "2024-04-01"}, at=_at("2024-04-02T00:00")),
            ],
        )
        catch_up(services, schema)
        catch_up(services, schema)  # a restart publishes nothing again
        watcher.collect(lambda s: len(s) >= 1, timeout=30)
        with pytest.raises(AssertionError):  # both runs have flushed: a second would be here
            watcher.collect(lambda s: len(s) >= 2, timeout=5)
        seen = watcher.seen
    finally:
        watcher.close()
    alerts = [e for _, e in seen if isinstance(e, ev.DsoTargetExceeded)]
    assert [(a.data.date, a.data.currency, a.data.dso_days) for a in alerts] == [
        (date(2024, 4, 1), "CNY", Decimal("99.00"))
    ]
    with psycopg.connect(services.database_url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT day, dso_days, flagged FROM {}.dso_daily ORDER BY day").format(
                sql.Identifier(schema)
            )
        ).fetchall()
        published = conn.execute(
            sql.SQL("SELECT day, published FROM {}.dso_alerts").format(sql.Identifier(schema))
        ).fetchall()
    assert rows == [
        (date(2024, 3, 31), Decimal("49.50"), False),
        (date(2024, 4, 1), Decimal("99.00"), True),
    ]
    assert published == [(date(2024, 4, 1), True)]
