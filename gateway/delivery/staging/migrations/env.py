"""Alembic's entry point for the staging tables' migrations (the ERP's database, not the ledger).

Runs on the connection :mod:`gateway.delivery.staging.migrate` passes in
``config.attributes["connection"]``, with the table prefix in ``config.attributes["prefix"]`` and
the version table ``{prefix}schema_version``, so several prefixes share one database. For a
developer running ``alembic`` itself: ``sqlalchemy.url`` and ``table_prefix`` main options, or
``--sql`` for a script a DBA can review. Two processes upgrading at once take turns: a
PostgreSQL advisory lock, a MariaDB/MySQL named lock, SQLite's write lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, text

from gateway.delivery.staging.migrate import LOCK_TIMEOUT_SECONDS, prefix_of, version_table
from gateway.delivery.staging.schema import build_metadata
from gateway.errors import ConfigError

# Any fixed number: two processes upgrading one PostgreSQL database at once take turns on it.
MIGRATION_LOCK = 0x67775F73  # "gw_s"


def _configure(connection: Connection, prefix: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=build_metadata(prefix),
        version_table=version_table(prefix),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection, prefix: str) -> None:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    if dialect in ("mysql", "mariadb"):
        # DDL commits on its own there, so the lock is per session and released explicitly.
        name = f"gateway_staging_{prefix}"
        got = connection.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": LOCK_TIMEOUT_SECONDS}).scalar()
        if got != 1:
            raise ConfigError(f"another process holds the staging migration lock {name!r}", code="STG-002")
        try:
            _configure(connection, prefix)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        return
    _configure(connection, prefix)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Migrate online (on a connection) or offline (printing SQL)."""
    config = context.config
    prefix = prefix_of(config)
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=build_metadata(prefix), version_table=version_table(prefix), literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, prefix)
        return
    if not url:
        raise ConfigError("no staging database to migrate: set sqlalchemy.url", code="STG-002")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn, prefix)
    finally:
        engine.dispose()


run_migrations()
