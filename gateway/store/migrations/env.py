"""Alembic's entry point for the ledger's migrations.

Runs on the connection :mod:`gateway.store.migrate` passes in
``config.attributes["connection"]``; for developers running the ``alembic``
command itself, it opens ``sqlalchemy.url`` from the config (or emits SQL with
``--sql``). SQLite uses batch mode, so later ``ALTER``s work there too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.store.engine import Database
from gateway.store.errors import SchemaError
from gateway.store.migrate import lock
from gateway.store.schema import metadata


def _run(connection: Connection) -> None:
    lock(connection)  # two processes upgrading one PostgreSQL database at once take turns on it
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Migrate online (on a connection) or offline (printing SQL)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if not url:
        raise SchemaError("no database to migrate: set sqlalchemy.url, or run `gateway db upgrade --url URL`")
    database = Database(url)
    try:
        with database.write("run migrations") as conn:
            _run(conn)
    finally:
        database.dispose()


run_migrations()
