"""Running the staging tables' own Alembic migrations (``migrations/`` beside this module).

The staging tables live in the ERP's database, not in the gateway's ledger, so they have their own
migrations and their own version table, ``{prefix}schema_version``: the ledger's ``alembic_version``
is never touched, and two loaders with different prefixes can share one database. The revision is
read without Alembic (:func:`current_revision`), so a database already at :data:`HEAD` costs no
Alembic import.

On SQLite and PostgreSQL an upgrade is one transaction: a failed one leaves the database as it
was. MariaDB/MySQL commit each ``CREATE TABLE`` on their own; a failed upgrade there leaves the
tables it created, and the next upgrade (the revision was not recorded) needs them dropped first.
"""

from __future__ import annotations

import io
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "DEFAULT_PREFIX",
    "HEAD",
    "LOCK_TIMEOUT_SECONDS",
    "alembic_config",
    "current_revision",
    "head_revision",
    "prefix_of",
    "script_location",
    "upgrade",
    "upgrade_sql",
    "version_table",
]

HEAD = "0002"
"""The newest revision in ``migrations/versions`` (a test checks it against Alembic's view)."""
DEFAULT_PREFIX = "stg_"
LOCK_TIMEOUT_SECONDS = 60
"""How long an upgrade waits for another process's upgrade of the same tables (MariaDB/MySQL)."""


def version_table(prefix: str) -> str:
    """The table holding the staging schema's revision for tables named with ``prefix``."""
    return f"{prefix}schema_version"


def script_location() -> str:
    """The directory holding ``env.py`` and ``versions/``, inside the installed package."""
    return str(resources.files("gateway.delivery.staging") / "migrations")


def prefix_of(config: Config) -> str:
    """The table prefix a migration run is for: the caller's attribute, else the ``table_prefix`` option."""
    prefix = config.attributes.get("prefix") or config.get_main_option("table_prefix")
    return str(prefix) if prefix else DEFAULT_PREFIX


def alembic_config(
    connection: Connection | None = None, prefix: str = DEFAULT_PREFIX, url: str | None = None
) -> Config:
    """An Alembic config for the packaged staging migrations on ``connection`` (or ``url``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location())
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    config.attributes["prefix"] = prefix
    return config


def head_revision() -> str:
    """The newest staging migration this code ships, as Alembic reads it from the scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise ConfigError(f"no staging migrations found in {script_location()}", code="STG-002")
    return head


def current_revision(connection: Connection, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The revision the staging tables with ``prefix`` are at (None: never migrated)."""
    table = version_table(prefix)
    if not inspect(connection).has_table(table):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {table}")).scalars().all()
    if len(rows) > 1:
        raise ConfigError(f"{table} holds several revisions ({', '.join(rows)}): not ours", code="STG-002")
    return rows[0] if rows else None


def upgrade(connection: Connection, prefix: str = DEFAULT_PREFIX, revision: str = "head") -> None:
    """Migrate the staging tables with ``prefix`` to ``revision``, inside the caller's transaction."""
    from alembic import command
    from alembic.util.exc import CommandError

    try:
        command.upgrade(alembic_config(connection, prefix), revision)
    except CommandError as exc:
        raise ConfigError(f"cannot upgrade the staging tables to {revision}: {exc}", code="STG-002") from exc


def upgrade_sql(url: str, prefix: str = DEFAULT_PREFIX, revision: str = "head") -> str:
    """The SQL that migrates the staging tables with ``prefix`` to ``revision`` on ``url``'s kind of
    database, for a DBA to review and run (Alembic's offline mode: nothing is connected to)."""
    from alembic import command
    from alembic.util.exc import CommandError

    config = alembic_config(prefix=prefix, url=url)
    config.output_buffer = io.StringIO()
    try:
        command.upgrade(config, revision, sql=True)
    except CommandError as exc:
        raise ConfigError(f"cannot write the staging tables' SQL for {revision}: {exc}", code="STG-002") from exc
    return config.output_buffer.getvalue()
