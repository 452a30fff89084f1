"""open_receivables (migration 0011), read by the Finance dashboard's "Open receivables"
panel, gives what summing open_items per currency gave, on a read schema fed by the real
worker and projection."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from projections.migrate import migrate
from tests.conftest import RunningWorker, Services
from tests.factories import unique
from tests.pipeline_support import fill_read_schema
from tests.projection_support import query

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def filled(services: Services, worker: RunningWorker) -> Iterator[str]:
    schema = f"test_open_{unique('m').replace('-', '_')}"
    migrate(services.database_url, schema)
    try:
        fill_read_schema(services, worker, schema, orders=200, days=10)
        yield schema
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


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
