"""`o2c doctor`: is everything o2c-matcher needs there, and in the shape it expects?

Checks the broker (reachable, version, the registry's topics and their partition counts),
PostgreSQL (reachable, migrations applied, each process's role and its privileges) and how
far the worker and the projections are behind, and prints one table with what to fix.
Exit status: 0 all well, 1 something to fix, 2 a service cannot be reached or the broker
refuses our TLS or credentials.

Example:
    o2c doctor
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from schemas.topics import ALL_TOPICS, Role
from services.cli.output import table
from services.connections import (
    KafkaRefused,
    ServiceUnreachable,
    connect_database,
    database_address,
    require_kafka,
)
from services.database_roles import GROUP, ROLES, DatabaseRole, login_of
from services.settings import Settings, get_settings

Status = Literal["ok", "fix", "unreachable", "refused", "skipped"]
# More records than this not yet handled is worth a look (a worker or projection that
# stopped, or cannot keep up); fewer is what a running pipeline has in flight.
LAG_TO_FIX = 10_000


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def register(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check Kafka, PostgreSQL, the topics, the migrations and the consumers' lag",
    )
    doctor.set_defaults(handler=run)


def run(_args: argparse.Namespace) -> int:
    checks = diagnose(get_settings())
    print(
        table(
            ("check", "status", "detail", "what to do"),
            [(c.name, c.status, c.detail, c.fix) for c in checks],
        )
    )
    return exit_status(checks)


def exit_status(checks: list[Check]) -> int:
    if any(c.status in ("unreachable", "refused") for c in checks):
        return 2
    return 1 if any(c.status == "fix" for c in checks) else 0


def diagnose(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    metadata = _kafka(settings, checks)
    database = _database(settings, checks)
    if metadata is None:
        checks.append(Check("worker lag", "skipped", "needs Kafka"))
    else:
        checks.append(_worker_lag(settings, set(metadata.topics)))
    if metadata is None or database is None:
        checks.append(Check("projections lag", "skipped", "needs Kafka and PostgreSQL"))
    else:
        checks.append(_projections_lag(settings, set(metadata.topics)))
    return checks


def _unreachable(name: str, exc: ServiceUnreachable) -> Check:
    variable = "O2C_KAFKA_BOOTSTRAP" if exc.service == "Kafka" else "O2C_DATABASE_URL"
    return Check(
        name,
        "unreachable",
        f"{exc.address}: {exc.reason}",
        f"`make up`, or set {variable}",
    )


# --- Kafka -----------------------------------------------------------------------------------


def _kafka(settings: Settings, checks: list[Check]) -> Any:
    try:
        metadata = require_kafka(settings.kafka_bootstrap, security=settings)
    except KafkaRefused as exc:
        checks.append(Check("kafka", "refused", f"{exc.address}: {exc.reason}", exc.fix))
        return None
    except ServiceUnreachable as exc:
        checks.append(_unreachable("kafka", exc))
        return None
    brokers = len(metadata.brokers)
    checks.append(
        Check(
            "kafka",
            "ok",
            f"{settings.kafka_bootstrap}: cluster {metadata.cluster_id}, {brokers} "
            # Kafka's protocol tells a client what each request supports, not the release.
            f"broker{'s' * (brokers != 1)} (release not told to clients)",
        )
    )
    checks.extend(topic_checks({n: len(t.partitions) for n, t in metadata.topics.items()}))
    return metadata


def topic_checks(found: dict[str, int]) -> list[Check]:
    """The registry's topics against the partition counts found on the broker."""
    missing = [t.name for t in ALL_TOPICS if t.name not in found]
    wrong = [
        f"{t.name} has {found[t.name]} (registry: {t.partitions})"
        for t in ALL_TOPICS
        if t.name in found and found[t.name] != t.partitions
    ]
    checks = []
    if missing:
        checks.append(
            Check(
                "topics",
                "fix",
                f"{len(missing)} of {len(ALL_TOPICS)} missing: {_some(missing)}",
                "`o2c topics create`",
            )
        )
    if wrong:
        checks.append(
            Check(
                "partitions",
                "fix",
                "; ".join(wrong),
                "recreate the topic with the registry's count (adding partitions moves keys)",
            )
        )
    if not missing and not wrong:
        checks.append(
            Check("topics", "ok", f"all {len(ALL_TOPICS)} with the registry's partition counts")
        )
    return checks


