"""The staging migrations create exactly ``schema.py``'s tables on SQLite, PostgreSQL and MariaDB, under
their own version table, beside other prefixes; and docs/erp-staging.md documents every column."""

from __future__ import annotations

import re

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import REPO
from sqlalchemy import Connection, inspect
from stagingkit import Target, mysql_admin_fixture, pg_admin_fixture, target_fixture  # noqa: F401 - fixtures

from gateway.delivery.staging import migrate
from gateway.delivery.staging.schema import build_metadata

# One MariaDB database is shared: its tests run on one xdist worker, never two at once.
pytestmark = pytest.mark.xdist_group("mariadb")


def _ours(conn: Connection, prefix: str) -> set[str]:
    return {t for t in inspect(conn).get_table_names() if t.startswith(prefix)}


def test_migrations_match_the_metadata(target: Target) -> None:
    engine = target.engine()
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, target.prefix)
        metadata = build_metadata(target.prefix)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": migrate.version_table(target.prefix)}
            )
            # Other tests' tables may share the database (MariaDB): compare ours only.
            diff = [
                d
                for d in compare_metadata(context, metadata)
                if not (d[0] == "remove_table" and not d[1].name.startswith(target.prefix))
            ]
            assert diff == []
            assert _ours(conn, target.prefix) == set(metadata.tables) | {f"{target.prefix}schema_version"}
            inspector = inspect(conn)
            for table in metadata.sorted_tables:
                foreign = {fk["name"] for fk in inspector.get_foreign_keys(table.name)}
                assert foreign == {fk.name for fk in table.foreign_key_constraints}, table.name
                unique = {u["name"] for u in inspector.get_unique_constraints(table.name)}
                assert {u for u in unique if u.startswith("uq_")} == {
                    c.name for c in table.constraints if str(c.name).startswith("uq_")
                }, table.name
            assert not inspector.has_table("alembic_version"), "the ledger's version table is not ours to create"
    finally:
        engine.dispose()


def test_head_downgrade_and_upgrade_again(target: Target) -> None:
    assert migrate.head_revision() == migrate.HEAD == "0002"
    engine = target.engine()
    try:
        with engine.begin() as conn:
            assert migrate.current_revision(conn, target.prefix) is None
            migrate.upgrade(conn, target.prefix)
        with engine.begin() as conn:
            assert migrate.current_revision(conn, target.prefix) == "0002"
            migrate.upgrade(conn, target.prefix)  # at head already: nothing to do
            command.downgrade(migrate.alembic_config(conn, target.prefix), "base")
        with engine.begin() as conn:
            assert _ours(conn, target.prefix) == {f"{target.prefix}schema_version"}
            assert migrate.current_revision(conn, target.prefix) is None
            migrate.upgrade(conn, target.prefix)
        with engine.connect() as conn:
            assert migrate.current_revision(conn, target.prefix) == "0002"
    finally:
        engine.dispose()


def test_two_prefixes_share_a_database(target: Target) -> None:
    other = f"{target.prefix}b_"
    engine = target.engine()
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn, target.prefix)
            migrate.upgrade(conn, other)
        with engine.connect() as conn:
            assert migrate.current_revision(conn, other) == migrate.current_revision(conn, target.prefix) == "0002"
            assert f"{other}document" in _ours(conn, other)
    finally:
        if target.backend == "mariadb":
            from stagingkit import drop_prefixed

            drop_prefixed(engine, other)
        engine.dispose()


def test_the_offline_script_a_dba_can_review(capsys: object) -> None:
    config = migrate.alembic_config(prefix="erp_", url="mysql+pymysql://loader@erp/erp")
    command.upgrade(config, "head", sql=True)
    script = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "CREATE TABLE erp_document" in script and "CREATE TABLE erp_schema_version" in script
    assert "LONGTEXT" in script and "NUMERIC(20, 6)" in script


def test_every_column_is_documented() -> None:
    doc = (REPO / "docs" / "erp-staging.md").read_text("utf-8")
    sections = re.split(r"^### `stg_(\w+)`", doc, flags=re.M)
    documented = {
        sections[i]: set(re.findall(r"^\| `(\w+)` \|", sections[i + 1], re.M)) for i in range(1, len(sections), 2)
    }
    metadata = build_metadata("stg_")
    expected = {name.removeprefix("stg_"): {c.name for c in table.columns} for name, table in metadata.tables.items()}
    assert documented == expected
