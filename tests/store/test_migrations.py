"""The packaged migrations create exactly ``schema.py``'s tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import CheckConstraint, create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError
from storekit import clock_fixture, db_url_fixture, pg_admin_fixture, schema_url, store_fixture  # noqa: F401 (pytest fixtures)

from gateway.cli.db import db
from gateway.store import SchemaError, Store
from gateway.store.migrate import HEAD, alembic_config, head_revision
from gateway.store.schema import files, metadata


@pytest.fixture(name="built", params=["migrated", "created"])
def built_fixture(request: pytest.FixtureRequest, db_url: str) -> Iterator[Store]:
    """A database at the head two ways: every migration replayed, or built from scratch in one step (what
    a new ledger gets); each must be exactly ``schema.py``'s."""
    with Store(db_url) as store:
        assert store.upgrade(from_scratch=request.param == "created") == HEAD
        yield store


def _layout(url: str) -> dict[str, Any]:
    """Every table's columns (type, nullability), indexes, unique and CHECK constraints, as reflected."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            return {
                table: {
                    "columns": sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)),
                    "indexes": sorted(
                        (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                        for ix in inspector.get_indexes(table)
                    ),
                    "unique": sorted(
                        (u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
                    ),
                    "checks": sorted(
                        (c["name"], " ".join(c["sqltext"].split())) for c in inspector.get_check_constraints(table)
                    ),
                    "foreign": sorted(
                        (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                        for f in inspector.get_foreign_keys(table)
                    ),
                }
                for table in sorted(inspector.get_table_names())
            }
    finally:
        engine.dispose()


def test_a_ledger_built_from_scratch_is_the_migrated_one(
    db_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    schema = None
    if db_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path_factory.mktemp('migrated') / 'gateway.sqlite'}"
    else:
        schema = f"gw_test_{uuid.uuid4().hex[:12]}"
        with request.getfixturevalue("pg_admin").begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        other = schema_url(schema)
    try:
        with Store(db_url) as created, Store(other) as migrated:
            assert created.upgrade() == HEAD and migrated.upgrade(from_scratch=False) == HEAD
        assert _layout(db_url) == _layout(other)
    finally:
        if schema is not None:
            with request.getfixturevalue("pg_admin").begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def test_migrations_match_the_metadata(built: Store, db_url: str) -> None:
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


def test_downgrade_and_upgrade_again(built: Store, db_url: str) -> None:
    store = built
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


def _build_at_once(db_url: str) -> tuple[list[str | None], list[BaseException]]:
    """Two workers started at once on an empty database: the revisions they reach, and their errors."""
    reached: list[str | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def build() -> None:
        try:
            with Store(db_url) as store:
                start.wait(10)
                reached.append(store.upgrade())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return reached, errors


def test_two_processes_building_one_new_ledger_take_turns(db_url: str) -> None:
    """Two workers started at once on an empty database: one builds it, the other finds it built."""
    reached, errors = _build_at_once(db_url)
    assert not errors, errors
    assert reached == [HEAD, HEAD]


def test_two_workers_building_new_sqlite_ledgers_at_once_wait_for_each_other(tmp_path: Path) -> None:
    """The first connection to a new file switches it to WAL; SQLite can answer another connection's switch
    at that moment with "database is locked" at once, without its busy handler (a CI run met it; about one
    pair in ten here). The switch is tried again until the busy timeout. Sixty new ledgers, two workers each."""
    for n in range(60):
        reached, errors = _build_at_once(f"sqlite:///{tmp_path / f'new-{n}.sqlite'}")
        assert not errors, (n, errors)
        assert reached == [HEAD, HEAD]
