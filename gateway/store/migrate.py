"""Running the Alembic migrations shipped in ``gateway/store/migrations``, with no alembic.ini.

The migrations run on a connection the store hands over (so SQLite's
``BEGIN IMMEDIATE`` and PostgreSQL's ``search_path`` apply), in one
transaction: a failed upgrade leaves the database as it was. On PostgreSQL
``env.py`` takes an advisory lock first, so two processes upgrading at once
take turns.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from gateway.store.errors import SchemaError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD",
    "alembic_config",
    "create_head",
    "current_revision",
    "head_revision",
    "is_empty",
    "lock",
    "script_location",
    "upgrade",
]

HEAD = "0014"
"""The newest revision in ``migrations/versions`` (a test checks it against Alembic's view). Known
without Alembic, so a process whose database is already there never imports it (~0.15 s at start-up)."""


MIGRATION_LOCK = 0x67775F6D  # "gw_m": any fixed number
"""The advisory lock two processes building or upgrading one PostgreSQL database at once take turns on."""


def script_location() -> str:
    """The directory holding ``env.py`` and ``versions/``, inside the installed package."""
    return str(resources.files("gateway.store") / "migrations")


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations, running on ``connection`` (or opening ``url``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location())
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration this code ships, as Alembic reads it from the scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaError(f"no migrations found in {script_location()}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated); read without Alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise SchemaError(f"the database is at several revisions at once ({', '.join(rows)}): not one of ours")
    return rows[0] if rows else None


def is_empty(connection: Connection) -> bool:
    """Whether none of the ledger's tables, nor Alembic's, is in the database (its default schema)."""
    from gateway.store.schema import metadata

    present = set(inspect(connection).get_table_names())
    return not present & (set(metadata.tables) | {"alembic_version"})


def create_head(connection: Connection) -> None:
    """Build an empty database at :data:`HEAD` in one step: ``schema.py``'s tables, then Alembic's stamp.

    Alembic's recipe for a new database: the same schema the migrations reach (a test compares the two,
    table by table), without replaying fourteen migrations, SQLite's table copies among them (about 1.5 s
    at a first start, and at every test's new ledger)."""
    from alembic import command

    from gateway.store.schema import metadata

    metadata.create_all(connection)
    command.stamp(alembic_config(connection), HEAD)


def lock(connection: Connection) -> None:
    """On PostgreSQL, wait for any other process building or migrating this database (until commit)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision``, inside the caller's transaction."""
    from alembic import command
    from alembic.util.exc import CommandError

    try:
        command.upgrade(alembic_config(connection), revision)
    except CommandError as exc:
        raise SchemaError(f"cannot upgrade to {revision}: {exc}") from exc
