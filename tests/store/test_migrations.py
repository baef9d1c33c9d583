"""The packaged migrations create exactly ``schema.py``'s tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import CheckConstraint, create_engine, insert, inspect
from sqlalchemy.exc import IntegrityError
from storekit import clock_fixture, db_url_fixture, pg_admin_fixture, store_fixture  # noqa: F401 (pytest fixtures)

from gateway.cli.db import db
from gateway.store import SchemaError, Store
from gateway.store.migrate import HEAD, alembic_config, head_revision
from gateway.store.schema import files, metadata


def test_migrations_match_the_metadata(store: Store, db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            inspector = inspect(conn)
            assert set(inspector.get_table_names()) == set(metadata.tables) | {"alembic_version"}
            for table in metadata.sorted_tables:
                # Autogenerate does not compare CHECK constraints: compare their names here.
                expected = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
                found = {c["name"] for c in inspector.get_check_constraints(table.name)}
                assert found == expected, table.name
                expected_ix = {ix.name for ix in table.indexes}
                found_ix = {
                    ix["name"] for ix in inspector.get_indexes(table.name) if not ix.get("duplicates_constraint")
                }
                assert found_ix == expected_ix, table.name
    finally:
        engine.dispose()


def test_check_constraints_guard_statuses(store: Store, db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                insert(files).values(
                    sha256="0" * 64,
                    size=1,
                    name="x",
                    origin="x",
                    format="x12",
                    status="lost",
                    correlation_id="c",
                    received_at=store._now(),
                    updated_at=store._now(),
                    attempts=0,
                )
            )
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_reaches_head(store: Store) -> None:
    assert store.revision() == head_revision() == HEAD == "0014"
    assert store.upgrade() == "0014"
    store.check_schema()


def test_downgrade_and_upgrade_again(store: Store, db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    assert store.revision() is None
    assert store.upgrade() == "0014"


def test_an_unmigrated_database_is_reported(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.revision() is None
        with pytest.raises(SchemaError, match="gateway db upgrade"):
            store.check_schema()
        with pytest.raises(SchemaError, match="gateway db upgrade") as info:
            store.list_files()
        assert info.value.code == "STORE-003"


def test_db_command(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(db, ["current", "--check", "--url", db_url])
    # A SQLite file that does not exist is a usage error (2); an empty PostgreSQL database is behind head (1).
    assert result.exit_code == (2 if db_url.startswith("sqlite") else 1), result.output
    assert "run `gateway db upgrade`" in result.output
    result = runner.invoke(db, ["upgrade", "--url", db_url])
    assert result.exit_code == 0, result.output
    assert "upgraded (empty) -> 0014" in result.output
    result = runner.invoke(db, ["upgrade", "--url", db_url])
    assert result.exit_code == 0 and "already at 0014" in result.output
    result = runner.invoke(db, ["current", "--check"], env={"GATEWAY_DB_URL": db_url})
    assert result.exit_code == 0, result.output
    assert "0014 (head)" in result.output


def test_db_command_reports_an_unreachable_database() -> None:
    result = CliRunner().invoke(db, ["current", "--url", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"])
    assert result.exit_code == 1
    assert "STORE-002" in result.output


def test_db_command_does_not_create_a_sqlite_file_to_read_it(tmp_path: Path) -> None:
    path = tmp_path / "nothing.sqlite"
    result = CliRunner().invoke(db, ["current", "--url", f"sqlite:///{path}"])
    assert result.exit_code == 2 and f"no database at {path}" in result.output
    assert not path.exists()
