"""DSO, ageing and the daily report of closed business days, computed once and stored
(`dso_by_day`, `ageing_by_day` and its sums `ageing_groups_by_day` and `ar_ageing_by_day`,
`recon_by_day`) for the views `dso_daily`, `ar_ageing` and `daily_recon_report` to read.

A day's figures are a function of the balance history and the order and customer facts.
So that the stored rows always equal what the on-the-fly computation gives now, whatever
the batches a run happened to cut (a rebuild cuts others), a batch recomputes every
closed day its rows can change: the days it closes, and every closed day from the
earliest event time among its new balance rows, or among the open balances of the orders
and customers whose facts it changed (late facts; region and channel). A day's report
rows depend on that day's facts only, but through its orders: "matched" counts the orders
placed that day matched now, and channels come from the order or its balance. So the report
is also recomputed for every closed day on which an order the batch touched (placed,
matched, balanced, written off, mismatched) has a fact. Days are computed in the batch's
transaction, so rows, offsets and figures commit together.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from projections.model import APPEND_TABLES, Changes
from projections.reports import DAILY_OF_DAY

# The snapshot in effect at the end of day `d.day` (UTC), as in `_ITEMS_AS_OF` of
# projections/reports.py and the view ar_ageing_items.
_IN_EFFECT = """
    v.valid_from < ((d.day + 1)::timestamp AT TIME ZONE 'UTC')
    AND (v.valid_to IS NULL OR v.valid_to >= ((d.day + 1)::timestamp AT TIME ZONE 'UTC'))
"""

# Receivables at the end of D = the positive open balances of the snapshots in effect
# then (valid_day <= D < end_day), so each snapshot adds its balance on valid_day and
# takes it away on end_day: a running sum over a few rows per day and currency, from one
# pass over the history, however many days are asked for.
_DSO = """
WITH days AS (SELECT unnest(%(days)s::date[]) AS day),
v AS (
    SELECT currency, valid_day, (valid_to AT TIME ZONE 'UTC')::date AS end_day,
           greatest(open_balance, 0) AS receivable, receivable_change
    FROM balance_validity
),
moves AS (
    SELECT currency, valid_day AS day, receivable AS open_change, receivable_change AS sales
    FROM v
    UNION ALL
    SELECT currency, end_day, -receivable, 0 FROM v WHERE end_day IS NOT NULL
),
per_day AS MATERIALIZED (
    SELECT currency, day, sum(open_change) AS open_change, sum(sales) AS sales
    FROM moves GROUP BY 1, 2
)
INSERT INTO dso_by_day (day, currency, receivables, credit_sales_90d)
SELECT d.day, cur.currency,
       (SELECT coalesce(sum(p.open_change), 0) FROM per_day p
         WHERE p.currency = cur.currency AND p.day <= d.day),
       (SELECT coalesce(sum(p.sales), 0) FROM per_day p
         WHERE p.currency = cur.currency AND p.day BETWEEN d.day - 89 AND d.day)
FROM days d CROSS JOIN currencies cur
"""

_AGEING = f"""
WITH days AS (SELECT unnest(%(days)s::date[]) AS day),
items AS (
    SELECT d.day AS as_of, v.customer_id,
           coalesce(v.channel, o.channel) AS channel,
           coalesce(v.region, o.region, c.region) AS region,
           v.currency, v.open_balance,
           CASE
               WHEN v.due_date IS NULL OR d.day - v.due_date <= 0 THEN 'not_due'
               WHEN d.day - v.due_date <= 30 THEN '1-30'
               WHEN d.day - v.due_date <= 60 THEN '31-60'
               WHEN d.day - v.due_date <= 90 THEN '61-90'
               ELSE '>90'
           END AS bucket
    FROM days d
    JOIN balance_validity v ON {_IN_EFFECT}
    LEFT JOIN orders o ON o.order_id = v.order_id
    LEFT JOIN customers c ON c.customer_id = v.customer_id
    WHERE v.open_balance > 0
)
INSERT INTO ageing_by_day
    (as_of, customer_id, channel, region, currency, bucket, open_amount, items)
