"""``gateway db``: create, upgrade and inspect the ledger's schema.

A :class:`click.Group` the main command line registers with
``main.add_command(db)``. The database is ``--url``, else ``$GATEWAY_DB_URL``,
else :data:`gateway.store.DEFAULT_URL`. Exit codes: 0 done, 1 the database
failed or (``current --check``) is not at the newest revision, 2 usage errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.store import DEFAULT_URL, Store, StoreError
from gateway.store.migrate import head_revision

__all__ = ["db"]

F = TypeVar("F", bound=Callable[..., object])


def _url_option(func: F) -> F:
    option = click.option(
        "--url",
        envvar="GATEWAY_DB_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="Database URL: sqlite:///path/file.sqlite or postgresql+psycopg://user@host/db (env GATEWAY_DB_URL).",
    )
    return option(func)


def _missing_sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL when it does not exist yet (reading must not create it), else None."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise click.BadParameter(f"not a database URL: {url!r}", param_hint="--url") from exc
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


@click.group()
def db() -> None:
    """Create, upgrade and inspect the gateway's database (the ledger)."""


@db.command()
@_url_option
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
def upgrade(url: str, revision: str) -> None:
    """Create the ledger's tables, or bring them up to date (safe to run again)."""
    try:
        with Store(url) as store:
            before = store.revision()
            after = store.upgrade(revision)
            where = store.url
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if before == after:
        click.echo(f"{where}: already at {after}")
    else:
        click.echo(f"{where}: upgraded {before or '(empty)'} -> {after}")


@db.command()
@_url_option
@click.option("--check", is_flag=True, help="Exit 1 unless the database is at the newest revision.")
def current(url: str, check: bool) -> None:
    """Print the database's schema revision and the newest one this code ships."""
    head = head_revision()
    missing = _missing_sqlite_file(url)
    if missing is not None:
        click.echo(f"{missing}: no database yet (head is {head}); run `gateway db upgrade`")
        raise SystemExit(1 if check else 0)
    try:
        with Store(url) as store:
            revision = store.revision()
            where = store.url
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if revision == head:
        click.echo(f"{where}: {revision} (head)")
        return
    click.echo(f"{where}: {revision or '(empty)'}; head is {head}: run `gateway db upgrade`")
    if check:
        raise SystemExit(1)
