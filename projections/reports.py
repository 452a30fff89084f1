"""The queries behind `o2c report`: read-model views, and the as-of computations over the
balance history for a date of the caller's choosing. Views only (the report_* ones of
migration 0007 beside the dashboards'): `o2c report` connects as the reader, who may read
no table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import psycopg
from psycopg import sql

from projections.migrate import use_schema
from services.connections import connect_database

Grouping = Literal["customer", "channel", "region"]

_GROUP_COLUMN = {"customer": "customer_id", "channel": "channel", "region": "region"}

# Open items in effect at the end of %(as_of)s (UTC), with days past due.
_ITEMS_AS_OF = """
SELECT v.order_id, v.customer_id, v.currency, v.due_date, v.open_balance AS open_amount,
       coalesce(v.channel, o.channel, 'unknown') AS channel,
       coalesce(v.region, o.region, c.region, 'unknown') AS region,
       %(as_of)s::date - v.due_date AS days_past_due
FROM balance_validity v
LEFT JOIN report_orders o ON o.order_id = v.order_id
LEFT JOIN report_customers c ON c.customer_id = v.customer_id
WHERE v.open_balance > 0
  AND v.valid_from < ((%(as_of)s::date + 1)::timestamp AT TIME ZONE 'UTC')
  AND (v.valid_to IS NULL OR v.valid_to >= ((%(as_of)s::date + 1)::timestamp AT TIME ZONE 'UTC'))
"""

_AGEING = """
WITH items AS ({items})
SELECT {group} AS {label}, currency,
       coalesce(sum(open_amount) FILTER (WHERE due_date IS NULL OR days_past_due <= 0), 0)
           AS not_due,
       coalesce(sum(open_amount) FILTER (WHERE days_past_due BETWEEN 1 AND 30), 0) AS "1-30",
       coalesce(sum(open_amount) FILTER (WHERE days_past_due BETWEEN 31 AND 60), 0) AS "31-60",
       coalesce(sum(open_amount) FILTER (WHERE days_past_due BETWEEN 61 AND 90), 0) AS "61-90",
       coalesce(sum(open_amount) FILTER (WHERE days_past_due > 90), 0) AS ">90",
       sum(open_amount) AS total
FROM items GROUP BY 1, 2 ORDER BY 1, 2
"""

_DSO_AS_OF = """
WITH v AS MATERIALIZED (
    SELECT currency, open_balance, receivable_change, valid_from, valid_to, valid_day
    FROM balance_validity
),
target AS (SELECT days FROM report_dso_target),
figures AS (
    SELECT cur.currency,
           (SELECT coalesce(sum(v.open_balance), 0) FROM v
             WHERE v.currency = cur.currency AND v.open_balance > 0
               AND v.valid_from < ((%(as_of)s::date + 1)::timestamp AT TIME ZONE 'UTC')
               AND (v.valid_to IS NULL
                    OR v.valid_to >= ((%(as_of)s::date + 1)::timestamp AT TIME ZONE 'UTC'))
           ) AS receivables,
           (SELECT coalesce(sum(v.receivable_change), 0) FROM v
             WHERE v.currency = cur.currency
               AND v.valid_day BETWEEN %(as_of)s::date - 89 AND %(as_of)s::date
           ) AS credit_sales_90d
    FROM report_currencies cur
)
SELECT %(as_of)s::date AS day, f.currency, f.receivables, f.credit_sales_90d,
       CASE WHEN f.credit_sales_90d > 0
            THEN round(f.receivables / f.credit_sales_90d * 90, 2) END AS dso_days,
       t.days AS target_days, round(t.days * 1.1, 2) AS alert_days,
       coalesce(f.credit_sales_90d > 0
                AND round(f.receivables / f.credit_sales_90d * 90, 2) > round(t.days * 1.1, 2),
                false) AS flagged
FROM figures f CROSS JOIN target t ORDER BY f.currency
"""


# The same, read from the figures stored when the day closed (projections/materialise.py).
_AGEING_STORED = """
SELECT group_key AS {label}, currency, not_due, days_1_30 AS "1-30", days_31_60 AS "31-60",
       days_61_90 AS "61-90", days_over_90 AS ">90", total
