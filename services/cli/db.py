"""`o2c db …` and `o2c projections …`: the read side's schema and the process feeding it.

Example:
    o2c db migrate && o2c projections run &
    o2c projections rebuild     # from offset 0 into fresh tables, then swapped in
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from services.cli.commands import CommandError, reachable_kafka
from services.cli.output import info, table
from services.connections import ServiceUnreachable, require_kafka, wait_for
from services.database_roles import DatabaseRole
from services.settings import Settings, get_settings

log = logging.getLogger("projections")


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="the read side's PostgreSQL schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate = db_sub.add_parser(
        "migrate", help="apply the SQL migrations in projections/migrations not yet applied"
    )
    migrate.add_argument("--schema", help="PostgreSQL schema (default O2C_READ_SCHEMA)")
    migrate.set_defaults(handler=db_migrate)
    status = db_sub.add_parser("status", help="list the migrations applied")
    status.add_argument("--schema", help="PostgreSQL schema (default O2C_READ_SCHEMA)")
    status.set_defaults(handler=db_status)

    proj = sub.add_parser("projections", help="feed the read models from Kafka")
    proj_sub = proj.add_subparsers(dest="projections_command", required=True, metavar="ACTION")
    run = proj_sub.add_parser(
        "run", help="consume the topics into the read models, in the foreground (Ctrl-C stops)"
    )
    run.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="stop after SECONDS with no message"
    )
    run.add_argument(
        "--metrics-port", type=int, help="Prometheus port (O2C_PROJECTION_METRICS_PORT)"
    )
    run.set_defaults(handler=projections_run)
    rebuild = proj_sub.add_parser(
        "rebuild",
        help="consume from offset 0 into fresh tables, then swap them in atomically",
    )
    rebuild.set_defaults(handler=projections_rebuild)


def db_migrate(args: argparse.Namespace) -> int:
    from projections.migrate import MigrationError, migrate

    settings = get_settings()
    schema = args.schema or settings.read_schema
    try:
        done = migrate(settings.database_url, schema, logins=settings.role_database_urls())
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    for m in done:
        info(f"applied {m.path.name}")
    info(f"schema {schema}: {'up to date' if not done else f'{len(done)} migrations applied'}")
    return 0


def db_status(args: argparse.Namespace) -> int:
    from projections.migrate import applied, available

    settings = get_settings()
    schema = args.schema or settings.read_schema
    done = {v: at for v, _name, at in applied(settings.database_url, schema)}
    rows = [(m.version, m.path.name, done.get(m.version, "pending")) for m in available()]
    print(table(("version", "file", "applied at"), rows))
    return 0


def migrated(settings: Settings, role: DatabaseRole) -> None:
    """Apply pending migrations as the owner, unless the schema is up to date already: a
    process whose role finds nothing to do never needs the owner's password (where
    `o2c db migrate` runs as a step of its own, as in deploy/k8s)."""
    from projections.migrate import migrate, up_to_date

    try:
        if up_to_date(settings.role_database_url(role), settings.read_schema):
            return
    except ServiceUnreachable:
        pass  # its login may not exist before the first migration
    migrate(settings.database_url, settings.read_schema, logins=settings.role_database_urls())


def _runner_logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )


def projections_run(args: argparse.Namespace) -> int:
    from projections import metrics
    from projections.migrate import MigrationError
    from projections.runner import ProjectionRunner
    from projections.timeline import TimelineRunner

    _runner_logging()
    settings = get_settings()
    port = settings.projection_metrics_port if args.metrics_port is None else args.metrics_port
    metrics.serve(port, settings.metrics_host)

    projector = settings.role_database_url("projector")

    def start() -> ProjectionRunner:
        require_kafka(settings.kafka_bootstrap)
        migrated(settings, "projector")
        return ProjectionRunner(
            settings.kafka_bootstrap,
            projector,
            settings.read_schema,
            batch_max=settings.projection_batch_max,
            source=settings.source,
        )

    # A long-running process: a service that is not there yet is waited for.
    try:
        runner = wait_for(
            start,
            "projections",
            log,
            bootstrap=settings.kafka_bootstrap,
            conninfo=projector,
        )
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    assert runner is not None  # nothing stops the wait but success
    runner.store.set_read_setting("dso_target_days", str(settings.dso_target_days))
    # The timeline is a projection of its own (other topics, its own offsets), beside it.
    timeline = TimelineRunner(
        settings.kafka_bootstrap,
        projector,
        settings.read_schema,
        batch_max=settings.projection_batch_max,
    )
    beside = threading.Thread(
        target=timeline.run, kwargs={"until_idle": args.until_idle}, daemon=True
    )
    beside.start()
    try:
        stats = runner.run(until_idle=args.until_idle)
    finally:
        timeline.stopping = True
        beside.join()
        runner.close()
        timeline.close()
    info(
        f"{stats.messages} messages, {stats.applied} events applied, {stats.duplicates} "
        f"duplicates skipped, {stats.dead_letters} dead letters in {stats.seconds:.1f}s"
    )
    return 0


def projections_rebuild(_args: argparse.Namespace) -> int:
    from projections.migrate import MigrationError
    from projections.rebuild import rebuild

    _runner_logging()
    settings = get_settings()
    reachable_kafka()
    try:
        done = rebuild(
            settings.kafka_bootstrap,
            settings.database_url,
            settings.read_schema,
            batch_max=settings.projection_batch_max,
            logins=settings.role_database_urls(),
        )
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    s = done.stats
    info(
        f"rebuilt {done.schema} from offset 0: {s.messages} messages, {s.applied} events "
        f"applied in {s.seconds:.1f}s; swapped in"
    )
    return 0
