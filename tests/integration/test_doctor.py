"""`o2c doctor` against the real broker and database (issue #21): all well is exit 0 with
every check ok; what a new deployment lacks is named with the command that fixes it."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from projections.model import TOPICS
from projections.runner import PROJECTION
from projections.store import Store
from schemas.topics import ALL_TOPICS, Role
from services import kafka_io
from services.cli.doctor import diagnose, exit_status
from services.settings import Settings
from tests.conftest import Services

pytestmark = pytest.mark.integration


def settings_for(services: Services, schema: str, app_id: str) -> Settings:
    return Settings(
        kafka_bootstrap=services.kafka_bootstrap,
        database_url=services.database_url,
        read_schema=schema,
        app_id=app_id,
    )


def test_a_deployment_that_is_all_there_and_caught_up_is_all_ok(
    services: Services, read_schema: str
) -> None:
    app_id = f"doctor-{uuid.uuid4().hex[:8]}"
    inputs = [t.name for t in ALL_TOPICS if t.role is Role.INPUT]
    kafka_io.commit_offsets(
        services.kafka_bootstrap, app_id, kafka_io.end_offsets(services.kafka_bootstrap, inputs)
    )
    store = Store(services.database_url, read_schema, PROJECTION)
    try:
        ends = kafka_io.end_offsets(services.kafka_bootstrap, [t.name for t in TOPICS])
        store.save_offsets({(tp.topic, tp.partition): tp.offset for tp in ends})
    finally:
        store.close()
    checks = diagnose(settings_for(services, read_schema, app_id))
    assert [(c.name, c.status) for c in checks if c.status != "ok"] == []
    assert {c.name.split(" (")[0] for c in checks} >= {
        "kafka",
        "topics",
        "postgresql",
        "migrations",
        "worker lag",
        "projections lag",
    }
    assert exit_status(checks) == 0


def test_migrations_not_applied_and_a_worker_never_run_are_named_with_their_fix(
    services: Services,
) -> None:
    schema = f"test_{uuid.uuid4().hex[:10]}"  # never migrated
    checks = {
        c.name.split(" (")[0]: c
        for c in diagnose(settings_for(services, schema, f"doctor-{uuid.uuid4().hex[:8]}"))
    }
    try:
        assert checks["kafka"].status == "ok"
        assert checks["topics"].status == "ok"
        assert checks["migrations"].status == "fix"
        assert "o2c db migrate" in checks["migrations"].fix
        assert checks["worker lag"].status == "fix"
        assert "o2c worker" in checks["worker lag"].fix
        assert checks["projections lag"].status == "skipped"
        assert exit_status(list(checks.values())) == 1
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
