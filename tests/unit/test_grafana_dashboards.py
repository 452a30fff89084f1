"""The Grafana files of deploy/grafana without a server: the dashboards parse, name only the
data sources provisioned beside them, and their SQL reads only the views of the dashboard
contract (docs/read-models.md), never the tables beneath them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.grafana import DASHBOARDS, dashboards, interpolate, panels, sql_queries

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"


def contract_views() -> set[str]:
    """The views listed under "Views: the dashboard contract" in docs/read-models.md."""
    text = (REPO / "docs" / "read-models.md").read_text()
    section = text.split("## Views: the dashboard contract", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))


def test_the_contract_lists_the_views_dashboards_may_read() -> None:
    assert {"open_items", "dso_daily", "ar_ageing", "exceptions", "business_today"} <= (
        contract_views()
    )


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_sql_reads_only_contract_views(name: str) -> None:
    views = contract_views()
    queries = sql_queries(name, dashboards()[name])
    assert queries
    for query in queries:
        named = set(re.findall(r"\$read_schema\.(\w+)", query.sql))
        assert named, f"{query.name}: reads no view through $read_schema"
        assert named <= views, f"{query.name} reads {named - views}, not in the contract"
        # Every relation after FROM or JOIN is a qualified view (or a CTE-free alias).
        for relation in re.findall(r"\b(?:FROM|JOIN)\s+([\w$.]+)", query.sql, re.IGNORECASE):
            assert relation.startswith("$read_schema."), f"{query.name}: reads {relation}"


def _provisioned_uids() -> dict[str, str]:
    (path,) = (PROVISIONING / "datasources").glob("*.yaml")
    document = yaml.safe_load(path.read_text())
    return {d["uid"]: d["type"] for d in document["datasources"]}


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_uses_only_the_provisioned_data_sources(name: str) -> None:
    provisioned = _provisioned_uids()
    dashboard = dashboards()[name]
    sources = [p["datasource"] for p in panels(dashboard)]
    sources += [t["datasource"] for p in panels(dashboard) for t in p.get("targets", [])]
    sources += [v["datasource"] for v in dashboard["templating"]["list"] if "datasource" in v]
    assert sources
    for source in sources:
        assert provisioned.get(source["uid"]) == source["type"], source


def test_dashboards_have_unique_uids_and_panel_ids() -> None:
    found = dashboards()
    assert set(found) == {"finance", "operations"}
    assert len({d["uid"] for d in found.values()}) == len(found)
    for dashboard in found.values():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids))


def test_the_dashboard_provider_loads_the_dashboards_directory() -> None:
    (path,) = (PROVISIONING / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("/o2c")
    assert DASHBOARDS.is_dir()


def test_interpolation_expands_macros_and_variables_as_grafana_does() -> None:
    variables: list[dict[str, Any]] = [
        {"name": "read_schema", "type": "constant", "query": "o2c_read"},
        {
            "name": "currency",
            "type": "query",
            "multi": True,
            "includeAll": True,
            "current": {"value": ["$__all"]},
        },
        {"name": "owner", "type": "custom", "current": {"value": "o'brien"}},
    ]
    text = (
        "SELECT 1 FROM $read_schema.x WHERE $__timeFilter(day) AND currency IN ($currency)"
        " AND owner = '${owner}' AND t < $__timeTo()"
    )
    expanded = interpolate(
        text,
        variables,
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, 12, 30, tzinfo=UTC),
        lambda _v: ["CNY", "USD"],
    )
    assert expanded == (
        "SELECT 1 FROM o2c_read.x WHERE day BETWEEN '2026-11-01T00:00:00Z' AND "
        "'2026-12-01T12:30:00Z' AND currency IN ('CNY','USD') AND owner = 'o''brien'"
        " AND t < '2026-12-01T12:30:00Z'"
    )


def test_interpolation_refuses_a_macro_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="timeGroup"):
        interpolate(
            "SELECT $__timeGroup(day, '1d')", [], datetime.now(UTC), datetime.now(UTC), list
        )
