"""Running the Alembic migrations shipped in ``gateway/store/migrations``, with no alembic.ini.

The migrations run on a connection the store hands over (so SQLite's
``BEGIN IMMEDIATE`` and PostgreSQL's ``search_path`` apply), in one
transaction: a failed upgrade leaves the database as it was. On PostgreSQL
``env.py`` takes an advisory lock first, so two processes upgrading at once
take turns.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection

from gateway.store.errors import SchemaError

__all__ = ["alembic_config", "current_revision", "head_revision", "script_location", "upgrade"]


def script_location() -> str:
    """The directory holding ``env.py`` and ``versions/``, inside the installed package."""
    return str(resources.files("gateway.store") / "migrations")


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations, running on ``connection`` (or opening ``url``)."""
    config = Config()
    config.set_main_option("script_location", script_location())
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration this code ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaError(f"no migrations found in {script_location()}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision``, inside the caller's transaction."""
    try:
        command.upgrade(alembic_config(connection), revision)
    except CommandError as exc:
        raise SchemaError(f"cannot upgrade to {revision}: {exc}") from exc
