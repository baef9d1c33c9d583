"""``gateway db``: create, upgrade and inspect the ledger's schema.

A :class:`click.Group` the main command line registers with ``main.add_command(db)``. The
database is found as ``gateway run`` finds it: ``--store`` (``--url`` is a hidden alias kept for
old scripts; ``$GATEWAY_STORE`` or ``$GATEWAY_DB_URL``), else ``store:`` in ``gateway.yaml`` of
``--home`` (``$GATEWAY_HOME``, else the current folder), else the default SQLite file
``var/gateway.db`` under it. Exit codes: 0 done; 1 the database failed or (``current --check``)
is not at the newest revision; 2 usage errors, including a ``--home`` that does not exist and,
for ``current``, a SQLite file that does not exist (reading never creates it).
"""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.options import deployment_options, load_deployment, missing_sqlite_file, resolve_store_url
from gateway.store import Store, StoreError
from gateway.store.migrate import head_revision

__all__ = ["db"]

_options = deployment_options(read_only=True)


@click.group()
def db() -> None:
    """Create, upgrade and inspect the gateway's database (the ledger)."""


@db.command()
@_options
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
def upgrade(home: Path | None, config: Path | None, store_url: str | None, revision: str) -> None:
    """Create the ledger's tables, or bring them up to date (safe to run again)."""
    url = resolve_store_url(load_deployment(home, config), store_url)
    missing_sqlite_file(url)  # a URL that does not parse is a usage error
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
@_options
@click.option("--check", is_flag=True, help="Exit 1 unless the database is at the newest revision.")
def current(home: Path | None, config: Path | None, store_url: str | None, check: bool) -> None:
    """Print the database's schema revision and the newest one this code ships (creates nothing)."""
    head = head_revision()
    url = resolve_store_url(load_deployment(home, config), store_url)
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise click.UsageError(
            f"no database at {missing} (head is {head}): mistyped --home/--store, or run `gateway db upgrade`"
        )
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
