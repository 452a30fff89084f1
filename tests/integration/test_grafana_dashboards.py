"""Every SQL query of the Grafana dashboards (deploy/grafana/dashboards), expanded as Grafana
expands it, runs against a read schema filled by a small pipeline run (simulator, worker,
projections) and returns the columns its panel shows. A panel that names a view or a
column the read models lack fails here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from bench.grafana import SqlQuery, dashboards, interpolate, sql_queries
from tests.conftest import RunningWorker, Services
from tests.pipeline_support import fill_read_schema

pytestmark = pytest.mark.integration

# What each panel shows, by dashboard / panel title / query: the columns its
# visualisation reads (a time series needs "time" and its values; a string column splits
# the series by it). The columns must come back in this order.
EXPECTED_COLUMNS: dict[str, tuple[str, ...]] = {
    "finance / Last closed business day / A": ("day",),
    "finance / Open receivables / A": ("currency", "open_amount", "open_items"),
    "finance / Match rate in the time range / A": ("match_rate",),
    "finance / Match rate per day / A": ("time", "match_rate"),
    "finance / DSO per currency vs target / A": ("time", "currency", "dso_days", "alert_days"),
    "finance / AR ageing buckets, as of the last closed day / A": (
        "currency",
        "not_due",
        "1-30",
        "31-60",
        "61-90",
        ">90",
    ),
    "finance / Open exceptions by reason / A": ("reason", "exceptions", "amount"),
    "finance / Top exposures / A": (
        "customer_id",
        "customer_name",
        "currency",
        "exposure",
        "credit_limit",
        "utilisation",
        "breached",
        "open_orders",
    ),
    "finance / Write-offs per day / A": ("time", "currency", "written_off"),
    "finance / DSO, last closed day / A": (
        "currency",
        "receivables",
        "credit_sales_90d",
        "dso_days",
        "target_days",
        "flagged",
    ),
    "finance / variable currency / query": ("currency",),
    "operations / Last closed business day / A": ("day",),
    "operations / Open exceptions / A": ("open", "assigned"),
}

# Panels that must show rows after the pipeline run: a query that returns nothing from
# a month of orders with every kind of anomaly is probably filtering the wrong way.
MUST_HAVE_ROWS = frozenset(EXPECTED_COLUMNS)

# The simulated stream starts 2026-11-02 (SimConfig); Grafana's range covers it.
TIME_FROM = datetime(2026, 10, 1, tzinfo=UTC)
TIME_TO = datetime(2027, 1, 1, tzinfo=UTC)


def _all_queries() -> list[tuple[SqlQuery, list[dict[str, Any]]]]:
    found = []
    for name, dashboard in dashboards().items():
        variables = dashboard.get("templating", {}).get("list", [])
        found += [(q, variables) for q in sql_queries(name, dashboard)]
    return found


QUERIES = _all_queries()


@pytest.fixture(scope="module")
def filled_schema(services: Services, worker: RunningWorker) -> Iterator[str]:
    import uuid

    from projections.migrate import migrate

    schema = f"test_grafana_{uuid.uuid4().hex[:8]}"
    migrate(services.database_url, schema)
    try:
        fill_read_schema(services, worker, schema)
        yield schema
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _run(
    services: Services, schema: str, text: str, variables: list[dict[str, Any]]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    from services.database_roles import login_url

    # As Grafana's data source connects: the reader, who may read the views and no table.
    with psycopg.connect(login_url(services.database_url, "reader"), autocommit=True) as conn:
        # Grafana's user has no search_path of ours: only the schema-qualified names work.
        conn.execute("SET search_path TO pg_catalog")

        def options_of(variable: Mapping[str, Any]) -> list[str]:
            query = _expand(str(variable["query"]), variables, schema, options_of)
            return [str(r[0]) for r in conn.execute(query.encode()).fetchall()]

        cur = conn.execute(_expand(text, variables, schema, options_of).encode())
        return tuple(d.name for d in cur.description or ()), cur.fetchall()


def _expand(text: str, variables: list[dict[str, Any]], schema: str, options_of: Any) -> str:
    ours = [{**v, "query": schema} if v["name"] == "read_schema" else v for v in variables]
    return interpolate(text, ours, TIME_FROM, TIME_TO, options_of)


def test_every_sql_query_of_the_dashboards_has_its_expected_columns_listed() -> None:
    assert {q.name for q, _ in QUERIES} == set(EXPECTED_COLUMNS)


def test_every_dashboard_reads_the_read_schema_through_its_variable() -> None:
    for query, variables in QUERIES:
        names = {v["name"] for v in variables}
        assert "read_schema" in names, query.name
        assert "$read_schema." in query.sql, f"{query.name}: unqualified view"


@pytest.mark.parametrize("query", [q for q, _ in QUERIES], ids=lambda q: q.name)
def test_dashboard_query_runs_on_the_read_models_and_returns_the_panel_columns(
    services: Services, filled_schema: str, query: SqlQuery
) -> None:
    variables = next(v for q, v in QUERIES if q == query)
    columns, rows = _run(services, filled_schema, query.sql, variables)
    assert columns == EXPECTED_COLUMNS[query.name]
    if query.name in MUST_HAVE_ROWS:
        assert rows, f"{query.name}: no rows from the pipeline run"
    if query.format == "time_series":
        assert columns[0] == "time"
        assert all(isinstance(r[0], datetime) for r in rows)
