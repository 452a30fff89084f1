"""open_receivables (migration 0011), read by the Finance dashboard's "Open receivables"
panel, gives what summing open_items per currency gave, on a read schema fed by the real
worker and projection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningWorker, Services
from tests.projection_support import query, simulated_month

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
