"""Rebuilding the read models from offset 0 beside the live ones, then swapping them in.

The fresh tables are built in their own schema (`<live>_build`) by a projection runner in
a consumer group of its own, up to the end the topics had when the rebuild started. The
swap renames the two schemas in one transaction, so readers see the old tables until the
commit and the new ones after it; views are rebuilt with their tables, so they follow. A
live runner notices the swap at its next batch (the stored offsets differ from its
position) and continues from the rebuilt tables' offsets.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from projections.migrate import migrate
from projections.runner import ProjectionRunner, Stats, end_positions, unique_group
from projections.store import Position
from projections.timeline import TimelineRunner
from services.connections import connect_database
from services.database_roles import DatabaseRole, login_url

log = logging.getLogger(__name__)

CARRIED_OVER = ("dso_alerts", "web_users", "web_actions")
_CLAIMS_KEY = "processed_events_pkey"
# The timeline's key and indexes are built once its rows are in (one sorted build each,
# instead of three index inserts per row); the definitions are read from the migrated
# schema, so the migration stays the one place they are written.
_DEFERRED_TABLE = "timeline"
# For those builds: the sort of 5,000,000 rows fits in memory instead of spilling.
_INDEX_MEMORY = "256MB"


class DuplicateTimelineRows(RuntimeError):
    """The log names an (id, kind, event) twice: a live run would have refused it too."""


@dataclass(frozen=True)
class Rebuilt:
    schema: str
    stats: Stats
    swapped: bool
    timeline: Stats | None = None


def schema_exists(conn: psycopg.Connection[object], schema: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def table_exists(conn: psycopg.Connection[object], schema: str, table: str) -> bool:
    found = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{table}"',)
    ).fetchone()
    return found == (True,)


def rebuild(
    bootstrap: str,
    conninfo: str,
    live: str,
    *,
    batch_max: int = 5000,
    swap: bool = True,
    projector: str | None = None,
    logins: Mapping[DatabaseRole, str] | None = None,
    claims_in_memory: bool = True,
) -> Rebuilt:
    """`conninfo` is the owner's: it creates, migrates and swaps the schemas; the rows are
    written as the projector (`projector`, default the login derived from `conninfo`), as
    a live run writes them. `logins` as for `migrate`."""
    build, old = f"{live}_build", f"{live}_old"
    writer = projector or (logins or {}).get("projector") or login_url(conninfo, "projector")
    with connect_database(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(build)))
    migrate(conninfo, build, logins=logins)
    with connect_database(conninfo, autocommit=True) as conn:
        if claims_in_memory:
            # The runners check the ids they apply in memory (Store); the index comes back
            # whole once they are done, before anything else writes to these tables.
            conn.execute(
                sql.SQL("ALTER TABLE {}.processed_events DROP CONSTRAINT {}").format(
                    sql.Identifier(build), sql.Identifier(_CLAIMS_KEY)
                )
            )
        if schema_exists(conn, live):
            conn.execute(
                sql.SQL("INSERT INTO {}.read_settings SELECT * FROM {}.read_settings").format(
                    sql.Identifier(build), sql.Identifier(live)
                )
            )
    with connect_database(conninfo, autocommit=True) as conn:
        deferred = _drop_indexes(conn, build, _DEFERRED_TABLE)
    read_targets = end_positions(bootstrap)
    timeline_targets = end_positions(bootstrap, TimelineRunner.topics)
    # The timeline's projection is the larger half of a rebuild (about five rows per
    # event): it runs in a second process beside the read models' (a second core), on its
    # own tables, offsets and claims; `spawn`, since a forked librdkafka client is unsafe.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        timeline = pool.submit(
            _build_timeline,
            bootstrap,
            conninfo,
            writer,
            build,
            batch_max,
            claims_in_memory,
            timeline_targets,
            deferred,
            logging.getLogger().getEffectiveLevel(),
        )
        try:
            stats = _build(
                ProjectionRunner(
                    bootstrap,
                    writer,
                    build,
                    group_id=unique_group("o2c-rebuild"),
                    batch_max=batch_max,
                    publish_alerts=False,  # alerts were raised when the days closed; never twice
                    # Late facts make a live run compute a closed day again; replaying the
                    # whole log, every day is computed once, at the end, from the same rows.
                    materialise_days=False,
                    claims_in_memory=claims_in_memory,
                ),
                read_targets,
                materialise=True,
            )
        except BaseException:
            timeline.cancel()
            raise
        timeline_stats = timeline.result()
    if claims_in_memory:
        with connect_database(conninfo, autocommit=True) as conn:
            started = time.monotonic()
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {}.processed_events ADD CONSTRAINT {} PRIMARY KEY"
                    " (projection, event_id)"
                ).format(sql.Identifier(build), sql.Identifier(_CLAIMS_KEY))
            )
            log.info("rebuild: processed_events' key in %.1f s", time.monotonic() - started)
    if swap:
        swap_in(conninfo, live, build, old)
    return Rebuilt(live if swap else build, stats, swap, timeline_stats)


def _build_timeline(
    bootstrap: str,
    conninfo: str,
    writer: str,
    build: str,
    batch_max: int,
    claims_in_memory: bool,
    targets: dict[Position, int],
    deferred: list[str],
    log_level: int,
) -> Stats:
    """The timeline's half of a rebuild, in its own process: its rows (as `writer`), then
    its indexes (as the owner, `conninfo`)."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stats = _build(
        TimelineRunner(
            bootstrap,
            writer,
            build,
            group_id=unique_group("o2c-rebuild"),
            batch_max=batch_max,
            claims_in_memory=claims_in_memory,
        ),
        targets,
    )
    with connect_database(conninfo, autocommit=True) as conn:
        build_indexes(conn, build, _DEFERRED_TABLE, deferred)
    return stats


