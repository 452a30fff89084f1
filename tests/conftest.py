"""Fixtures for the real Kafka broker and PostgreSQL server.

Where they come from, in order: the services named by O2C_KAFKA_BOOTSTRAP and
O2C_DATABASE_URL; else Kafka and PostgreSQL containers when a Docker engine answers
`docker info`; else the local stack, started with `deploy/local/stack up`. Nothing here
mocks either service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.kafka_support import OutputWatcher

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    database_url: str
    origin: str  # "environment", "testcontainers" or "deploy/local"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """Kafka and PostgreSQL, with every topic of the contract created."""
    from schemas.topics import ALL_TOPICS
    from services.kafka_io import ensure_topics

    for found in _find_services():
        ensure_topics(found.kafka_bootstrap, ALL_TOPICS)
        yield found


def _find_services() -> Iterator[Services]:
    bootstrap = os.environ.get("O2C_KAFKA_BOOTSTRAP")
    database_url = os.environ.get("O2C_DATABASE_URL")
    if bootstrap and database_url:
        yield Services(bootstrap, database_url, "environment")
    elif _docker_answers():
        yield from _containers()
    else:
        yield _local_stack()


def _local_stack() -> Services:
    stack = str(REPO / "deploy/local/stack")
    subprocess.run([stack, "up"], check=True, stdout=subprocess.DEVNULL)
    # `stack env` prints the addresses for the ports it was configured with.
    exports = subprocess.run([stack, "env"], check=True, capture_output=True, text=True).stdout
    found = dict(
        line.removeprefix("export ").replace("'", "").split("=", 1)
        for line in exports.splitlines()
        if line.startswith("export ")
    )
    return Services(found["O2C_KAFKA_BOOTSTRAP"], found["O2C_DATABASE_URL"], "deploy/local")


def _containers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        PostgresContainer("postgres:16", username="o2c", password="o2c", dbname="o2c") as pg,
    ):
        url = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
        yield Services(kafka.get_bootstrap_server(), url, "testcontainers")


@dataclass
class RunningWorker:
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    metrics_port: int


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(services: Services, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(O2C_KAFKA_BOOTSTRAP=services.kafka_bootstrap, O2C_DATABASE_URL=services.database_url)
    env.update(extra)
    return env


def start_worker(
    services: Services,
    workdir: Path,
    app_id: str,
    *,
    offset_reset: str = "earliest",
    **settings: str,
) -> RunningWorker:
    """Start `o2c worker` in its own application id and wait until it has its partitions.

    `settings` are extra O2C_* variables, e.g. O2C_SOURCE="run-a". The log is appended to,
    so a restarted worker keeps the history of the one before it.
    """
    import time

    from schemas.topics import ALL_TOPICS
    from services.kafka_io import ensure_topics

    ensure_topics(services.kafka_bootstrap, ALL_TOPICS)
    port = _free_port()
    env = service_env(
        services,
        O2C_APP_ID=app_id,
        O2C_STATE_DIR=str(workdir / "state"),
        O2C_METRICS_PORT=str(port),
        O2C_AUTO_OFFSET_RESET=offset_reset,
        # A killed worker's partitions move to its successor after this long.
        O2C_SESSION_TIMEOUT_SECONDS="6",
        **settings,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "worker.log"
    started_at = log.stat().st_size if log.exists() else 0
    o2c = str(Path(sys.executable).with_name("o2c"))
    with log.open("ab") as out:
        process = subprocess.Popen([o2c, "worker"], stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if b"Worker ready" in log.read_bytes()[started_at:]:
            return RunningWorker(process, log, env, port)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"o2c worker did not become ready; log:\n{log.read_text()[-4000:]}")


def stop_worker(worker: RunningWorker) -> None:
    worker.process.terminate()
    try:
        worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


@pytest.fixture(scope="session")
def worker(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """One worker for the session, in an application id of its own whose offsets are set
    to the end of every input topic first, so it sees only what the tests publish."""
    import uuid

    from tests.kafka_support import commit_offsets, end_offsets

    app_id = f"test-{uuid.uuid4().hex[:8]}"
    commit_offsets(services.kafka_bootstrap, app_id, end_offsets(services.kafka_bootstrap))
    running = start_worker(services, tmp_path_factory.mktemp("worker"), app_id)
    yield running
    stop_worker(running)


@pytest.fixture
def watcher(services: Services, worker: RunningWorker) -> Iterator[OutputWatcher]:
    """The session worker's matches and mismatches from now on."""
    from schemas.topics import MATCHES, MISMATCHES
    from tests.kafka_support import OutputWatcher

    w = OutputWatcher(services.kafka_bootstrap, [MATCHES.name, MISMATCHES.name])
    yield w
    w.close()


@pytest.fixture
def read_schema(services: Services) -> Iterator[str]:
    """A fresh PostgreSQL schema with the read-side migrations applied, dropped afterwards."""
    import uuid

    import psycopg
    from psycopg import sql

    from projections.migrate import migrate

    schema = f"test_{uuid.uuid4().hex[:10]}"
    migrate(services.database_url, schema)
    yield schema
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        for name in (schema, f"{schema}_build", f"{schema}_old"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
