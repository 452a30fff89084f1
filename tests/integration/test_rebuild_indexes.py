"""A rebuild loads the timeline without its key and indexes and builds them afterwards:
they come back exactly as the migration defines them, and rows the key would have refused
are refused then, with a message that says what to do."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from projections.rebuild import DuplicateTimelineRows, _drop_indexes, build_indexes
from tests.conftest import Services

pytestmark = pytest.mark.integration

_DEFINITIONS = """
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'timeline'
ORDER BY indexname
"""


def _row(event_id: str) -> tuple[object, ...]:
    at = datetime(2026, 1, 5, 9, tzinfo=UTC)
    return ("ORD-1", "order", event_id, at, "o2c.order.placed.v1", "order placed", None, None,
            "shop", 1)  # fmt: skip


def _insert(conn: psycopg.Connection[object], schema: str, rows: list[tuple[object, ...]]) -> None:
    conn.execute(f'SET search_path = "{schema}"')
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO timeline VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows
        )


def test_the_timelines_key_and_indexes_come_back_as_the_migration_made_them(
    services: Services, read_schema: str
) -> None:
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        before = conn.execute(_DEFINITIONS, (read_schema,)).fetchall()
        again = _drop_indexes(conn, read_schema, "timeline")
        assert conn.execute(_DEFINITIONS, (read_schema,)).fetchall() == []
        _insert(conn, read_schema, [_row("e1"), _row("e2")])
        build_indexes(conn, read_schema, "timeline", again)
        assert conn.execute(_DEFINITIONS, (read_schema,)).fetchall() == before
        assert {str(name) for name, _ in before} >= {"timeline_pkey", "timeline_ref_time"}


def test_rows_the_timelines_key_would_refuse_fail_the_rebuild_with_what_to_do(
    services: Services, read_schema: str
) -> None:
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        again = _drop_indexes(conn, read_schema, "timeline")
        _insert(conn, read_schema, [_row("e1"), _row("e1")])
        with pytest.raises(DuplicateTimelineRows, match=r"e1.*live tables were left"):
            build_indexes(conn, read_schema, "timeline", again)
