"""The database shell of a projection: one batch of changes and the offsets it reaches,
written in one transaction with COPY and a few set-based statements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from projections import materialise
from projections.migrate import use_schema
from projections.model import (
    APPEND_TABLES,
    BALANCE_COLUMNS,
    CURRENT_BALANCE_COLUMNS,
    CUSTOMER_COLUMNS,
    ORDER_COLUMNS,
    Changes,
    Row,
)
from services.connections import connect_database

Position = tuple[str, int]  # topic, partition

_CURRENCY = BALANCE_COLUMNS.index("currency")
_EVENT_TIME = BALANCE_COLUMNS.index("event_time")

_STAGES = {
    "stage_orders": "orders",
    "stage_customers": "customers",
    "stage_balances": "balance_current",
}

_UPSERT_ORDERS = """
INSERT INTO orders AS t SELECT * FROM stage_orders
ON CONFLICT (order_id) DO UPDATE SET
    customer_id = coalesce(excluded.customer_id, t.customer_id),
    channel = coalesce(excluded.channel, t.channel),
    region = coalesce(excluded.region, t.region),
    currency = coalesce(excluded.currency, t.currency),
    placed_at = coalesce(excluded.placed_at, t.placed_at),
    placed_total = coalesce(excluded.placed_total, t.placed_total),
    amended_total = CASE WHEN excluded.amended_pos > coalesce(t.amended_pos, -1)
                         THEN excluded.amended_total ELSE t.amended_total END,
    amended_pos = greatest(excluded.amended_pos, t.amended_pos),
    cancelled_at = coalesce(t.cancelled_at, excluded.cancelled_at)
"""


# open_by_customer follows balance_current: each batch takes away what its orders' current
# balances added before the upsert and adds what they add after it (the upsert keeps a
# stored row with a higher offset, so only the difference of the two counts).
_EXPOSURE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_exposure (customer_id text, currency text,"
    " exposure numeric, open_orders bigint) ON COMMIT DELETE ROWS"
)
_EXPOSURE_OF_STAGED = """
INSERT INTO stage_exposure
SELECT customer_id, currency, {sign} open_balance, {sign} 1 FROM balance_current
WHERE open_balance > 0 AND order_id IN (SELECT order_id FROM stage_balances)
"""
_EXPOSURE_APPLY = """
INSERT INTO open_by_customer AS t
SELECT customer_id, currency, sum(exposure), sum(open_orders) FROM stage_exposure
GROUP BY customer_id, currency HAVING sum(exposure) <> 0 OR sum(open_orders) <> 0
ON CONFLICT (customer_id, currency) DO UPDATE SET
    exposure = t.exposure + excluded.exposure,
    open_orders = t.open_orders + excluded.open_orders
"""


def _upsert_latest(table: str, stage: str, key: str, columns: Sequence[str]) -> sql.Composed:
    """Insert or replace each staged row unless the stored one has a higher offset."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in columns
        if c != key
    )
    return sql.SQL(
        "INSERT INTO {table} AS t SELECT * FROM {stage} ON CONFLICT ({key}) "
        "DO UPDATE SET {assignments} WHERE t.pos < excluded.pos"
    ).format(
        table=sql.Identifier(table),
        stage=sql.Identifier(stage),
        key=sql.Identifier(key),
        assignments=assignments,
    )


