"""What the workbench's pages read: the contract's views in the read schema, and the
workbench's own tables (migration 0005). Reports that `o2c report` prints come from
projections/reports.py, so a page and the command show the same figures."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from projections.migrate import use_schema
from projections.reports import DAILY_OF_DAY, Report, Reports
from schemas import events as ev
from services.connections import connect_database

Row = dict[str, Any]
Sort = Literal["newest", "oldest", "largest"]
SORTS: tuple[Sort, ...] = ("newest", "oldest", "largest")
STATUSES = ("open", "assigned", "resolved")
PAGE_SIZE = 50

# Sort key of each order: (expression, descending). mismatch_id breaks ties, so that a
# page boundary (the keyset cursor) is exact.
_SORT_KEY: dict[Sort, tuple[str, bool]] = {
    "newest": ("detected_at", True),
    "oldest": ("detected_at", False),
    "largest": ("coalesce(amount, 0)", True),
}


@dataclass(frozen=True)
class QueueFilter:
    reason: str | None = None
    status: str | None = None
    owner: str | None = None
    currency: str | None = None
    customer: str | None = None
    min_age: int | None = None
    sort: Sort = "newest"

    def where(self) -> tuple[list[sql.Composable], list[Any]]:
        clauses: list[sql.Composable] = []
        params: list[Any] = []
        for column, value in (
            ("reason", self.reason),
            ("status", self.status),
            ("owner", self.owner),
            ("currency", self.currency),
            ("customer_id", self.customer),
        ):
            if value:
                clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if self.min_age is not None:
            clauses.append(sql.SQL("age_days >= %s"))
            params.append(self.min_age)
        return clauses, params


@dataclass(frozen=True)
class QueuePage:
    rows: list[Row]
    next_cursor: str | None
    filters: QueueFilter = field(default_factory=QueueFilter)


def encode_cursor(value: Any, mismatch_id: str) -> str:
    text = orjson.dumps([str(value), mismatch_id])
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    try:
        value, mismatch_id = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
    except (ValueError, TypeError):
        return None
    if not isinstance(value, str) or not isinstance(mismatch_id, str):
        return None
    return value, mismatch_id


# The queue's rows: the exception_queue table the timeline's projection keeps (the same
# rules as the `exceptions` view, indexed), with the view's age_days.
_QUEUE = (
    "SELECT q.mismatch_id, q.reason, q.severity, q.status, q.owner, q.currency, q.amount,"
    " q.order_id, q.customer_id, q.line_id, q.payout_id, q.detected_at,"
    " greatest(0, CASE WHEN q.status = 'resolved' THEN (q.last_time AT TIME ZONE 'UTC')::date"
    " ELSE t.day END - (q.detected_at AT TIME ZONE 'UTC')::date) AS age_days"
    " FROM exception_queue q CROSS JOIN business_today t WHERE q.detected_pos IS NOT NULL"
)

# The view credit_exposure's columns for the customers with the largest open balances.
LARGEST_EXPOSURES = """
WITH top AS (
    SELECT customer_id, currency, exposure, open_orders FROM open_by_customer
    WHERE open_orders > 0 AND customer_id IS NOT NULL
    ORDER BY exposure DESC, customer_id LIMIT %s
)
SELECT t.customer_id, c.name AS customer_name, t.currency, t.exposure, t.open_orders,
       c.credit_limit,
       CASE WHEN c.credit_limit > 0 AND c.currency = t.currency
            THEN round(t.exposure / c.credit_limit, 4) END AS utilisation,
       coalesce((SELECT l.kind = 'breached' FROM credit_events l
                 WHERE l.customer_id = t.customer_id ORDER BY l.pos DESC LIMIT 1), false)
           AS breached,
       b.breaches, b.last_breach_at
FROM top t
LEFT JOIN customers c ON c.customer_id = t.customer_id
CROSS JOIN LATERAL (SELECT count(*) AS breaches, max(e.at) AS last_breach_at
                    FROM credit_events e
                    WHERE e.customer_id = t.customer_id AND e.kind = 'breached') b
