"""Who connects to PostgreSQL as whom (docs/operations.md, "Database roles").

The owner (O2C_DATABASE_URL) runs the migrations and owns the read schema. Every other
process logs in as a user of its own, member of a NOLOGIN group role that holds the
privileges: the projector writes the read tables, the reader only SELECTs the contract's
views, the web role reads what the workbench shows and writes only its own tables.

A process's URL is its O2C_<ROLE>_DATABASE_URL, or else derived from the owner's: the same
host, port, database and parameters (sslmode, sslrootcert…), the user `o2c_<role>_login`
and a password that is an HMAC of the owner's password, so that the local stack and CI work
without configuration and nobody who lacks the owner's password can guess one.

Example:
    login_url(owner_url, "reader")     # 'host=… user=o2c_reader_login password=… dbname=o2c'
    login_of(login_url(owner_url, "reader"))  # Login('o2c_reader_login', '…')
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from psycopg.conninfo import conninfo_to_dict, make_conninfo

DatabaseRole = Literal["projector", "reader", "web"]
ROLES: tuple[DatabaseRole, ...] = ("projector", "reader", "web")

# The NOLOGIN roles that hold the privileges (migration 0007); login users are members.
GROUP: dict[DatabaseRole, str] = {
    "projector": "o2c_projector",
    "reader": "o2c_reader",
    "web": "o2c_web",
}


@dataclass(frozen=True)
class Login:
    user: str
    password: str | None

    def __repr__(self) -> str:  # never a password in a log line or a traceback
        return f"Login({self.user!r}, password={'***' if self.password else None})"


def default_user(role: DatabaseRole) -> str:
    return f"{GROUP[role]}_login"


def derived_password(owner_password: str, user: str) -> str:
    return hmac.new(
        owner_password.encode(), f"o2c-login:{user}".encode(), hashlib.sha256
    ).hexdigest()


def login_url(owner_url: str, role: DatabaseRole) -> str:
    """The derived connection string of `role`: the owner's with another user and password
    (no password if the owner's URL has none: it then authenticates another way)."""
    owner = conninfo_to_dict(owner_url)
    user = default_user(role)
    secret = owner.get("password")
    password = derived_password(str(secret), user) if secret else None
    return make_conninfo(owner_url, user=user, password=password)


def login_refused(reason: str) -> bool:
    """Whether a connection failed because the server refused the login (a user not created
    yet, a wrong password), not because nothing answered."""
    return "password authentication failed" in reason or (
        "role " in reason and "does not exist" in reason
    )


def login_of(conninfo: str) -> Login:
    parts = conninfo_to_dict(conninfo)
    user = parts.get("user")
    if not user:
        raise ValueError("a role's database URL must name its user (postgresql://USER:…@host/db)")
    password = parts.get("password")
    return Login(str(user), None if password is None else str(password))
