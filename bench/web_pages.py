"""Server time of the workbench's pages over large read models (issue #19's speed goal:
p95 <= 200 ms at 1,000,000 orders for the overview, the queue's first and a filtered page,
and a timeline).

The read models are loaded straight into a fresh schema with generate_series (the
projection's throughput is measured elsewhere): ORDERS orders with two balance snapshots
each, one mismatch per MISMATCH_EVERY orders (a tenth assigned, a third resolved), five
timeline rows per order. Each page is requested REPEATS times in process through
Starlette's test client, logged in, after one warm-up; the figures are wall-clock
milliseconds per request, so they include rendering.

    .venv/bin/python -m bench.web_pages --orders 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from starlette.testclient import TestClient

from projections import materialise
from projections.migrate import migrate, use_schema
from services.settings import Settings, get_settings
from services.web.app import create_app
from services.web.users import Users

RESULTS = Path(__file__).parent / "results"
MISMATCH_EVERY = 10
REASONS = ("OVERPAID", "UNDERPAID", "DUPLICATE_PAYMENT", "CURRENCY_MISMATCH", "FEE_MISMATCH")

_LOAD = """
INSERT INTO customers
SELECT 'C-' || c, 'Customer ' || c, 'east', 'b2b', 100000, 'CNY', 30, c
FROM generate_series(1, %(customers)s) c;

INSERT INTO orders
SELECT 'ORD-' || lpad(o::text, 8, '0'), 'C-' || (o %% %(customers)s + 1),
       (ARRAY['web','tmall','jd','pos','b2b'])[o %% 5 + 1], 'east', 'CNY',
       timestamptz '2026-09-01' + (o %% 90) * interval '1 day', 100 + o %% 900, NULL, NULL, NULL
FROM generate_series(1, %(orders)s) o;

INSERT INTO balance_history
SELECT 'bh-' || o || '-' || s, 'ORD-' || lpad(o::text, 8, '0'), 'C-' || (o %% %(customers)s + 1),
       (ARRAY['web','tmall','jd','pos','b2b'])[o %% 5 + 1], 'east', 'CNY',
       100 + o %% 900, CASE WHEN s = 1 THEN 0 ELSE (100 + o %% 900) * (o %% 3) / 2 END, 0, 0,
       CASE WHEN s = 1 THEN 100 + o %% 900
            ELSE (100 + o %% 900) - (100 + o %% 900) * (o %% 3) / 2 END,
       CASE WHEN s = 1 OR o %% 3 = 0 THEN 'open' WHEN o %% 3 = 1 THEN 'partially_paid'
            ELSE 'paid' END,
       date '2026-10-01' + (o %% 90), timestamptz '2026-09-01' + (o %% 90) * interval '1 day'
           + s * interval '1 hour', s
FROM generate_series(1, %(orders)s) o, generate_series(1, 2) s;

INSERT INTO balance_current
SELECT DISTINCT ON (order_id) order_id, customer_id, channel, region, currency, receivable,
       paid, refunded, settled, open_balance, status, due_date, event_time, pos
FROM balance_history ORDER BY order_id, pos DESC;

INSERT INTO closed_days
SELECT d::date FROM generate_series(date '2026-09-01', date '2026-11-30', interval '1 day') d;

INSERT INTO mismatch_events (event_id, mismatch_id, kind, event_time, pos, reason, severity,
                             currency, expected, actual, difference, order_id, customer_id)
SELECT 'md-' || m, 'MM-' || lpad(m::text, 8, '0'), 'detected',
       timestamptz '2026-09-02' + (m %% 88) * interval '1 day', m,
       (ARRAY%(reasons)s)[m %% 5 + 1], 'medium', 'CNY', 100, 100 + m %% 50, m %% 50,
       'ORD-' || lpad((m * %(every)s)::text, 8, '0'), 'C-' || (m %% %(customers)s + 1)
FROM generate_series(1, %(mismatches)s) m;

INSERT INTO mismatch_events (event_id, mismatch_id, kind, event_time, pos, owner, order_id)
SELECT 'ma-' || m, 'MM-' || lpad(m::text, 8, '0'), 'assigned',
       timestamptz '2026-09-03' + (m %% 88) * interval '1 day', m + 10000000,
       'clerk' || m %% 7, 'ORD-' || lpad((m * %(every)s)::text, 8, '0')
FROM generate_series(1, %(mismatches)s) m WHERE m %% 10 = 0;

INSERT INTO mismatch_events (event_id, mismatch_id, kind, event_time, pos, resolution, order_id)
SELECT 'mr-' || m, 'MM-' || lpad(m::text, 8, '0'), 'resolved',
       timestamptz '2026-09-04' + (m %% 88) * interval '1 day', m + 20000000, 'auto',
       'ORD-' || lpad((m * %(every)s)::text, 8, '0')
FROM generate_series(1, %(mismatches)s) m WHERE m %% 3 = 0;

-- What the timeline's projection keeps from those events (projections/exception_queue.py).
INSERT INTO exception_queue (mismatch_id, detected_pos, reason, severity, currency, expected,
    actual, difference, amount, order_id, payment_id, payout_id, line_id, customer_id,
    detected_at, last_pos, last_kind, last_time, last_resolution, last_note, owner_pos, owner)
