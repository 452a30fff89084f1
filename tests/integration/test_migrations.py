"""Migrations: applied in order, once, recorded; an applied file may not change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from projections.migrate import MIGRATIONS, MigrationError, applied, migrate
from tests.conftest import Services
from tests.projection_support import query

pytestmark = pytest.mark.integration


def test_migrations_apply_in_order_once_and_refuse_an_edited_file(
    services: Services, read_schema: str, tmp_path: Path
) -> None:
    # read_schema has every migration applied already.
    names = [name for _v, name, _at in applied(services.database_url, read_schema)]
    assert names == [p.stem.split("_", 1)[1] for p in sorted(MIGRATIONS.glob("*.sql"))]
    assert migrate(services.database_url, read_schema) == []

    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy)
    after_last = int(sorted(MIGRATIONS.glob("*.sql"))[-1].name[:4]) + 1
    (copy / f"{after_last:04d}_extra_view.sql").write_text(
        "CREATE VIEW extra AS SELECT 1 AS one;\n"
    )
    assert [m.version for m in migrate(services.database_url, read_schema, copy)] == [after_last]
    assert query(services, read_schema, "SELECT one FROM extra") == [(1,)]

    first = sorted(copy.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(services.database_url, read_schema, copy)
