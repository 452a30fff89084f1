"""DSO alerts: decided when a business day closes, kept in an outbox table, published once.

A closed day whose DSO is above target x 1.1 gets one `o2c.dso.target_exceeded.v1` on
o2c.alerts, with an id derived from the day and currency. The decision is recorded in
`dso_alerts` in the read side's own transaction; publishing follows, and a row turns
`published` only once the broker has acknowledged it, so a crash in between publishes it
at the next start (with the same id) and a rebuild, which copies the table, never again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from projections import metrics
from projections.store import Store
from schemas import events as ev
from schemas.codec import encode
from schemas.events import type_name
from schemas.topics import ALERTS
from services.domain.outputs import derived_id
from services.kafka_io import EventProducer


def alert_event(
    day: date,
    currency: str,
    dso: Decimal,
    target: Decimal,
    alert: Decimal,
    receivables: Decimal,
    sales: Decimal,
    source: str,
) -> ev.DsoTargetExceeded:
    kind = type_name(ev.DsoTargetExceeded)
    return ev.DsoTargetExceeded(
        specversion="1.0",
        id=derived_id("dso", day.isoformat(), currency, kind),
        source=source,
        type=kind,
        # The end of the business day: event time, so a replay repeats the alert exactly.
        time=datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC),
        subject=currency,
        data=ev.DsoTargetExceededData(
            date=day,
            currency=currency,
            dso_days=dso,
            target_days=target,
            alert_days=alert,
            receivables=receivables,
            credit_sales=sales,
        ),
    )


def raise_for_days(store: Store, producer: EventProducer, days: Sequence[date], source: str) -> int:
    """Record an alert for each flagged (day, currency) among `days`, then publish."""
    rows: list[Any] = store.conn.execute(
        "SELECT day, currency, dso_days, target_days, alert_days, receivables, credit_sales_90d"
        " FROM dso_daily WHERE day = ANY(%s) AND flagged ORDER BY day, currency",
        (list(days),),
    ).fetchall()
    for day, currency, dso, target, alert, receivables, sales in rows:
        event = alert_event(day, currency, dso, target, alert, receivables, sales, source)
        recorded = store.conn.execute(
            "INSERT INTO dso_alerts (day, currency, event_id, dso_days, payload)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING day",
            (day, currency, event.id, dso, encode(event)),
        ).fetchone()
        if recorded is not None:
            metrics.DSO_ALERTS.labels(currency).inc()
    return publish_pending(store, producer)


def publish_pending(store: Store, producer: EventProducer) -> int:
    pending: list[Any] = store.conn.execute(
        "SELECT day, currency, payload FROM dso_alerts WHERE NOT published ORDER BY day, currency"
    ).fetchall()
    if not pending:
        return 0
    for _day, currency, payload in pending:
        producer.send_raw(ALERTS.name, str(currency), bytes(payload))
    producer.flush()
    with store.conn.cursor() as cur:
        cur.executemany(
            "UPDATE dso_alerts SET published = true WHERE day = %s AND currency = %s",
            [(day, currency) for day, currency, _ in pending],
        )
    return len(pending)
