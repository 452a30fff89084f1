"""The SQL of the Grafana dashboards in deploy/grafana, as Grafana would send it.

Grafana's SQL data sources expand macros and template variables before the query reaches
PostgreSQL; these helpers do the same for the ones the dashboards use, and refuse any
other, so a query is tested exactly as the panel runs it:
- `$__timeFilter(col)` becomes `col BETWEEN '<from>' AND '<to>'` (RFC 3339, UTC),
  `$__timeFrom()` and `$__timeTo()` the quoted bounds;
- a variable that is multi-value or has "All" becomes its values quoted and joined by
  commas (All: every value of its query), any other its value with `'` doubled;
  `$name` and `${name}` are both accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
SQL_TYPES = frozenset({"grafana-postgresql-datasource", "postgres"})

_MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class SqlQuery:
    dashboard: str
    panel: str  # the panel's title, or "variable <name>"
    ref: str
    sql: str
    format: str

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # the panels of a collapsed row


def _is_sql(datasource: Any) -> bool:
    return isinstance(datasource, dict) and datasource.get("type") in SQL_TYPES


def sql_queries(name: str, dashboard: Mapping[str, Any]) -> list[SqlQuery]:
    """Every SQL query of a dashboard: each target of a panel whose data source is
    PostgreSQL, and each query variable on PostgreSQL."""
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if _is_sql(target.get("datasource", panel.get("datasource"))):
                found.append(
                    SqlQuery(
                        name,
                        panel["title"],
                        target["refId"],
                        target["rawSql"],
                        target.get("format", "time_series"),
                    )
                )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and _is_sql(variable.get("datasource")):
            query = variable["query"]
            text = query if isinstance(query, str) else query["rawSql"]
            found.append(SqlQuery(name, f"variable {variable['name']}", "query", text, "table"))
    return found


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def interpolate(
    text: str,
    variables: Sequence[Mapping[str, Any]],
    time_from: datetime,
    time_to: datetime,
    options_of: Callable[[Mapping[str, Any]], list[str]],
) -> str:
    """`text` as Grafana's PostgreSQL data source sends it. `options_of(variable)` gives a
    query variable's values (what "All" stands for)."""
    start, end = f"'{rfc3339(time_from)}'", f"'{rfc3339(time_to)}'"

    def macro(match: re.Match[str]) -> str:
        name, argument = match[1], match[2].strip()
        if name == "timeFilter":
            return f"{argument} BETWEEN {start} AND {end}"
        if name == "timeFrom":
            return start
        if name == "timeTo":
            return end
        raise ValueError(f"macro $__{name} is not one Grafana expands as this test does")

    by_name = {v["name"]: v for v in variables}

    def variable(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in by_name:
            raise ValueError(f"${name} is no variable of the dashboard")
        spec = by_name[name]
        if spec.get("multi") or spec.get("includeAll"):
            values = _selected(spec, options_of)
            return ",".join("'" + v.replace("'", "''") + "'" for v in values)
        return str(_single(spec)).replace("'", "''")

    expanded = _VARIABLE.sub(variable, _MACRO.sub(macro, text))
    if "$" in expanded:
        raise ValueError(f"left unexpanded: {expanded!r}")
    return expanded


def _single(spec: Mapping[str, Any]) -> str:
    if spec.get("type") == "constant":
        return str(spec["query"])
    value = spec.get("current", {}).get("value")
    if isinstance(value, list):
        (value,) = value
    return str(value)


def _selected(
    spec: Mapping[str, Any], options_of: Callable[[Mapping[str, Any]], list[str]]
) -> list[str]:
    value = spec.get("current", {}).get("value", ["$__all"])
    values = value if isinstance(value, list) else [value]
    if "$__all" in values:
        if spec.get("allValue"):
            raise ValueError("a custom allValue is not expanded by this test")
        return options_of(spec)
    return [str(v) for v in values]