def _some(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


# --- PostgreSQL ------------------------------------------------------------------------------


def _database(settings: Settings, checks: list[Check]) -> bool | None:
    from projections.migrate import applied, available

    try:
        with connect_database(settings.database_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except ServiceUnreachable as exc:
        checks.append(_unreachable("postgresql", exc))
        return None
    version = row[0] if row else "?"
    checks.append(
        Check(
            "postgresql", "ok", f"{database_address(settings.database_url)}: PostgreSQL {version}"
        )
    )
    done = {v for v, _name, _at in applied(settings.database_url, settings.read_schema)}
    pending = [m.path.name for m in available() if m.version not in done]
    if pending:
        checks.append(
            Check(
                "migrations",
                "fix",
                f"schema {settings.read_schema}: {len(pending)} not applied: {_some(pending)}",
                "`o2c db migrate` (`o2c projections run` does it too)",
            )
        )
    else:
        checks.append(
            Check("migrations", "ok", f"schema {settings.read_schema}: all {len(done)} applied")
        )
        checks.extend(role_checks(settings))
    return True


# What each role must and must not be allowed (migration 0007): (kind, object, privilege,
# expected). "table" objects are in the read schema; "schema" is the read schema itself.
ROLE_PRIVILEGES: dict[DatabaseRole, tuple[tuple[str, str, str, bool], ...]] = {
    "projector": (
        ("table", "mismatch_events", "INSERT", True),
        ("table", "timeline", "UPDATE", True),
        ("table", "web_users", "SELECT", False),
        ("schema", "", "CREATE", False),
    ),
    "reader": (
        ("table", "exceptions", "SELECT", True),
        ("table", "dso_daily", "SELECT", True),
        ("table", "mismatch_events", "SELECT", False),
        ("table", "exceptions", "INSERT", False),
        ("schema", "", "CREATE", False),
    ),
    "web": (
        ("table", "exception_queue", "SELECT", True),
        ("table", "web_actions", "INSERT", True),
        ("table", "mismatch_events", "INSERT", False),
        ("schema", "", "CREATE", False),
    ),
}


def role_checks(settings: Settings) -> list[Check]:
    """Each process's login: it can log in, and has the privileges of its role, no more."""
    checks = []
    schema = settings.read_schema
    with connect_database(settings.database_url) as conn:
        for role in ROLES:
            url = settings.role_database_url(role)
            user = login_of(url).user
            name = f"role {role}"
            fix = "`o2c db migrate` (creates the roles and the users of the O2C_*_DATABASE_URLs)"
            try:
                connect_database(url).close()
            except ServiceUnreachable as exc:
                checks.append(Check(name, "fix", f"{user} cannot log in: {exc.reason}", fix))
                continue
            wrong = []
            if conn.execute(
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = %s",
                (user,),
            ).fetchone() != (False,):
                wrong.append("may create roles or databases")
            for kind, obj, privilege, expected in ROLE_PRIVILEGES[role]:
                if kind == "schema":
                    query = "SELECT has_schema_privilege(%s, %s, %s)"
                    args: tuple[str, ...] = (user, schema, privilege)
                    what = f"{privilege} on schema {schema}"
                else:
                    query = "SELECT has_table_privilege(%s, %s, %s)"
                    args = (user, f'"{schema}"."{obj}"', privilege)
                    what = f"{privilege} on {obj}"
                try:
                    found = conn.execute(query, args).fetchone() == (True,)
                except psycopg.errors.UndefinedTable:
                    conn.rollback()
                    found = False
                if found != expected:
                    wrong.append(("lacks " if expected else "has ") + what)
            if wrong:
                checks.append(Check(name, "fix", f"{user}: {'; '.join(wrong)}", fix))
            else:
                checks.append(Check(name, "ok", f"{user} ({GROUP[role]}): privileges as expected"))
    return checks


# --- lag -------------------------------------------------------------------------------------


def lag_check(name: str, behind: int | None, start: str) -> Check:
    if behind is None:
        return Check(name, "fix", "has never committed a position", start)
    if behind > LAG_TO_FIX:
        return Check(name, "fix", f"{behind:,} records behind", f"is it running? {start}")
    return Check(name, "ok", f"{behind:,} records behind")


def _worker_lag(settings: Settings, existing: set[str]) -> Check:
    from services.kafka_io import consumer

    def committed(partitions: list[Any]) -> dict[Any, int]:
        c = consumer(settings.kafka_bootstrap, settings.app_id)
        try:
            return {
                (tp.topic, tp.partition): tp.offset
                for tp in c.committed(partitions, timeout=10)
                if tp.offset >= 0
            }
        finally:
            c.close()

    inputs = [t.name for t in ALL_TOPICS if t.role is Role.INPUT and t.name in existing]
    behind = _behind(settings.kafka_bootstrap, inputs, committed)
    return lag_check(f"worker lag ({settings.app_id})", behind, "`o2c worker`")


def _behind(
    bootstrap: str, topics: list[str], positions: Callable[[list[Any]], dict[Any, int]]
) -> int | None:
    """Records between each partition's stored position and its end; None if no position
    was ever stored."""
    from confluent_kafka import TopicPartition

    from services.kafka_io import end_offsets

    ends = end_offsets(bootstrap, topics)
    stored = positions([TopicPartition(tp.topic, tp.partition) for tp in ends])
    if not stored:
        return None
    return sum(max(0, tp.offset - stored.get((tp.topic, tp.partition), 0)) for tp in ends)


def _projections_lag(settings: Settings, existing: set[str]) -> Check:
    from projections.model import TOPICS
    from projections.runner import PROJECTION

    def stored(_partitions: list[Any]) -> dict[Any, int]:
        with connect_database(settings.database_url) as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT topic, partition, next_offset FROM {}.projection_offsets"
                    " WHERE projection = %s"
                ).format(sql.Identifier(settings.read_schema)),
                (PROJECTION,),
            ).fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    try:
        topics = [t.name for t in TOPICS if t.name in existing]
        behind = _behind(settings.kafka_bootstrap, topics, stored)
    except psycopg.errors.UndefinedTable:
        return Check("projections lag", "skipped", "no read models yet (migrations not applied)")
    return lag_check("projections lag", behind, "`o2c projections run`")
