"""deploy/prometheus checked by promtool (Debian's `prometheus` package; `.ci/run` installs
it): the scrape config and rules are valid, every alert's unit tests pass, and every alert
has a test that it fires and one that it does not fire before. The metric names of the
rules and of the Operations dashboard are ones the code defines."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.grafana import dashboards, panels

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        # Never a skip: a rule nobody checked is what these tests exist to prevent.
        pytest.fail("promtool is missing: apt-get install -y prometheus (.ci/run does)")
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=120)


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_config_is_valid() -> None:
    _ok(promtool("check", "config", str(PROMETHEUS / "prometheus.yml")))


def test_rules_are_valid() -> None:
    assert RULE_FILES
    _ok(promtool("check", "rules", *map(str, RULE_FILES)))


def test_every_alert_rule_passes_its_unit_tests() -> None:
    assert TEST_FILES
    _ok(promtool("test", "rules", *map(str, TEST_FILES)))


def _alerts() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def _seconds(duration: str) -> int:
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dhms])", duration))


def test_every_alert_has_a_test_that_it_fires_and_that_it_does_not_before() -> None:
    cases: dict[str, list[tuple[int, int, bool]]] = {}
    for path in TEST_FILES:
        for number, test in enumerate(yaml.safe_load(path.read_text())["tests"]):
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(
                    (number, _seconds(case["eval_time"]), bool(case["exp_alerts"]))
                )
    for rule in _alerts():
        found = cases.get(rule["alert"], [])
        fires = [(n, t) for n, t, firing in found if firing]
        assert fires, f"{rule['alert']}: no test where it fires"
        assert any(
            n == fn and t < ft and not firing for n, t, firing in found for fn, ft in fires
        ), f"{rule['alert']}: no test that it is silent before it fires"


def _defined_series() -> set[str]:
    """Every series name the worker's, the projections' and the web app's endpoints can
    expose."""
    import importlib

    import prometheus_client

    for module in ("services.metrics", "projections.metrics", "services.web.metrics"):
        importlib.import_module(module)  # for its registrations
    names = {"up"}
    for family in prometheus_client.REGISTRY.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }.get(family.type, ("",))
        names |= {family.name + s for s in suffixes}
    return names


def _series_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(o2c_\w+|up)\b(?=\s*[{\[)\s]|$)", expr))


def test_rules_use_only_metrics_the_code_defines() -> None:
    defined = _defined_series()
    for rule in _alerts():
        used = _series_in(rule["expr"])
        assert used, rule["alert"]
        assert used <= defined, f"{rule['alert']} uses {used - defined}"


def test_operations_dashboard_uses_only_metrics_the_code_defines() -> None:
    defined = _defined_series()
    exprs = [
        t["expr"]
        for p in panels(dashboards()["operations"])
        for t in p.get("targets", [])
        if "expr" in t
    ]
    assert exprs
    for expr in exprs:
        used = _series_in(expr)
        assert used, expr
        assert used <= defined, f"{expr} uses {used - defined}"


def test_kubernetes_config_names_jobs_as_the_rules_expect() -> None:
    config = yaml.safe_load((PROMETHEUS / "kubernetes.yml").read_text())
    compose = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == compose["rule_files"]
    (job,) = config["scrape_configs"]
    relabel = {r.get("target_label") for r in job["relabel_configs"]}
    assert "job" in relabel
    jobs = {j["job_name"] for j in compose["scrape_configs"]}
    assert jobs == {"o2c-worker", "o2c-projections", "o2c-web"}
    manifests = (PROMETHEUS.parent / "k8s").glob("*.yaml")
    apps = {
        d["spec"]["template"]["metadata"]["labels"]["app"]
        for path in manifests
        for d in yaml.safe_load_all(path.read_text())
        if d and d.get("kind") in ("Deployment", "StatefulSet")
    }
    assert jobs <= apps
