"""Rebuilding the read models from offset 0 beside the live ones, then swapping them in.

The fresh tables are built in their own schema (`<live>_build`) by a projection runner in
a consumer group of its own, up to the end the topics had when the rebuild started. The
swap renames the two schemas in one transaction, so readers see the old tables until the
commit and the new ones after it; views are rebuilt with their tables, so they follow. A
live runner notices the swap at its next batch (the stored offsets differ from its
position) and continues from the rebuilt tables' offsets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from projections.migrate import migrate
from projections.runner import ProjectionRunner, Stats, end_positions, unique_group
from projections.store import Position
from projections.timeline import TimelineRunner
from services.connections import connect_database
from services.database_roles import DatabaseRole, login_url

CARRIED_OVER = ("dso_alerts", "web_users", "web_actions")
_CLAIMS_KEY = "processed_events_pkey"


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
    stats = _build(
        ProjectionRunner(
            bootstrap,
            writer,
            build,
            group_id=unique_group("o2c-rebuild"),
            batch_max=batch_max,
            publish_alerts=False,  # alerts were raised when the days closed; never twice
            # Late facts make a live run compute a closed day again; replaying the whole
            # log, every day is computed once, at the end, from the same rows.
            materialise_days=False,
            claims_in_memory=claims_in_memory,
        ),
        end_positions(bootstrap),
        materialise=True,
    )
    timeline_stats = _build(
        TimelineRunner(
            bootstrap,
            writer,
            build,
            group_id=unique_group("o2c-rebuild"),
            batch_max=batch_max,
            claims_in_memory=claims_in_memory,
        ),
        end_positions(bootstrap, TimelineRunner.topics),
    )
    if claims_in_memory:
        with connect_database(conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {}.processed_events ADD CONSTRAINT {} PRIMARY KEY"
                    " (projection, event_id)"
                ).format(sql.Identifier(build), sql.Identifier(_CLAIMS_KEY))
            )
    if swap:
        swap_in(conninfo, live, build, old)
    return Rebuilt(live if swap else build, stats, swap, timeline_stats)


def _build(
    runner: ProjectionRunner, targets: dict[Position, int], *, materialise: bool = False
) -> Stats:
    try:
        stats = runner.run(until_offsets=targets)
        if materialise:
            runner.store.materialise_missing()
        # Partitions that were empty get their offset too: a live runner that has read
        # messages there since must read them again into the new tables after the swap.
        stored = runner.store.stored_offsets()
        runner.store.save_offsets({p: o for p, o in targets.items() if p not in stored})
    finally:
        runner.close()
    return stats


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
