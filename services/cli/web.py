"""`o2c users …` and `o2c web`: the finance workbench and who may use it.

Example:
    printf '%s\n' "$PASSWORD" | o2c users add alice --role clerk
    o2c users list
    O2C_WEB_SECRET=$(openssl rand -hex 32) o2c web      # http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from typing import Any

from services.cli.commands import CommandError
from services.cli.output import info, table
from services.connections import wait_for
from services.settings import get_settings

log = logging.getLogger("o2c.web")


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="the workbench's users and their roles")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = users_sub.add_parser(
        "add", help="add a user; the password is read from standard input (one line)"
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("viewer", "clerk", "admin"))
    add.set_defaults(handler=users_add)
    listing = users_sub.add_parser("list", help="every user, role and state")
    listing.set_defaults(handler=users_list)
    disable = users_sub.add_parser("disable", help="refuse a user's logins from now on")
    disable.add_argument("name")
    disable.set_defaults(handler=users_disable)

    web = sub.add_parser("web", help="serve the finance workbench (Ctrl-C stops)")
    web.add_argument("--host", help="address to listen on (O2C_WEB_HOST, default 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (O2C_WEB_PORT, default 8000)")
    web.add_argument(
        "--demo",
        action="store_true",
        help="without O2C_WEB_SECRET: sign sessions with a random secret of this process",
    )
    web.set_defaults(handler=web_serve)


def _users() -> Any:
    from projections.migrate import MigrationError, migrate
    from services.web.users import Users

    settings = get_settings()
    # An administrator's command: the owner's URL, as for `o2c db migrate`.
    try:
        migrate(settings.database_url, settings.read_schema, logins=settings.role_database_urls())
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    return Users(settings.database_url, settings.read_schema)


def users_add(args: argparse.Namespace) -> int:
    from services.web.users import UserError

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        _users().add(args.name, args.role, password)
    except UserError as exc:
        raise CommandError(str(exc)) from None
    info(f"added {args.name} ({args.role})")
    return 0


def users_list(_args: argparse.Namespace) -> int:
    rows = [
        (u.name, u.role, "disabled" if u.disabled else "enabled", f"{u.created_at:%Y-%m-%d %H:%M}")
        for u in _users().list()
    ]
    print(table(("name", "role", "state", "created"), rows))
    return 0


def users_disable(args: argparse.Namespace) -> int:
    from services.web.users import UserError

    try:
        _users().disable(args.name)
    except UserError as exc:
        raise CommandError(str(exc)) from None
    info(f"disabled {args.name}")
    return 0


def web_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from projections.migrate import MigrationError
    from services.cli.db import migrated
    from services.web.app import create_app

    settings = get_settings()
    if settings.web_secret is not None:
        secret = settings.web_secret.get_secret_value()
    elif args.demo:
        secret = secrets.token_urlsafe(32)
        info("--demo: sessions are signed with a random secret and end with this process")
    else:
        raise CommandError(
            "O2C_WEB_SECRET is not set: give a long random secret (e.g. openssl rand -hex 32),"
            " or start with --demo"
        )
    if len(secret) < 16:
        raise CommandError("O2C_WEB_SECRET is too short: give at least 16 characters")

    # Like the worker and the projections, a workbench started before its database waits.
    def ready_schema() -> bool:
        migrated(settings, "web")
        return True

    try:
        ready = wait_for(
            ready_schema,
            "o2c web",
            log,
            bootstrap=settings.kafka_bootstrap,
            conninfo=settings.role_database_url("web"),
        )
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    if ready is None:
        return 0
    host = args.host or settings.web_host
    port = args.port or settings.web_port
    from services import metrics_endpoint
    from services.web import metrics  # noqa: F401  (its series, before the endpoint serves)

    metrics_endpoint.serve(settings.web_metrics_port, settings.metrics_host)
    info(f"o2c web on http://{host}:{port}/")
    uvicorn.run(create_app(settings, secret), host=host, port=port, log_level=settings.log_level)
    return 0