def _moment(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value


class Store:
    def __init__(
        self,
        conninfo: str,
        schema: str,
        projection: str,
        *,
        materialise_days: bool = True,
        claims_in_memory: bool = False,
    ) -> None:
        self.conninfo = conninfo
        # False: closed days are computed once at the end (a rebuild), not batch by batch.
        self.materialise_days = materialise_days
        # A rebuild into fresh tables (projections/rebuild.py): the ids applied are known
        # from this process alone, so they are checked in memory and only appended to
        # processed_events, whose unique index is built once at the end, instead of one
        # index insert per event (about a fifth of a batch's time).
        self._claimed: set[str] | None = set() if claims_in_memory else None
        self._claiming: set[str] = set()
        self.schema = schema
        self.projection = projection
        self.conn = self._connect()
        self._upsert_customers = _upsert_latest(
            "customers", "stage_customers", "customer_id", CUSTOMER_COLUMNS
        )
        self._upsert_balances = _upsert_latest(
            "balance_current", "stage_balances", "order_id", CURRENT_BALANCE_COLUMNS
        )

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect_database(self.conninfo, autocommit=True)
        use_schema(conn, self.schema)
        # synchronous_commit stays on: a commit the server acknowledged survives its crash.
        # With it off, a crash loses the last acknowledged batches while the consumer has
        # moved past them; nothing reads them again until that partition's next message
        # (the fault suite's PostgreSQL kill found rows missing for good on quiet ones).
        for stage, table in _STAGES.items():
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS"
                ).format(sql.Identifier(stage), sql.Identifier(table))
            )
        conn.execute(_EXPOSURE_STAGE)
        return conn

    def committed(self) -> None:
        """The batch of the last claim committed: its ids count as applied (in memory)."""
        if self._claimed is not None:
            self._claimed |= self._claiming
        self._claiming = set()

    def reconnect(self) -> None:
        self._claiming = set()  # a failed batch's claims rolled back with it
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()

    def stored_offsets(self, lock: bool = False) -> dict[Position, int]:
        query = "SELECT topic, partition, next_offset FROM projection_offsets WHERE projection = %s"
        rows = self.conn.execute(query + (" FOR UPDATE" if lock else ""), (self.projection,))
        return {(str(t), int(p)): int(o) for t, p, o in rows.fetchall()}

    def claim(self, event_ids: Sequence[str]) -> set[str]:
        """Record `event_ids` as applied; returns those not applied before."""
        if self._claimed is not None:
            self._claiming = set(event_ids) - self._claimed
            with self.conn.cursor() as cur:
                self._copy(
                    cur,
                    "processed_events",
                    ("projection", "event_id"),
                    [(self.projection, i) for i in self._claiming],
                )
            return set(self._claiming)
        if not event_ids:
            return set()
        rows = self.conn.execute(
            "INSERT INTO processed_events (projection, event_id)"
            " SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            (self.projection, list(event_ids)),
        ).fetchall()
        return {str(r[0]) for r in rows}

    def write(self, changes: Changes, *, catching_up: bool = False) -> list[date]:
        """Write a batch's changes; returns the business days closed for the first time.
        `catching_up`: more messages are waiting (the batch was full)."""
        cur = self.conn.cursor()
        for table, columns in APPEND_TABLES.items():
            self._copy(cur, table, columns, changes.appended[table])
        if changes.orders:
            self._copy(
                cur, "stage_orders", ORDER_COLUMNS, [p.row() for p in changes.orders.values()]
            )
            cur.execute(_UPSERT_ORDERS)
        if changes.customers:
            self._copy(cur, "stage_customers", CUSTOMER_COLUMNS, changes.customers.values())
            cur.execute(self._upsert_customers)
        if changes.current_balances:
            self._copy(
                cur, "stage_balances", CURRENT_BALANCE_COLUMNS, changes.current_balances.values()
            )
            cur.execute(_EXPOSURE_OF_STAGED.format(sign="-"))
            cur.execute(self._upsert_balances)
            cur.execute(_EXPOSURE_OF_STAGED.format(sign="+"))
            cur.execute(_EXPOSURE_APPLY)
        closed: list[date] = []
        if changes.closed_days:
            cur.execute(
                "INSERT INTO closed_days SELECT unnest(%s::date[])"
                " ON CONFLICT DO NOTHING RETURNING day",
                (sorted(changes.closed_days),),
            )
            closed = sorted(date.fromisoformat(str(r[0])) for r in cur.fetchall())
        self._materialise(cur, changes, closed, catching_up)
        return closed

    def _materialise(
        self, cur: psycopg.Cursor[Any], changes: Changes, closed: list[date], catching_up: bool
    ) -> None:
        """Store the DSO and ageing of the days this batch closed, and again of every
        closed day its facts can change (projections/materialise.py)."""
        balances = changes.appended["balance_history"]
        currencies = {str(row[_CURRENCY]) for row in balances}
        if currencies:
            cur.execute(
                "INSERT INTO currencies SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (sorted(currencies),),
            )
        if not self.materialise_days:
            return
        last = cur.execute("SELECT max(day) FROM closed_days").fetchone()
        if last is None or last[0] is None:
            return
        earliest = [materialise.utc_day(_moment(row[_EVENT_TIME])) for row in balances]
        placed = [p.order_id for p in changes.orders.values() if p.channel or p.region]
        found = materialise.earliest_open(cur, placed, list(changes.customers))
        if found is not None:
            earliest.append(found)
        start = min(earliest, default=None)
        if start is not None and start > last[0]:
            start = None  # only the open day: nothing closed can change
        report = materialise.report_days(cur, *materialise.touched(changes))
        if catching_up:
            # A replay reads the clock ahead of the facts, so nearly every batch would
            # change the days already closed: note the first, compute them when caught up.
            materialise.defer(cur, min([d for d in (start, *report[:1]) if d], default=None))
            start, report = None, []
        else:
            start = materialise.take_deferred(cur, start)
        materialise.compute(cur, materialise.days_to_compute(cur, closed, start), report)
        if closed:
            # These tables grow by a few rows a day, never enough for autovacuum to look at
            # them soon; without statistics the planner guesses thousands of rows and
            # compiles dso_daily with JIT (a quarter of a second at every dashboard refresh).
            cur.execute("ANALYZE closed_days, currencies, dso_by_day, materialised_days")

    @staticmethod
    def _copy(
        cur: psycopg.Cursor[Any],
        table: str,
        columns: Sequence[str],
        rows: Iterable[Row],
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def save_offsets(self, offsets: Mapping[Position, int]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO projection_offsets (projection, topic, partition, next_offset)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (projection, topic, partition)"
                " DO UPDATE SET next_offset = excluded.next_offset",
                [(self.projection, t, p, o) for (t, p), o in sorted(offsets.items())],
            )

    def materialise_missing(self) -> list[date]:
        """Compute the days closed before the materialised tables existed."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            days = materialise.missing(cur)
            pending = materialise.take_deferred(cur, None)
            if pending is not None:
                days = materialise.days_to_compute(cur, days, pending)
            materialise.compute(cur, days)
            if days:
                cur.execute("ANALYZE closed_days, currencies, dso_by_day, materialised_days")
        return days

    def set_read_setting(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO read_settings (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