SELECT as_of, customer_id, channel, region, currency, bucket, sum(open_balance), count(*)
FROM items GROUP BY 1, 2, 3, 4, 5, 6
"""

# Each day's ageing summed per customer, channel and region (what `o2c report ageing`
# shows), from the rows above; the same statement as migration 0008's backfill.
_AGEING_GROUPS = """
INSERT INTO ageing_groups_by_day
SELECT a.as_of, g.grouping,
       CASE g.grouping WHEN 'customer' THEN a.customer_id
                       WHEN 'channel' THEN coalesce(a.channel, 'unknown')
                       ELSE coalesce(a.region, 'unknown') END,
       a.currency,
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = 'not_due'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '1-30'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '31-60'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '61-90'), 0),
       coalesce(sum(a.open_amount) FILTER (WHERE a.bucket = '>90'), 0),
       sum(a.open_amount)
FROM ageing_by_day a
CROSS JOIN (VALUES ('customer'), ('channel'), ('region')) g (grouping)
WHERE a.as_of = ANY(%(days)s::date[])
GROUP BY 1, 2, 3, 4
"""

# Each day's ar_ageing rows, pivoted from the rows above: the view as migration 0004 defined
# it, stored so that the view reads them (0012); the same statement as 0012's backfill.
_AR_AGEING = """
INSERT INTO ar_ageing_by_day
SELECT a.as_of, a.customer_id, a.channel, a.region, a.currency,
       sum(a.open_amount) FILTER (WHERE a.bucket = 'not_due'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '1-30'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '31-60'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '61-90'),
       sum(a.open_amount) FILTER (WHERE a.bucket = '>90'),
       sum(a.open_amount)
FROM ageing_by_day a
WHERE a.as_of = ANY(%(days)s::date[])
GROUP BY a.as_of, a.customer_id, a.channel, a.region, a.currency
"""

# The earliest event time among the open balances of these orders (of these customers'
# orders): from that day on, a change to their channel or region can move a closed day's
# ageing. Two statements, so that each uses its index.
_EARLIEST_OPEN_ORDERS = """
SELECT min(event_time) FROM balance_history
WHERE order_id = ANY(%s) AND open_balance > 0
"""
_EARLIEST_OPEN_CUSTOMERS = """
SELECT min(h.event_time) FROM balance_current b
JOIN balance_history h USING (order_id)
WHERE b.customer_id = ANY(%s) AND h.open_balance > 0
"""


# The closed days on which these orders have a fact the daily report counts, and the days
# of the batch's write-offs and mismatches of no order.
_REPORT_DAYS_OF_ORDERS = """
WITH o AS (SELECT unnest(%(orders)s::text[]) AS order_id),
days AS (
    SELECT (x.placed_at AT TIME ZONE 'UTC')::date AS day
    FROM orders x JOIN o USING (order_id)
    UNION SELECT (x.event_time AT TIME ZONE 'UTC')::date
    FROM balance_history x JOIN o USING (order_id)
    UNION SELECT (x.event_time AT TIME ZONE 'UTC')::date
    FROM writeoffs x JOIN o USING (order_id)
    UNION SELECT (x.event_time AT TIME ZONE 'UTC')::date
    FROM mismatch_events x JOIN o USING (order_id) WHERE x.kind = 'detected'
    UNION SELECT unnest(%(days)s::date[])
)
SELECT d.day FROM days d JOIN closed_days c USING (day) ORDER BY 1
"""


_ORDER_FACTS = ("balance_history", "order_matches", "writeoffs", "mismatch_events")


def touched(changes: Changes) -> tuple[set[str], set[date]]:
    """The orders a batch's facts name, and the days of its facts that name none."""
    orders = set(changes.orders)
    days: set[date] = set()
    for table in _ORDER_FACTS:
        columns = APPEND_TABLES[table]
        order_id, event_time = columns.index("order_id"), columns.index("event_time")
        for row in changes.appended[table]:
            moment = row[event_time]
            if row[order_id] is not None:
                orders.add(str(row[order_id]))
            elif isinstance(moment, datetime):
                days.add(utc_day(moment))
    return orders, days