def _drop_indexes(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    """Drop `table`'s indexes and key; returns the statements that make them again."""
    found = conn.execute(
        "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
        (f'"{schema}"."{table}"',),
    ).fetchall()
    again: list[str] = []
    for name, definition in found:
        again.append(
            sql.SQL("ALTER TABLE {}.{} ADD CONSTRAINT {} ")
            .format(sql.Identifier(schema), sql.Identifier(table), sql.Identifier(str(name)))
            .as_string(conn)
            + str(definition)
        )
        conn.execute(
            sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Identifier(str(name))
            )
        )
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
        (schema, table),
    ).fetchall()
    for name, definition in indexes:
        again.append(str(definition))
        conn.execute(
            sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(schema), sql.Identifier(str(name)))
        )
    return again


def build_indexes(
    conn: psycopg.Connection[Any], schema: str, table: str, statements: list[str]
) -> None:
    """Make the indexes `_drop_indexes` dropped. A key the rows violate is refused, as the
    live run's index would have refused the second row."""
    started = time.monotonic()
    conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(_INDEX_MEMORY)))
    for statement in statements:
        try:
            conn.execute(statement.encode())
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateTimelineRows(
                f"the rebuilt {schema}.{table} holds rows a live run would have refused "
                f"({exc.diag.message_detail or exc}); the live tables were left as they "
                "are: find the event named there in the log before rebuilding again"
            ) from exc
    log.info("rebuild: %s's key and indexes in %.1f s", table, time.monotonic() - started)


def _build(
    runner: ProjectionRunner, targets: dict[Position, int], *, materialise: bool = False
) -> Stats:
    try:
        stats = runner.run(until_offsets=targets, progress=_progress(runner, targets))
        if materialise:
            started = time.monotonic()
            days = runner.store.materialise_missing()
            log.info(
                "rebuild: %d closed days computed in %.1f s", len(days), time.monotonic() - started
            )
        # Partitions that were empty get their offset too: a live runner that has read
        # messages there since must read them again into the new tables after the swap.
        stored = runner.store.stored_offsets()
        runner.store.save_offsets({p: o for p, o in targets.items() if p not in stored})
    finally:
        runner.close()
    return stats


def _progress(runner: ProjectionRunner, targets: dict[Position, int]) -> Callable[[Stats], None]:
    total = sum(targets.values())
    name = runner.store.projection

    def say(stats: Stats) -> None:
        done = sum(min(runner.positions.get(p, 0), end) for p, end in targets.items())
        rate = stats.messages / max(time.monotonic() - stats.started, 1e-9)
        log.info(
            "rebuild %s: %s of %s messages (%d%%), %s/s",
            name,
            f"{done:,}",
            f"{total:,}",
            100 * done // max(total, 1),
            f"{rate:,.0f}",
        )

    return say


def swap_in(conninfo: str, live: str, build: str, old: str) -> None:
    with connect_database(conninfo, autocommit=True) as conn:
        with conn.transaction():
            if schema_exists(conn, live):
                # Alerts, the workbench's users and its actions are no projection of the
                # log: they move to the new tables.
                for table in CARRIED_OVER:
                    if not table_exists(conn, live, table):
                        continue  # live tables of an older migration
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {}.{} SELECT * FROM {}.{} ON CONFLICT DO NOTHING"
                        ).format(
                            sql.Identifier(build),
                            sql.Identifier(table),
                            sql.Identifier(live),
                            sql.Identifier(table),
                        )
                    )
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(old))
                )
                conn.execute(
                    sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                        sql.Identifier(live), sql.Identifier(old)
                    )
                )
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(build), sql.Identifier(live)
                )
            )
        # Outside the swap: a long query still reading the old tables delays only this.
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(old)))
