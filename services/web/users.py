"""The workbench's users and roles, in PostgreSQL (`web_users`, migration 0005).

Roles grow by inclusion: a viewer reads; a clerk also assigns, resolves and applies
suggestions; an admin also manages users. Passwords are hashed with argon2id
(argon2-cffi's defaults, which follow RFC 9106's recommendation); no password is stored
or logged in clear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from projections.migrate import use_schema
from services.connections import connect_database

Role = Literal["viewer", "clerk", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "clerk", "admin")
NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# Verifying against this when a name is unknown costs as much as a real check, so the
# time of a refusal does not tell which names exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    disabled: bool = False
    created_at: datetime | None = None

    def may(self, needed: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)


def check_new(name: str, role: str, password: str) -> None:
    if not NAME.match(name):
        raise UserError(f"a user name is 1-64 letters, digits or ._@-, not {name!r}")
    if role not in ROLES:
        raise UserError(f"role is one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")


class Users:
    def __init__(self, conninfo: str, schema: str) -> None:
        self.conninfo = conninfo
        self.schema = schema

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect_database(self.conninfo, autocommit=True)
        use_schema(conn, self.schema)
        return conn

    def add(self, name: str, role: str, password: str) -> User:
        check_new(name, role, password)
        with self._connect() as conn:
            try:
                conn.execute(
                    "INSERT INTO web_users (name, role, password_hash) VALUES (%s, %s, %s)",
                    (name, role, _hasher.hash(password)),
                )
            except psycopg.errors.UniqueViolation:
                raise UserError(f"user {name!r} exists already") from None
        return User(name, cast(Role, role))

    def set_password(self, name: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise UserError(f"a password has at least {MIN_PASSWORD} characters")
        with self._connect() as conn:
            done = conn.execute(
                "UPDATE web_users SET password_hash = %s WHERE name = %s",
                (_hasher.hash(password), name),
            )
            if done.rowcount == 0:
                raise UserError(f"no user {name!r}")

    def list(self) -> list[User]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT name, role, disabled, created_at FROM web_users ORDER BY name"
            ).fetchall()
        return [User(n, r, d, c) for n, r, d, c in rows]

    def get(self, name: str) -> User | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT name, role, disabled, created_at FROM web_users WHERE name = %s", (name,)
            ).fetchone()
        return None if row is None else User(*row)

    def disable(self, name: str) -> None:
        with self._connect() as conn:
            done = conn.execute("UPDATE web_users SET disabled = true WHERE name = %s", (name,))
            if done.rowcount == 0:
                raise UserError(f"no user {name!r}")

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if the name is an enabled user's and the password is theirs."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT role, disabled, password_hash FROM web_users WHERE name = %s", (name,)
            ).fetchone()
        stored = _DUMMY_HASH if row is None else str(row[2])
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row[1]:
            return None
        return User(name, row[0])
