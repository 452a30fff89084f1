"""Schema migrations: the SQL files in projections/migrations, applied in order of their
version number, each once, in its own transaction, recorded in `schema_migrations`.

Every migration is applied inside one PostgreSQL schema (the `search_path`), so the same
files build the live read models and a rebuild's fresh copy beside them.

Before them, `ensure_roles` creates the NOLOGIN roles that hold the privileges (0007) and
the login user of each process (services/database_roles.py); after them, every view of the
schema is granted to the reader and the web role. Both are idempotent: a second run finds
everything in place and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from services.connections import connect_database
from services.database_roles import GROUP, ROLES, DatabaseRole, Login, login_of, login_url

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


def migrate(
    conninfo: str,
    schema: str,
    directory: Path = MIGRATIONS,
    *,
    logins: Mapping[DatabaseRole, str] | None = None,
) -> list[Migration]:
    """Apply the migrations `schema` lacks; returns those applied. Safe to run concurrently:
    an advisory lock per schema makes a second caller wait, then find nothing to do.

    `logins`: each role's connection string, whose user `ensure_roles` creates (default:
    the ones derived from `conninfo`, as Settings.role_database_url derives them)."""
    applied_now = []
    if logins is None:
        logins = {role: login_url(conninfo, role) for role in ROLES}
    with connect_database(conninfo, autocommit=True) as conn:
        ensure_roles(conn, logins)
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
        grant_views(conn, schema)
    return applied_now


def ensure_roles(conn: psycopg.Connection[Any], logins: Mapping[DatabaseRole, str]) -> None:
    """The group roles, and each login user as a member of its group with the password of
    its URL. A password is set only when the user cannot log in with it already, so a
    second run changes nothing (setting it again would store a new salt)."""
    owner = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
    try:
        _ensure_roles(conn, owner, logins)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise MigrationError(
            f"{owner} may not create or grant the database roles ({exc.diag.message_primary}):"
            f" give it CREATEROLE (ALTER ROLE {owner} CREATEROLE, as a superuser), or create"
            f" the roles {', '.join(GROUP.values())} and the login users of the"
            ' O2C_*_DATABASE_URLs beforehand (docs/operations.md, "Database roles")'
        ) from None


def _ensure_roles(
    conn: psycopg.Connection[Any], owner: str, logins: Mapping[DatabaseRole, str]
) -> None:
    # Roles belong to the cluster: two schemas migrated at once must not both create one.
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('o2c:roles'))")
        for role in ROLES:
            group = GROUP[role]
            if not _role_exists(conn, group):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        for role, url in logins.items():
            login = login_of(url)
            if login.user == owner:
                continue  # a process configured to connect as the owner: nothing to grant
            _ensure_login(conn, login, url, GROUP[role])


def _role_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def _ensure_login(conn: psycopg.Connection[Any], login: Login, url: str, group: str) -> None:
    user = sql.Identifier(login.user)
    created = not _role_exists(conn, login.user)
    if created:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(user))
    if login.password is not None and (created or not _logs_in(url)):
        # Encrypted here (SCRAM), so the password itself reaches neither the server's log
        # nor pg_stat_statements.
        verifier = conn.pgconn.encrypt_password(
            login.password.encode(), login.user.encode(), b"scram-sha-256"
        )
        conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(user, sql.Literal(verifier.decode()))
        )
    member = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (login.user, group)).fetchone()
    if member != (True,):
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), user))


def _logs_in(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def grant_views(conn: psycopg.Connection[Any], schema: str) -> None:
    """SELECT on every view of `schema` (the contract) to the reader and the web role;
    granting what is granted already changes nothing."""
    views = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('v', 'm') ORDER BY c.relname",
        (schema,),
    ).fetchall()
    for (view,) in views:
        conn.execute(
            sql.SQL("GRANT SELECT ON {}.{} TO {}, {}").format(
                sql.Identifier(schema),
                sql.Identifier(view),
                sql.Identifier(GROUP["reader"]),
                sql.Identifier(GROUP["web"]),
            )
        )


def up_to_date(conninfo: str, schema: str) -> bool:
    """Whether every migration is applied to `schema`, asked as any role that may read
    `schema_migrations` (the projector, the web role)."""
    done = {version for version, _name, _at in applied(conninfo, schema)}
    return all(m.version in done for m in available())


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
