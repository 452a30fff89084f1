"""`o2c web` serves its Prometheus series on a port of its own (O2C_WEB_METRICS_PORT), on
the address O2C_METRICS_HOST names: what deploy/prometheus scrapes as job o2c-web."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Services, _free_port, service_env

pytestmark = pytest.mark.e2e

O2C = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "o2c")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _get(url)
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_the_workbench_serves_its_request_series_on_its_metrics_port(
    services: Services, read_schema: str
) -> None:
    web, metrics = _free_port(), _free_port()
    env = service_env(
        services,
        O2C_READ_SCHEMA=read_schema,
        O2C_WEB_METRICS_PORT=str(metrics),
        O2C_METRICS_HOST="127.0.0.1",
    )
    process = subprocess.Popen(
        [O2C, "web", "--demo", "--port", str(web)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{web}/login", 60)
        for _ in range(3):
            assert _get(f"http://127.0.0.1:{web}/login")[0] == 200
        assert _get(f"http://127.0.0.1:{web}/no-such-page")[0] == 404
        status, body = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200
        login = 'o2c_web_requests_total{method="GET",route="/login",status="200"}'
        assert any(line.startswith(login) and float(line.split()[-1]) >= 3 for line in
                   body.splitlines()), body  # fmt: skip
        assert 'o2c_web_requests_total{method="GET",route="other",status="404"}' in body
        assert 'o2c_web_request_seconds_bucket{le="0.005",route="/login"}' in body
        assert "o2c_events_processed_total" not in body  # the worker's series are not here
    finally:
        process.terminate()
        process.wait(timeout=30)