def report_days(
    cur: psycopg.Cursor[Any], orders: Collection[str], days: Collection[date]
) -> list[date]:
    """The closed days whose daily report rows a batch touching `orders` (and having
    facts of no order on `days`) can change."""
    if not orders and not days:
        return []
    rows = cur.execute(_REPORT_DAYS_OF_ORDERS, {"orders": sorted(orders), "days": sorted(days)})
    return [r[0] for r in rows.fetchall()]


def earliest_open(
    cur: psycopg.Cursor[Any], orders: Collection[str], customers: Collection[str]
) -> date | None:
    found = []
    for query, keys in ((_EARLIEST_OPEN_ORDERS, orders), (_EARLIEST_OPEN_CUSTOMERS, customers)):
        if keys:
            row = cur.execute(query, (list(keys),)).fetchone()
            if row is not None and row[0] is not None:
                found.append(utc_day(row[0]))
    return min(found, default=None)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def days_to_compute(
    cur: psycopg.Cursor[Any], closed_now: Sequence[date], earliest: date | None
) -> list[date]:
    """The closed days whose figures a batch can change: those it closed, and every closed
    day on or after `earliest` (the first day the batch's facts touch)."""
    days = set(closed_now)
    if earliest is not None:
        rows = cur.execute("SELECT day FROM closed_days WHERE day >= %s", (earliest,))
        days |= {r[0] for r in rows.fetchall()}
    return sorted(days)


def defer(cur: psycopg.Cursor[Any], start: date | None) -> None:
    """Remember that the closed days from `start` on need computing again."""
    if start is not None:
        cur.execute(
            "INSERT INTO materialise_pending (from_day) VALUES (%s) ON CONFLICT (only_row)"
            " DO UPDATE SET from_day = least(materialise_pending.from_day, excluded.from_day)",
            (start,),
        )


def take_deferred(cur: psycopg.Cursor[Any], start: date | None) -> date | None:
    """The earlier of `start` and the deferred first day, which is cleared."""
    row = cur.execute("DELETE FROM materialise_pending RETURNING from_day").fetchone()
    found = [d for d in (start, None if row is None else row[0]) if d is not None]
    return min(found, default=None)


def compute(
    cur: psycopg.Cursor[Any], days: Sequence[date], report_only: Collection[date] = ()
) -> None:
    """(Re)compute and store the DSO, ageing and daily report of `days`, and the daily
    report alone of `report_only`; all must be closed."""
    report = sorted({*days, *report_only})
    if report:
        cur.execute("DELETE FROM recon_by_day WHERE day = ANY(%s)", (report,))
        # One day at a time, each from the indexes (DAILY_OF_DAY, as `o2c report daily`).
        statement = f"INSERT INTO recon_by_day SELECT * FROM ({DAILY_OF_DAY}) r".encode()
        for day in report:
            cur.execute(statement, {"day": day})
    if not days:
        return
    params = {"days": list(days)}
    cur.execute("DELETE FROM dso_by_day WHERE day = ANY(%(days)s)", params)
    cur.execute("DELETE FROM ageing_by_day WHERE as_of = ANY(%(days)s)", params)
    cur.execute("DELETE FROM ageing_groups_by_day WHERE as_of = ANY(%(days)s)", params)
    cur.execute("DELETE FROM ar_ageing_by_day WHERE as_of = ANY(%(days)s)", params)
    cur.execute(_DSO, params)
    cur.execute(_AGEING, params)
    cur.execute(_AGEING_GROUPS, params)
    cur.execute(_AR_AGEING, params)
    cur.execute(
        "INSERT INTO materialised_days SELECT unnest(%(days)s::date[]) ON CONFLICT DO NOTHING",
        params,
    )


def missing(cur: psycopg.Cursor[Any]) -> list[date]:
    """Closed days never computed (closed before these tables existed)."""
    rows = cur.execute(
        "SELECT day FROM closed_days EXCEPT SELECT day FROM materialised_days ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]
