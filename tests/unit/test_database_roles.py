"""Each process's database URL: its own setting, else derived from the owner's."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from services.database_roles import ROLES, Login, login_of, login_url
from services.settings import Settings

OWNER = (
    "postgresql://o2c:owner-secret@db.example:6432/ledger?sslmode=verify-full&sslrootcert=/ca.pem"
)


def test_a_derived_url_keeps_the_owners_address_and_tls_but_not_its_user_or_password() -> None:
    for role in ROLES:
        parts = conninfo_to_dict(login_url(OWNER, role))
        assert parts["user"] == f"o2c_{role}_login"
        assert (parts["host"], parts["port"], parts["dbname"]) == ("db.example", "6432", "ledger")
        assert (parts["sslmode"], parts["sslrootcert"]) == ("verify-full", "/ca.pem")
        assert parts["password"] not in ("owner-secret", "")


def test_derived_passwords_differ_per_role_and_per_owner_password() -> None:
    passwords = {conninfo_to_dict(login_url(OWNER, r))["password"] for r in ROLES}
    assert len(passwords) == len(ROLES)
    other = OWNER.replace("owner-secret", "another")
    assert conninfo_to_dict(login_url(other, "reader"))["password"] not in passwords
    assert login_url(OWNER, "web") == login_url(OWNER, "web")  # every process derives the same


def test_an_owner_without_a_password_gives_logins_without_one() -> None:
    assert login_of(login_url("postgresql://o2c@db/o2c", "reader")) == Login(
        "o2c_reader_login", None
    )


def test_a_roles_own_setting_wins_over_the_derived_url() -> None:
    mine = "postgresql://dash:pw@db.example/ledger?sslmode=require"
    settings = Settings(database_url=OWNER, reader_database_url=mine)
    assert settings.role_database_url("reader") == mine
    assert settings.role_database_url("web") == login_url(OWNER, "web")
    assert set(settings.role_database_urls()) == set(ROLES)


def test_a_login_never_shows_its_password() -> None:
    login = login_of(login_url(OWNER, "projector"))
    assert login.password is not None
    assert login.password not in repr(login)