FROM report_ageing_groups_by_day WHERE as_of = %(as_of)s AND grouping = %(by)s
"""

# The rows of daily_recon_report for one day (the view's rules, column for column), from
# that day's facts found by their indexes instead of the view's pass over every order and
# balance: recon_of_day of migration 0010, the one definition, which the stored days
# (projections/materialise.py), `o2c report daily` and the workbench's overview all use.
# Any role may execute it (functions are PUBLIC's to execute); it reads the report_* views
# with the caller's rights, which the reader and the web role may read.
DAILY_OF_DAY = "SELECT * FROM recon_of_day(%(day)s::date)"


@dataclass(frozen=True)
class Report:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    more: bool = False  # a limit left rows out


class Reports:
    def __init__(
        self, conninfo: str, schema: str, *, connection: psycopg.Connection[Any] | None = None
    ) -> None:
        """`connection`: an open one to use instead of connecting (a bench's transaction)."""
        self.conn = connection or connect_database(conninfo, autocommit=True)
        use_schema(self.conn, schema)

    def close(self) -> None:
        self.conn.close()

    def _query(self, title: str, query: str | sql.Composed, params: Any = None) -> Report:
        cur = self.conn.execute(
            query if isinstance(query, sql.Composed) else query.encode(), params
        )
        headers = tuple(d.name for d in cur.description or ())
        return Report(title, headers, list(cur.fetchall()))

    def business_today(self) -> date:
        row = self.conn.execute("SELECT day FROM business_today").fetchone()
        assert row is not None
        day: date = row[0]
        return day

    def stored(self, day: date) -> bool:
        """Whether the DSO and ageing of `day` were stored when it closed."""
        row = self.conn.execute("SELECT 1 FROM report_materialised_days WHERE day = %s", (day,))
        return row.fetchone() is not None

    def ageing(
        self,
        as_of: date,
        by: Grouping = "customer",
        *,
        on_the_fly: bool = False,
        largest: int | None = None,
    ) -> Report:
        """Ageing at the end of `as_of`: stored for a closed day, else computed from the
        balance history (`on_the_fly` computes it in any case). `largest`: only that many
        rows, the largest totals first (ties in the report's order), as a chart shows them
        — not thousands of customers to drop on the way."""
        title = f"AR ageing as of {as_of}, by {by}"
        params = {"as_of": as_of, "by": by}
        if not on_the_fly and self.stored(as_of):
            stored = sql.SQL(_AGEING_STORED).format(label=sql.Identifier(by))
            if largest is None:
                query = stored + sql.SQL(" ORDER BY 1, 2")
            else:  # the index ageing_groups_by_day_largest, in this order
                query = stored + sql.SQL(" ORDER BY total DESC, 1, 2 LIMIT {}").format(
                    sql.Literal(largest)
                )
            return self._query(title, query, params)
        query = sql.SQL(_AGEING).format(
            items=sql.SQL(_ITEMS_AS_OF),
            group=sql.Identifier(_GROUP_COLUMN[by]),
            label=sql.Identifier(by),
        )
        if largest is not None:
            query = sql.SQL("SELECT * FROM ({}) a ORDER BY total DESC, 1, 2 LIMIT {}").format(
                query, sql.Literal(largest)
            )
        return self._query(title, query, params)

    def dso(self, as_of: date | None, *, on_the_fly: bool = False) -> Report:
        if as_of is None:
            return self._query(
                "DSO per closed business day",
                "SELECT * FROM dso_daily ORDER BY day, currency",
            )
        title = f"DSO as of {as_of}"
        if not on_the_fly and self.stored(as_of):
            return self._query(
                title, "SELECT * FROM dso_daily WHERE day = %s ORDER BY currency", (as_of,)
            )
        return self._query(title, _DSO_AS_OF, {"as_of": as_of})

    def exposure(self) -> Report:
        return self._query(
            "credit exposure",
            "SELECT customer_id, customer_name, currency, exposure, credit_limit, utilisation,"
            " breached, breaches, open_orders FROM credit_exposure ORDER BY customer_id, currency",
        )

    def exceptions(self, status: str | None = None, limit: int | None = None) -> Report:
        """Oldest first; `limit`: at most that many (the index on status and detection
        time reads just those, where all 60,000 open ones of a large book take 200 ms)."""
        report = self._query(
            "exceptions",
            "SELECT mismatch_id, reason, status, owner, currency, amount, order_id,"
            " detected_at::date AS detected, age_days FROM exceptions"
            " WHERE %(status)s::text IS NULL OR status = %(status)s"
            " ORDER BY detected_at, mismatch_id LIMIT %(rows)s",
            {"status": status, "rows": None if limit is None else limit + 1},
        )
        if limit is not None and len(report.rows) > limit:
            return Report(report.title, report.headers, report.rows[:limit], more=True)
        return report

    def daily(self, day: date) -> Report:
        return self._query(
            f"daily reconciliation {day}",
            "SELECT channel, currency, orders, paid, settled, matched, matched_rate, mismatches,"
            " mismatches_by_reason, written_off FROM (" + DAILY_OF_DAY + ") r"
            " ORDER BY channel, currency",
            {"day": day},
        )

    def exception(self, mismatch_id: str) -> dict[str, Any]:
        """The exception with this id, or the only one whose id starts with it."""
        cur = self.conn.execute(
            "SELECT * FROM exceptions WHERE mismatch_id LIKE %s ORDER BY mismatch_id LIMIT 2",
            (mismatch_id.replace("%", r"\%").replace("_", r"\_") + "%",),
        )
        names = [d.name for d in cur.description or ()]
        rows = cur.fetchall()
        exact = [r for r in rows if r[0] == mismatch_id]
        if exact:
            rows = exact
        if len(rows) != 1:
            raise LookupError(
                f"no exception with id {mismatch_id!r}"
                if not rows
                else f"{mismatch_id!r} matches several exceptions; give more of the id"
            )
        return dict(zip(names, rows[0], strict=True))
