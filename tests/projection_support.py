"""Helpers for read-side tests: synthetic outputs, runners that start at the end of the
topics, and table dumps to compare."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from projections.model import TOPICS
from projections.runner import ProjectionRunner, Stats, end_positions, unique_group
from schemas.base import CloudEvent
from services.database_roles import login_url
from services.kafka_io import EventProducer
from tests.conftest import RunningWorker, Services
from tests.factories import event, unique

PROJECTED_TABLES = (
    "customers",
    "orders",
    "balance_history",
    "balance_current",
    "order_matches",
    "writeoffs",
    "mismatch_events",
    "exception_state",
    "credit_events",
    "closed_days",
    "processed_events",
    "currencies",
    "dso_by_day",
    "ageing_by_day",
    "ageing_groups_by_day",
    "ar_ageing_by_day",
    "recon_by_day",
    "materialised_days",
)


def balance(
    order_id: str,
    at: datetime,
    *,
    receivable: str,
    paid: str = "0",
    due: str | None = None,
    status: str | None = None,
    customer_id: str = "C-AGE",
    currency: str = "CNY",
    channel: str = "web",
) -> CloudEvent:
    from decimal import Decimal

    open_balance = Decimal(receivable) - Decimal(paid)
    data: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "currency": currency,
        "receivable": receivable,
        "paid": paid,
        "refunded": "0",
        "settled": "0",
        "open_balance": str(open_balance),
        "status": status or ("open" if Decimal(paid) == 0 else "partially_paid"),
        "channel": channel,
    }
    if due is not None:
        data["due_date"] = due
    return event("balance.changed", data, at=at)


def publish(services: Services, events: list[CloudEvent]) -> None:
    out = EventProducer(services.kafka_bootstrap)
    for e in events:
        out.send(e)
    out.flush()


def projector_url(services: Services) -> str:
    """The projector's login, as `o2c projections run` connects by default."""
    return login_url(services.database_url, "projector")


def runner(services: Services, schema: str, **options: Any) -> ProjectionRunner:
    return ProjectionRunner(
        services.kafka_bootstrap,
        projector_url(services),
        schema,
        group_id=unique_group("test-projection"),
        **options,
    )


def start_at_end(services: Services, schema: str) -> None:
    """Make the projection of `schema` start where the topics end now: it then sees only
    what the test publishes."""
    r = runner(services, schema)
    try:
        r.store.save_offsets(end_positions(services.kafka_bootstrap))
    finally:
        r.close()


def catch_up(services: Services, schema: str, **options: Any) -> Stats:
    """Run a projection of `schema` until it has read everything published so far."""
    targets = end_positions(services.kafka_bootstrap)
    r = runner(services, schema, **options)
    try:
        return r.run(until_offsets=targets, max_seconds=120)
    finally:
        r.close()


def dump(
    services: Services, schema: str, tables: tuple[str, ...] = PROJECTED_TABLES
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `tables`, in a canonical order."""
    with psycopg.connect(services.database_url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {}.{} t ORDER BY t::text").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            ).fetchall()
            for table in tables
        }


def query(services: Services, schema: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(services.database_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn.execute(text.encode(), params).fetchall()


def topic_names() -> list[str]:
    return [t.name for t in TOPICS]


def utc(text: str) -> datetime:
    """An ISO time without zone, read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def drop_schemas(services: Services, *schemas: str) -> None:
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def simulated_month(
    services: Services, worker: RunningWorker, prefix: str, *, orders: int = 300, days: int = 22
) -> Iterator[str]:
    """A fresh read schema fed by a simulated stretch (by default a month: 22 order days and
    the simulator's tail, every day closed), dropped afterwards."""
    # Imported here: tests.pipeline_support imports this module.
    from projections.migrate import migrate
    from tests.pipeline_support import fill_read_schema

    schema = f"{prefix}_{unique('m').replace('-', '_')}"
    migrate(services.database_url, schema)
    try:
        fill_read_schema(services, worker, schema, orders=orders, days=days)
        yield schema
    finally:
        drop_schemas(services, schema)
