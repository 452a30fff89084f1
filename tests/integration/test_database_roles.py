"""The database roles of migration 0007 against a real PostgreSQL: each process's login may
do what its role needs and nothing else, and `o2c db migrate` is idempotent."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from projections.migrate import migrate
from services.database_roles import GROUP, ROLES, DatabaseRole, login_url
from tests.conftest import Services, service_env
from tests.factories import order_placed, unique
from tests.projection_support import publish, start_at_end

O2C = str(Path(sys.executable).with_name("o2c"))


def connect_as(services: Services, role: DatabaseRole, schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(login_url(services.database_url, role), autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


def relations(services: Services, schema: str, kinds: str) -> list[str]:
    with psycopg.connect(services.database_url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind = ANY(%s) ORDER BY 1",
            (schema, list(kinds)),
        ).fetchall()
    return [str(r[0]) for r in rows]


def refused(conn: psycopg.Connection[Any], statement: str) -> bool:
    try:
        conn.execute(statement.encode())
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_the_reader_cannot_read_a_single_base_table(services: Services, read_schema: str) -> None:
    tables = relations(services, read_schema, "r")
    assert {"mismatch_events", "web_users", "timeline"} <= set(tables)
    with connect_as(services, "reader", read_schema) as conn:
        readable = [t for t in tables if not refused(conn, f'SELECT * FROM "{t}" LIMIT 1')]
    assert readable == []


def test_the_reader_can_read_every_view_of_the_contract(
    services: Services, read_schema: str
) -> None:
    views = relations(services, read_schema, "v")
    for contract in ("open_items", "ar_ageing", "dso_daily", "exceptions", "business_today"):
        assert contract in views
    with connect_as(services, "reader", read_schema) as conn:
        for view in views:
            conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(view)))


def test_the_reader_can_write_and_create_nothing(services: Services, read_schema: str) -> None:
    with connect_as(services, "reader", read_schema) as conn:
        for statement in (
            "INSERT INTO read_settings VALUES ('k', 'v')",
            "INSERT INTO report_orders (order_id) VALUES ('x')",  # an updatable view
            "UPDATE mismatch_events SET note = 'x'",
            "DELETE FROM web_users",
            "UPDATE report_customers SET region = 'x'",  # updatable views: still refused
            "DELETE FROM report_orders",
            "CREATE TABLE sneaky (x int)",
            "CREATE VIEW sneaky AS SELECT 1",
            "CREATE TABLE public.sneaky (x int)",
            "TRUNCATE timeline",
        ):
            assert refused(conn, statement), statement


def test_the_web_role_writes_only_its_own_tables(services: Services, read_schema: str) -> None:
    with connect_as(services, "web", read_schema) as conn:
        for table in ("mismatch_events", "exception_queue", "timeline", "balance_current"):
            assert refused(conn, f"DELETE FROM {table}"), table
            assert refused(conn, f"UPDATE {table} SET pos = 0" if table != "exception_queue"
                           else "UPDATE exception_queue SET last_pos = 0"), table  # fmt: skip
        assert refused(conn, "INSERT INTO closed_days VALUES ('2026-01-01')")
        assert refused(conn, "SELECT * FROM projection_offsets")
        assert refused(conn, "CREATE TABLE sneaky (x int)")
        assert refused(conn, "DELETE FROM web_actions")
        # What the workbench does: record an action, read the queue.
        conn.execute(
            "INSERT INTO web_actions (event_id, mismatch_id, action, by_user)"
            " VALUES (%s, 'MM-1', 'assign', 'alice')",
            (str(uuid.uuid4()),),
        )
        conn.execute("SELECT * FROM exception_queue LIMIT 1")


def test_the_projector_cannot_create_roles_or_change_the_schema(
    services: Services, read_schema: str
) -> None:
    with connect_as(services, "projector", read_schema) as conn:
        for statement in (
            "CREATE ROLE sneaky",
            "ALTER TABLE mismatch_events ADD COLUMN sneaky text",
            "DROP TABLE timeline",
            "CREATE TABLE sneaky (x int)",
            "SELECT * FROM web_users",
            "INSERT INTO schema_migrations VALUES (999, 'x', 'x')",
        ):
            assert refused(conn, statement), statement
        conn.execute("INSERT INTO closed_days VALUES ('2026-01-01')")
        conn.execute("DELETE FROM closed_days")


def _grants(services: Services, schema: str) -> dict[str, Any]:
    with psycopg.connect(services.database_url) as conn:
        acls = conn.execute(
            "SELECT c.relname, c.relacl::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1",
            (schema,),
        ).fetchall()
        schema_acl = conn.execute(
            "SELECT nspacl::text FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchall()
        defaults = conn.execute(
            "SELECT d.defaclobjtype, d.defaclacl::text FROM pg_default_acl d"
            " JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = %s ORDER BY 1",
            (schema,),
        ).fetchall()
        names = [*GROUP.values(), *(f"{g}_login" for g in GROUP.values())]
        roles = conn.execute(
            "SELECT r.rolname, r.rolcanlogin, r.rolcreaterole, r.rolsuper,"
            " array(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            "       WHERE m.member = r.oid ORDER BY 1)::text"
            " FROM pg_roles r WHERE r.rolname = ANY(%s) ORDER BY 1",
            (names,),
        ).fetchall()
    return {"tables": acls, "schema": schema_acl, "defaults": defaults, "roles": roles}


def test_migrating_twice_leaves_every_grant_as_it_was(services: Services, read_schema: str) -> None:
    before = _grants(services, read_schema)
    assert migrate(services.database_url, read_schema) == []
    assert _grants(services, read_schema) == before
    assert len(before["roles"]) == 6
    assert before["defaults"], "default privileges for tables added later"


def test_migrate_creates_the_users_named_in_the_role_urls(services: Services) -> None:
    schema = f"test_{uuid.uuid4().hex[:10]}"
    user = f"test_reader_{uuid.uuid4().hex[:8]}"
    url = psycopg.conninfo.make_conninfo(services.database_url, user=user, password="s3cret-x")
    env = service_env(services, O2C_READ_SCHEMA=schema, O2C_READER_DATABASE_URL=url)
    try:
        for _run in range(2):
            done = subprocess.run(
                [O2C, "db", "migrate"], env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stderr
        with psycopg.connect(url) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute("SELECT * FROM exceptions")
            assert refused(conn, "SELECT * FROM mismatch_events")
        doctor = subprocess.run(
            [O2C, "doctor"], env=env, capture_output=True, text=True, timeout=120
        )
        rows = {
            line.split()[1]: line for line in doctor.stdout.splitlines() if line.startswith("role ")
        }
        assert set(rows) == set(ROLES), doctor.stdout + doctor.stderr
        assert all(" ok " in line for line in rows.values()), doctor.stdout
        assert user in rows["reader"]
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))


def test_doctor_names_a_privilege_a_role_should_not_have(
    services: Services, read_schema: str
) -> None:
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT SELECT ON {}.mismatch_events TO o2c_reader").format(
                sql.Identifier(read_schema)
            )
        )
    env = service_env(services, O2C_READ_SCHEMA=read_schema)
    doctor = subprocess.run([O2C, "doctor"], env=env, capture_output=True, text=True, timeout=120)
    (reader,) = [line for line in doctor.stdout.splitlines() if line.startswith("role reader")]
    assert " fix " in reader
    assert "has SELECT on mismatch_events" in reader
    assert "o2c db migrate" in reader


def test_an_owner_that_may_not_create_roles_is_told_what_to_do(services: Services) -> None:
    owner, schema = f"test_owner_{uuid.uuid4().hex[:8]}", f"test_{uuid.uuid4().hex[:10]}"
    user = f"test_login_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier(owner)))
        database = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(owner)
            )
        )
    url = psycopg.conninfo.make_conninfo(services.database_url, user=owner, password="pw")
    login = psycopg.conninfo.make_conninfo(services.database_url, user=user, password="x")
    env = service_env(
        services, O2C_DATABASE_URL=url, O2C_READ_SCHEMA=schema, O2C_READER_DATABASE_URL=login
    )
    try:
        done = subprocess.run(
            [O2C, "db", "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        assert f"ALTER ROLE {owner} CREATEROLE" in done.stderr
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
                    sql.Identifier(database), sql.Identifier(owner)
                )
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))


def test_a_report_whose_login_does_not_exist_says_to_migrate(services: Services) -> None:
    missing = psycopg.conninfo.make_conninfo(
        services.database_url, user=f"test_nobody_{uuid.uuid4().hex[:8]}", password="x"
    )
    env = service_env(services, O2C_READER_DATABASE_URL=missing)
    done = subprocess.run(
        [O2C, "report", "exceptions"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "`o2c db migrate` creates it" in done.stderr


@pytest.fixture
def without_owner(services: Services) -> dict[str, str]:
    """The processes' environment with every role URL set and the owner's password wrong:
    a process that needed the owner would fail."""
    info = psycopg.conninfo.conninfo_to_dict(services.database_url)
    broken = psycopg.conninfo.make_conninfo(
        services.database_url, password=f"{info.get('password', '')}-wrong"
    )
    urls = {f"O2C_{r.upper()}_DATABASE_URL": login_url(services.database_url, r) for r in ROLES}
    return service_env(services, O2C_DATABASE_URL=broken, **urls)


def test_projections_and_reports_work_without_the_owners_password(
    services: Services, read_schema: str, without_owner: dict[str, str]
) -> None:
    start_at_end(services, read_schema)
    order_id = unique("ORD")
    balance = order_placed(order_id, "12.30")
    publish(services, [balance])
    env = {**without_owner, "O2C_READ_SCHEMA": read_schema, "O2C_PROJECTION_METRICS_PORT": "0"}
    run = subprocess.run(
        [O2C, "projections", "run", "--until-idle", "3"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with psycopg.connect(services.database_url) as conn:
        placed = conn.execute(
            sql.SQL("SELECT placed_total FROM {}.orders WHERE order_id = %s").format(
                sql.Identifier(read_schema)
            ),
            (order_id,),
        ).fetchall()
    assert [str(p) for (p,) in placed] == ["12.30"]
    report = subprocess.run(
        [O2C, "report", "exceptions"], env=env, capture_output=True, text=True, timeout=120
    )
    assert report.returncode == 0, report.stderr
    ageing = subprocess.run(
        [O2C, "report", "ageing", "--as-of", "2026-01-31"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ageing.returncode == 0, ageing.stderr