SELECT e.mismatch_id, d.pos, e.reason, e.severity, e.currency, e.expected, e.actual,
       e.difference, e.amount, e.order_id, e.payment_id, e.payout_id, e.line_id, e.customer_id,
       e.detected_at, l.pos, l.kind, l.event_time, l.resolution, l.note, NULL, e.owner
FROM exceptions e
CROSS JOIN LATERAL (SELECT pos FROM mismatch_events m WHERE m.mismatch_id = e.mismatch_id
                    AND m.kind = 'detected' ORDER BY pos DESC LIMIT 1) d
CROSS JOIN LATERAL (SELECT pos, kind, event_time, resolution, note FROM mismatch_events m
                    WHERE m.mismatch_id = e.mismatch_id ORDER BY pos DESC LIMIT 1) l;

INSERT INTO timeline
SELECT 'ORD-' || lpad(o::text, 8, '0'), 'order', 'tl-' || o || '-' || s,
       timestamptz '2026-09-01' + (o %% 90) * interval '1 day' + s * interval '1 minute',
       'o2c.balance.changed.v1', 'balance changed: open balance 100.00 CNY, status open',
       NULL, 'cause-' || o, 'o2c-matcher', s
FROM generate_series(1, %(orders)s) o, generate_series(1, 5) s;
ANALYZE;
"""

PAGES = {
    "overview": "/",
    "queue, first page": "/exceptions",
    "queue, filtered": "/exceptions?reason=OVERPAID&status=open&sort=largest",
    "exception detail": "/exceptions/MM-00000042",
    "timeline (search)": "/search?q=ORD-00000420",
}


def load(settings: Settings, schema: str, orders: int) -> None:
    migrate(settings.database_url, schema)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        use_schema(conn, schema)
        # Several statements: no server-side parameters, so the integers go in as text.
        values = {
            "orders": str(orders),
            "customers": str(max(10, orders // 100)),
            "mismatches": str(orders // MISMATCH_EVERY),
            "every": str(MISMATCH_EVERY),
            "reasons": "[" + ", ".join(f"'{r}'" for r in REASONS) + "]",
        }
        conn.execute((_LOAD % values).encode())
        # What the projection stores when each day closes (projections/store.py): the
        # currencies seen and every closed day's figures, by the projection's own code.
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO currencies SELECT DISTINCT currency FROM balance_history"
                " ON CONFLICT DO NOTHING"
            )
            days = [r[0] for r in cur.execute("SELECT day FROM closed_days ORDER BY day")]
            materialise.compute(cur, days)
            # What the projection keeps per customer as balances change (store.py).
            cur.execute(
                "INSERT INTO open_by_customer SELECT customer_id, currency, sum(open_balance),"
                " count(*) FROM balance_current WHERE open_balance > 0 GROUP BY 1, 2"
            )
        conn.execute("ANALYZE")


def measure(
    settings: Settings, schema: str, repeats: int, pages: list[str] | None = None
) -> list[dict[str, Any]]:
    bench_settings = settings.model_copy(update={"read_schema": schema})
    users = Users(settings.database_url, schema)
    if users.get("bench") is None:  # a schema measured before (--schema) has it
        users.add("bench", "viewer", "bench-password")
    app = create_app(bench_settings, "a bench secret of enough length", publish=lambda _e: None)
    results = []
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get("/login").text
        token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"csrf": token, "name": "bench", "password": "bench-password"})
        for name, path in PAGES.items():
            if pages and name not in pages:
                continue
            assert client.get(path).status_code == 200, path  # warm-up
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, path
            times.sort()
            results.append(
                {
                    "page": name,
                    "path": path,
                    "requests": repeats,
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                    "max_ms": round(times[-1], 1),
                }
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    parser.add_argument(
        "--schema", help="measure this schema, loaded before with --keep (it is kept)"
    )
    parser.add_argument("--load-only", action="store_true", help="load, keep, do not measure")
    parser.add_argument(
        "--page", action="append", choices=list(PAGES), help="only these pages (repeatable)"
    )
    args = parser.parse_args()
    settings = get_settings()
    schema = args.schema or f"bench_web_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    if args.schema is None:
        load(settings, schema, args.orders)
    loaded = time.perf_counter() - started
    if args.load_only:
        print(f"{args.orders:,} orders loaded into schema {schema} in {loaded:.0f} s")
        return 0
    try:
        results = measure(settings, schema, args.repeats, args.page)
    finally:
        if not args.keep and args.schema is None:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    print(f"{args.orders:,} orders, {args.orders // MISMATCH_EVERY:,} mismatches "
          f"(loaded in {loaded:.0f} s); goal p95 <= 200 ms")  # fmt: skip
    for r in results:
        print(f"  {r['page']:<20} p50 {r['p50_ms']:>8.1f} ms   p95 {r['p95_ms']:>8.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "web_pages.json"
    out.write_text(json.dumps({"orders": args.orders, "pages": results}, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
