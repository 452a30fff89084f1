"""Schema migrations: the SQL files in projections/migrations, applied in order of their
version number, each once, in its own transaction, recorded in `schema_migrations`.

Every migration is applied inside one PostgreSQL schema (the `search_path`), so the same
files build the live read models and a rebuild's fresh copy beside them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from services.connections import connect_database

MIGRATIONS = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def available(directory: Path = MIGRATIONS) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_words.sql")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return found


def use_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def migrate(conninfo: str, schema: str, directory: Path = MIGRATIONS) -> list[Migration]:
    """Apply the migrations `schema` lacks; returns those applied. Safe to run concurrently:
    an advisory lock per schema makes a second caller wait, then find nothing to do."""
    applied_now = []
    with connect_database(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        use_schema(conn, schema)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in available(directory):
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"migrate:{schema}",))
                row = conn.execute(
                    "SELECT checksum FROM schema_migrations WHERE version = %s",
                    (migration.version,),
                ).fetchone()
                if row is not None:
                    if row[0] != migration.checksum:
                        raise MigrationError(
                            f"{migration.path.name}: changed after it was applied to schema "
                            f"{schema}; add a new migration instead of editing this one"
                        )
                    continue
                conn.execute(migration.text.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                applied_now.append(migration)
    return applied_now


def applied(conninfo: str, schema: str) -> list[tuple[int, str, str]]:
    with connect_database(conninfo) as conn:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'schema_migrations'",
            (schema,),
        ).fetchone()
        if exists is None:
            return []
        rows = conn.execute(
            sql.SQL(
                "SELECT version, name, applied_at::text FROM {}.schema_migrations ORDER BY version"
            ).format(sql.Identifier(schema))
        ).fetchall()
        return [(int(v), str(n), str(a)) for v, n, a in rows]
