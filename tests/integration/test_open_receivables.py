"""The Finance dashboard's per-currency views give what the passes over every open item or
balance they replace gave, on a read schema fed by the real worker and projection:
open_receivables (migration 0011, the "Open receivables" panel) and known_currencies and
report_currencies (0013, the currency variable and `o2c report dso --as-of`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningWorker, Services
from tests.factories import T0, unique
from tests.projection_support import (
    balance,
    catch_up,
    publish,
    query,
    simulated_month,
    start_at_end,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def filled(services: Services, worker: RunningWorker) -> Iterator[str]:
    with simulated_month(services, worker, "test_open", orders=200, days=10) as schema:
        yield schema


def test_open_receivables_equal_open_items_summed_per_currency(
    services: Services, filled: str
) -> None:
    summed = query(
        services,
        filled,
        "SELECT currency, sum(open_amount), count(*) FROM open_items GROUP BY 1 ORDER BY 1",
    )
    assert summed  # the run leaves open balances
    view = query(
        services,
        filled,
        "SELECT currency, open_amount, open_items FROM open_receivables ORDER BY 1",
    )
    assert view == summed


def test_known_currencies_are_those_of_the_balances_and_the_closed_days_reports(
    services: Services, filled: str
) -> None:
    of_balances = query(services, filled, "SELECT DISTINCT currency FROM balance_history")
    assert sorted(query(services, filled, "SELECT currency FROM report_currencies")) == sorted(
        of_balances
    )
    of_reports = query(
        services,
        filled,
        "SELECT DISTINCT r.currency FROM daily_recon_report r JOIN closed_days c USING (day)"
        " WHERE r.currency IS NOT NULL",
    )
    assert of_reports
    known = query(services, filled, "SELECT currency FROM known_currencies ORDER BY 1")
    assert known == sorted(set(of_balances) | set(of_reports))


def test_a_currency_whose_orders_are_all_paid_is_still_known(
    services: Services, read_schema: str
) -> None:
    """Its DSO and daily report rows still matter: the dashboard's currency variable read
    open items once, and would have dropped it."""
    start_at_end(services, read_schema)
    publish(
        services,
        [
            balance(
                unique("ORD"), T0, receivable="80.00", paid="80.00", status="paid", currency="CHF"
            )
        ],
    )
    catch_up(services, read_schema)
    assert query(services, read_schema, "SELECT currency FROM open_items") == []
    assert query(services, read_schema, "SELECT currency FROM known_currencies") == [("CHF",)]
    assert query(services, read_schema, "SELECT currency FROM report_currencies") == [("CHF",)]
