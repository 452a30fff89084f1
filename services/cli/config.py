"""`o2c config show`: the settings in effect, where each came from, secrets masked.

A SecretStr setting shows only whether it is set; a password inside a URL or a libpq
connection string (any setting, today's database URL and tomorrow's) shows as ***.

Example:
    O2C_KAFKA_PASSWORD_FILE=/run/secrets/kafka o2c config show
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from services.cli.output import table
from services.database_roles import ROLES
from services.settings import FILE_SUFFIX, Settings, get_settings, variable

MASK = "***"
WIDEST = 80  # the reference patterns run long; `o2c config show` is for a glance
# scheme://user:PASSWORD@host, and password=PASSWORD in a libpq key/value string.
_URL_PASSWORD = re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^@\s]*(?=@)", re.I)
_KEY_PASSWORD = re.compile(r"(?P<keep>\bpassword\s*=\s*)('[^']*'|\S+)", re.I)


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="the settings in effect (secrets masked)")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_sub.add_parser(
        "show", help="every O2C_* setting's value and where it came from, secrets masked"
    )
    show.set_defaults(handler=show_settings)


def masked(value: Any) -> str:
    """How a setting's value is shown: never a secret."""
    if isinstance(value, SecretStr):
        return f"{MASK} (set)" if value.get_secret_value() else "(empty)"
    if value is None:
        return "-"
    if isinstance(value, tuple | list):
        return ", ".join(masked(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={masked(v)}" for k, v in value.items()) or "-"
    text = str(value)
    text = _URL_PASSWORD.sub(lambda m: m["keep"] + MASK, text)
    return _KEY_PASSWORD.sub(lambda m: m["keep"] + MASK, text)


def _short(text: str) -> str:
    return text if len(text) <= WIDEST else text[: WIDEST - 1] + "…"


def origin(field: str, environ: Mapping[str, str]) -> str:
    upper = {k.upper(): v for k, v in environ.items()}
    name = variable(field)
    if name + FILE_SUFFIX in upper:
        return f"{name}{FILE_SUFFIX}={upper[name + FILE_SUFFIX]}"
    return name if name in upper else "default"


def rows(settings: Settings, environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    return [
        (variable(field), _short(masked(value)), where)
        for field in type(settings).model_fields
        for value, where in [_effective(settings, field, environ)]
    ]


def _effective(settings: Settings, field: str, environ: Mapping[str, str]) -> tuple[Any, str]:
    """A process role's database URL left unset is derived from the owner's: show the URL
    that process will use, not a dash."""
    value, where = getattr(settings, field), origin(field, environ)
    role = field.removesuffix("_database_url")
    if value is None and role in ROLES:
        return settings.role_database_url(role), f"derived from {variable('database_url')}"
    return value, where


def show_settings(_args: argparse.Namespace) -> int:
    print(table(("setting", "value", "from"), rows(get_settings(), os.environ)))
    return 0