ORDER BY t.exposure DESC, t.customer_id
"""

# Actions published through the workbench that the projection has not applied yet.
_PENDING = (
    "EXISTS (SELECT 1 FROM web_actions a WHERE a.mismatch_id = e.mismatch_id AND NOT EXISTS"
    " (SELECT 1 FROM mismatch_events m WHERE m.event_id = a.event_id)) AS pending"
)


class ReadModels:
    def __init__(self, conninfo: str, schema: str) -> None:
        self.conninfo = conninfo
        self.schema = schema

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Row]]:
        with connect_database(self.conninfo, autocommit=True, row_factory=dict_row) as conn:
            use_schema(conn, self.schema)
            yield conn

    @contextmanager
    def reports(self) -> Iterator[Reports]:
        reports = Reports(self.conninfo, self.schema)
        try:
            yield reports
        finally:
            reports.close()

    # --- exceptions ---------------------------------------------------------------------

    def queue(self, filters: QueueFilter, cursor: str | None, size: int = PAGE_SIZE) -> QueuePage:
        expression, descending = _SORT_KEY[filters.sort]
        clauses, params = filters.where()
        after = decode_cursor(cursor) if cursor else None
        if after is not None:
            comparison = "<" if descending else ">"
            clauses.append(
                sql.SQL("({}, mismatch_id) {} (%s, %s)").format(
                    sql.SQL(expression), sql.SQL(comparison)
                )
            )
            params.extend(after)
        direction = sql.SQL("DESC" if descending else "ASC")
        query = sql.SQL(
            "SELECT e.*, {expression} AS sort_value, " + _PENDING + " FROM (" + _QUEUE + ") e"
            " {where} ORDER BY {expression} {direction}, mismatch_id {direction} LIMIT %s"
        ).format(
            expression=sql.SQL(expression),
            where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL(""),
            direction=direction,
        )
        with self.connect() as conn:
            rows = conn.execute(query, [*params, size + 1]).fetchall()
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = (
            encode_cursor(rows[-1]["sort_value"], rows[-1]["mismatch_id"]) if more else None
        )
        return QueuePage(rows, next_cursor, filters)

    def choices(self) -> dict[str, list[str]]:
        """The values the queue's filters offer."""
        with self.connect() as conn:
            return {
                "reason": [m.value for m in ev.ReasonCode],
                "status": list(STATUSES),
                "currency": [
                    r["currency"]
                    for r in conn.execute(
                        "SELECT DISTINCT currency FROM exception_queue"
                        " WHERE currency IS NOT NULL ORDER BY 1"
                    )
                ],
                "owner": [
                    r["owner"]
                    for r in conn.execute(
                        "SELECT DISTINCT owner FROM exception_queue"
                        " WHERE owner IS NOT NULL ORDER BY 1"
                    )
                ],
            }

    def exception(self, mismatch_id: str) -> Row | None:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT e.*, " + _PENDING + " FROM exceptions e WHERE mismatch_id = %s",
                (mismatch_id,),
            ).fetchone()
            if row is None:
                return None
            found = conn.execute(
                "SELECT suggestions FROM mismatch_events WHERE mismatch_id = %s"
                " AND kind = 'detected' ORDER BY pos DESC LIMIT 1",
                (mismatch_id,),
            ).fetchone()
        raw = found["suggestions"] if found else None
        row["suggestions"] = [ev.Suggestion.model_validate(s) for s in raw or ()]
        return row

    def history(self, mismatch_id: str) -> list[Row]:
        """The mismatch's own events in log order, with the workbench's pending actions."""
        with self.connect() as conn:
            return conn.execute(
                "SELECT event_id, kind, event_time, owner, resolution, note, false AS pending"
                " FROM mismatch_events WHERE mismatch_id = %s"
                " UNION ALL SELECT a.event_id, a.action, a.published_at, a.by_user, NULL, NULL,"
                " true FROM web_actions a WHERE a.mismatch_id = %s AND NOT EXISTS"
                " (SELECT 1 FROM mismatch_events m WHERE m.event_id = a.event_id)"
                " ORDER BY pending, event_time",
                (mismatch_id, mismatch_id),
            ).fetchall()

    def open_amounts(self, order_ids: Sequence[str]) -> dict[str, Decimal]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT order_id, open_amount FROM open_items WHERE order_id = ANY(%s)",
                (list(order_ids),),
            ).fetchall()
        return {r["order_id"]: r["open_amount"] for r in rows}

    def record_action(self, event_id: str, mismatch_id: str, action: str, by: str) -> None:
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO web_actions (event_id, mismatch_id, action, by_user)"
                " VALUES (%s, %s, %s, %s)",
                (event_id, mismatch_id, action, by),
            )

    # --- timeline and search ----------------------------------------------------------------

    def search(self, text: str, limit: int = 20) -> list[Row]:
        """The ids starting with `text`, each with its kind and how many events name it."""
        pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.connect() as conn:
            return conn.execute(
                "SELECT ref_kind, ref_id, count(*) AS events, max(event_time) AS last_at"
                " FROM timeline WHERE ref_id LIKE %s GROUP BY ref_kind, ref_id"
                " ORDER BY ref_id, ref_kind LIMIT %s",
                (pattern, limit),
            ).fetchall()

    def timeline(self, ref_id: str, kind: str | None = None, limit: int = 500) -> list[Row]:
        with self.connect() as conn:
            return conn.execute(
                "SELECT * FROM timeline WHERE ref_id = %s AND (%s::text IS NULL OR ref_kind = %s)"
                " ORDER BY event_time, pos, event_id LIMIT %s",
                (ref_id, kind, kind, limit),
            ).fetchall()

    def balance(self, order_id: str) -> Row | None:
        with self.connect() as conn:
            return conn.execute(
                "SELECT * FROM balance_current WHERE order_id = %s", (order_id,)
            ).fetchone()

    # --- overview -------------------------------------------------------------------------

    def business_today(self) -> date:
        with self.reports() as reports:
            return reports.business_today()

    def day_totals(self, day: date) -> list[Row]:
        """The day's figures per currency (amounts of two currencies never add up)."""
        with self.connect() as conn:
            return conn.execute(
                "SELECT currency, sum(orders) AS orders, sum(matched) AS matched,"
                " CASE WHEN sum(orders) > 0 THEN round(sum(matched) / sum(orders), 4) END"
                " AS matched_rate, sum(paid) AS paid, sum(settled) AS settled,"
                " sum(written_off) AS written_off"
                " FROM (" + DAILY_OF_DAY + ") r GROUP BY currency ORDER BY currency",
                {"day": day},
            ).fetchall()

    def open_by_reason(self) -> list[Row]:
        with self.connect() as conn:
            return conn.execute(
                # exception_queue: the `exceptions` view's rules, kept per mismatch.
                "SELECT reason, count(*) AS n FROM exception_queue"
                " WHERE detected_pos IS NOT NULL AND status <> 'resolved'"
                " GROUP BY reason ORDER BY reason"
            ).fetchall()

    def raised_per_day(self, day: date, days: int = 30) -> list[Row]:
        with self.connect() as conn:
            return conn.execute(
                "SELECT (event_time AT TIME ZONE 'UTC')::date AS day, reason, count(*) AS n"
                " FROM mismatch_events WHERE kind = 'detected'"
                " AND event_time >= ((%s::date - %s + 1)::timestamp AT TIME ZONE 'UTC')"
                " AND event_time < ((%s::date + 1)::timestamp AT TIME ZONE 'UTC')"
                " GROUP BY 1, 2 ORDER BY 1, 2",
                (day, days, day),
            ).fetchall()

    def dso(self, day: date, days: int = 90) -> list[Row]:
        with self.connect() as conn:
            return conn.execute(
                "SELECT day, currency, dso_days, target_days, alert_days FROM dso_daily"
                " WHERE day BETWEEN %s::date - %s + 1 AND %s ORDER BY currency, day",
                (day, days, day),
            ).fetchall()

    def ageing(
        self, day: date, by: Literal["customer", "channel", "region"], largest: int | None = None
    ) -> Report:
        with self.reports() as reports:
            return reports.ageing(day, by, largest=largest)

    def largest_exposures(self, limit: int = 20) -> list[Row]:
        """`credit_exposure` ORDER BY exposure DESC LIMIT `limit`, from the largest rows of
        open_by_customer (an index) rather than the view over every customer."""
        with self.connect() as conn:
            rows = conn.execute(LARGEST_EXPOSURES, (limit,)).fetchall()
            if len(rows) < limit:  # customers without exposure fill the rest
                rows = conn.execute(
                    "SELECT * FROM credit_exposure ORDER BY exposure DESC, customer_id LIMIT %s",
                    (limit,),
                ).fetchall()
            return rows

    # --- customers and the daily report -----------------------------------------------------

    def customers(self) -> list[Row]:
        with self.connect() as conn:
            return conn.execute(
                "SELECT * FROM credit_exposure ORDER BY customer_id, currency"
            ).fetchall()

    def customer(self, customer_id: str) -> tuple[list[Row], list[Row]]:
        """Its exposure rows (one per currency) and its open items, oldest due first."""
        with self.connect() as conn:
            exposure = conn.execute(
                "SELECT * FROM credit_exposure WHERE customer_id = %s ORDER BY currency",
                (customer_id,),
            ).fetchall()
            items = conn.execute(
                "SELECT * FROM open_items WHERE customer_id = %s"
                " ORDER BY due_date NULLS LAST, order_id",
                (customer_id,),
            ).fetchall()
        return exposure, items

    def daily(self, day: date) -> Report:
        with self.reports() as reports:
            return reports.daily(day)


def as_datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None
