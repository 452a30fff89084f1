"""Prometheus and Grafana in deploy/compose.yaml and deploy/k8s (no Docker here): the files
they mount exist, the scrape targets are the services and ports the code serves on, and
every metrics endpoint is configured to answer beyond loopback."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import yaml

from services.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of each bind mount (named volumes left out)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            found[target] = (DEPLOY / source).resolve()
    return found


def test_compose_mounts_only_files_that_exist() -> None:
    services = _compose()["services"]
    mounted = [p for s in services.values() for p in _mounts(s).values()]
    assert len(mounted) >= 4
    for path in mounted:
        assert path.exists(), path


def test_compose_prometheus_loads_the_scrape_config_and_every_rule_file() -> None:
    mounts = _mounts(_compose()["services"]["prometheus"])
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    assert config_path == DEPLOY / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    (pattern,) = config["rule_files"]
    directory, glob = pattern.split("/")
    assert mounts[f"/etc/prometheus/{directory}"] == DEPLOY / "prometheus" / directory
    assert sorted(mounts[f"/etc/prometheus/{directory}"].glob(glob))


def test_compose_grafana_provisions_the_data_sources_and_the_dashboards() -> None:
    mounts = _mounts(_compose()["services"]["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    assert sorted((provisioning / "datasources").glob("*.yaml"))
    (provider_file,) = (provisioning / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert {p.name for p in dashboards.glob("*.json")} == {"finance.json", "operations.json"}


def test_grafana_data_sources_point_at_the_compose_services() -> None:
    services = _compose()["services"]
    (path,) = (DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yaml")
    for source in yaml.safe_load(path.read_text())["datasources"]:
        host = source["url"].removeprefix("http://").split(":")[0]
        assert host in services, source["name"]


def test_prometheus_scrapes_the_ports_the_processes_serve_on() -> None:
    services = _compose()["services"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    defaults = Settings()
    assert targets == {
        "o2c-worker": f"worker:{defaults.metrics_port}",
        "o2c-projections": f"projections:{defaults.projection_metrics_port}",
        "o2c-web": f"web:{defaults.web_metrics_port}",
    }
    for target in targets.values():
        assert target.split(":")[0] in services


def test_compose_and_kubernetes_bind_metrics_beyond_loopback() -> None:
    assert _compose()["x-o2c"]["environment"]["O2C_METRICS_HOST"] == "0.0.0.0"
    config = next(yaml.safe_load_all((DEPLOY / "k8s" / "config.yaml").read_text()))
    assert config["data"]["O2C_METRICS_HOST"] == "0.0.0.0"


def test_kubernetes_pods_annotate_the_port_their_container_serves_metrics_on() -> None:
    annotated = 0
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") not in ("Deployment", "StatefulSet"):
                continue
            template = document["spec"]["template"]
            annotations = template["metadata"].get("annotations", {})
            assert annotations.get("prometheus.io/scrape") == "true", path.name
            ports = {
                p["containerPort"]
                for c in template["spec"]["containers"]
                for p in c.get("ports", [])
            }
            assert int(annotations["prometheus.io/port"]) in ports, path.name
            annotated += 1
    assert annotated == 3


def test_metrics_endpoint_binds_the_host_it_is_given() -> None:
    import socket

    from projections import metrics

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    metrics.serve(port, "127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "o2c_projection_batches_total" in body


def test_the_projections_endpoint_shows_none_of_the_workers_series() -> None:
    """What `o2c projections run` imports registers only the projections' metrics."""
    import subprocess
    import sys

    code = (
        "import services.cli.db, projections.runner, projections.rebuild\n"
        "from prometheus_client import REGISTRY, generate_latest\n"
        "print(generate_latest(REGISTRY).decode())"
    )
    body = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "o2c_projection_lag" in body
    assert "o2c_consumer_lag" not in body
    assert "o2c_commit_seconds" not in body
