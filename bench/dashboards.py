"""How long each SQL query of the Grafana dashboards, and each `o2c report`, takes on an
existing read schema (the goal: 50 ms at the 95th percentile, on the scale run's read
models). Queries are expanded as Grafana expands them (bench/grafana.py), over the
range of the schema's closed days.

    python -m bench.dashboards --schema o2c_read --runs 20

`--recon-before-after` measures the panels A/B/A/B on the same schema: A with
`daily_recon_report` as migration 0003 defined it (computed on each query; replaced inside
a transaction that is rolled back), B as it is (0010: stored per closed day).
`--exceptions-before-after` does the same, panels and reports, with A's `exceptions` as
0003 defined it (a fold of every mismatch event) and `ar_ageing` as 0004 did (sums of the
day's ageing_by_day rows), B as they are (0012: read from stored rows).
`--currencies-before-after`: A with the Finance dashboard's currency variable as it read
before 0013 (every open item and daily report row) and `report_currencies` as 0007 defined
it, B as they are (the `currencies` table).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.grafana import dashboards, interpolate, sql_queries
from projections.migrate import MIGRATIONS
from projections.reports import Reports
from services.settings import get_settings


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


def _timed(run: Callable[[], object], runs: int) -> dict[str, float]:
    run()  # warm the cache and the plan, as a dashboard that refreshes does
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(_p95(samples), 1)}


def _panels(
    conn: psycopg.Connection[Any],
    name: str,
    dashboard: Mapping[str, Any],
    schema: str,
    time_from: datetime,
    time_to: datetime,
    runs: int,
) -> dict[str, dict[str, float]]:
    variables = [
        {**v, "query": schema} if v["name"] == "read_schema" else v
        for v in dashboard.get("templating", {}).get("list", [])
    ]

    def options_of(variable: Mapping[str, Any]) -> list[str]:
        text = interpolate(str(variable["query"]), variables, time_from, time_to, options_of)
        return [str(r[0]) for r in conn.execute(text.encode()).fetchall()]

    found = {}
    for query in sql_queries(name, dashboard):
        text = interpolate(query.sql, variables, time_from, time_to, options_of).encode()

        def run(text: bytes = text) -> object:
            return conn.execute(text).fetchall()

        found[query.name] = _timed(run, runs)
    return found


def _view_as_defined_in(migration: str, view: str) -> str:
    text = (MIGRATIONS / migration).read_text()
    found = re.search(rf"CREATE (OR REPLACE )?VIEW {view} AS\s", text)
    assert found is not None, (migration, view)
    body = text[found.end() : text.index(";\n", found.end())]
    return f"CREATE OR REPLACE VIEW {view} AS\n{body}"


# The Finance dashboard's currency variable before migration 0013, in the place of the
# view it reads now, so the variable as it is runs the query as it was.
_CURRENCY_VARIABLE_BEFORE_0013 = (
    "CREATE OR REPLACE VIEW known_currencies AS\n"
    "SELECT DISTINCT currency FROM open_items\n"
    "UNION SELECT DISTINCT currency FROM daily_recon_report"
)

# For each before/after comparison, the statements that put the views back as they were.
BEFORE: dict[str, tuple[str, ...]] = {
    "recon": (_view_as_defined_in("0003_read_models.sql", "daily_recon_report"),),
    "exceptions": (
        _view_as_defined_in("0003_read_models.sql", "exceptions"),
        _view_as_defined_in("0004_materialised_days.sql", "ar_ageing"),
    ),
    "currencies": (
        _view_as_defined_in("0007_roles.sql", "report_currencies"),
        _CURRENCY_VARIABLE_BEFORE_0013,
    ),
}


def measure(conninfo: str, schema: str, runs: int, *, before: Sequence[str] = ()) -> dict[str, Any]:
    """`before`: statements giving views their earlier definitions, for this measurement
    only (in a transaction rolled back at its end)."""
    results: dict[str, Any] = {"schema": schema, "runs": runs, "panels": {}, "reports": {}}
    with psycopg.connect(conninfo, autocommit=not before) as conn:
        if before:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            for statement in before:
                conn.execute(statement.encode())
        conn.execute("SET search_path TO pg_catalog")
        first, last = conn.execute(
            sql.SQL("SELECT min(day), max(day) FROM {}.closed_days").format(sql.Identifier(schema))
        ).fetchone() or (None, None)
        today = datetime.now(UTC)
        time_from = datetime.combine(first, datetime.min.time(), UTC) if first else today
        time_to = (
            datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=1) if last else today
        )

        for name, dashboard in dashboards().items():
            results["panels"].update(
                _panels(conn, name, dashboard, schema, time_from, time_to, runs)
            )
        # The reports on the same connection: the replaced views are visible to it alone.
        reports = Reports(conninfo, schema, connection=conn if before else None)
        try:
            _reports(results, reports, last or today.date(), runs)
        finally:
            if before:
                conn.rollback()
            else:
                reports.close()
    return results


def _reports(results: dict[str, Any], reports: Reports, day: date, runs: int) -> None:
    for label, run in {
        "report ageing --as-of (closed day)": lambda: reports.ageing(day),
        "report ageing --by channel": lambda: reports.ageing(day, "channel"),
        "report dso": lambda: reports.dso(None),
        "report dso --as-of (closed day)": lambda: reports.dso(day),
        "report exposure": reports.exposure,
        "report exceptions --status open": lambda: reports.exceptions("open"),
        "report exceptions --status open --limit 100": lambda: reports.exceptions("open", 100),
        "report daily": lambda: reports.daily(day),
    }.items():
        results["reports"][label] = _timed(run, runs)


def _before_after(
    conninfo: str, schema: str, runs: int, rounds: int, before: str, labels: tuple[str, str]
) -> None:
    p95: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for label, views in ((labels[0], BEFORE[before]), (labels[1], ())):
            found = measure(conninfo, schema, runs, before=views)
            for name, figures in {**found["panels"], **found["reports"]}.items():
                p95.setdefault(name, {}).setdefault(label, []).append(figures["p95_ms"])
    a_label, b_label = (f"{label} p95" for label in labels)
    print(f"{a_label:>10} {b_label:>10}  query (median of {rounds} rounds of {runs} runs)")
    for name, by in p95.items():
        a, b = statistics.median(by[labels[0]]), statistics.median(by[labels[1]])
        print(f"{a:10.1f} {b:10.1f}  {name}")
    print(json.dumps(p95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", default=get_settings().read_schema)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--recon-before-after", type=int, metavar="ROUNDS", default=0)
    parser.add_argument("--exceptions-before-after", type=int, metavar="ROUNDS", default=0)
    parser.add_argument("--currencies-before-after", type=int, metavar="ROUNDS", default=0)
    args = parser.parse_args()
    url = get_settings().database_url
    if args.recon_before_after:
        _before_after(
            url, args.schema, args.runs, args.recon_before_after, "recon", ("0003", "0010")
        )
        return
    if args.exceptions_before_after:
        rounds = args.exceptions_before_after
        _before_after(url, args.schema, args.runs, rounds, "exceptions", ("main", "0012"))
        return
    if args.currencies_before_after:
        rounds = args.currencies_before_after
        _before_after(url, args.schema, args.runs, rounds, "currencies", ("main", "0013"))
        return
    results = measure(get_settings().database_url, args.schema, args.runs)
    for group in ("panels", "reports"):
        for name, figures in results[group].items():
            print(f"{figures['p95_ms']:8.1f} ms p95  {figures['p50_ms']:8.1f} ms p50  {name}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
