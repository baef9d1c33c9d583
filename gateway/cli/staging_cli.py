"""``gateway staging``: the ERP staging tables of the ``sql`` destinations in ``gateway.yaml``.

A :class:`click.Group` the main command line registers with ``main.add_command(staging)``. The
loader never creates tables in an ERP's database unless told (``upgrade: false`` by default); these
commands are how an operator tells it, or hands the DDL to the ERP's DBA:

- ``gateway staging upgrade [--destination NAME]... [--sql]``: apply the staging migrations of every
  ``sql`` destination (or the named ones); ``--sql`` prints the SQL instead and connects to nothing;
- ``gateway staging current [--destination NAME]... [--check] [--json]``: each one's revision.

Destinations are read from ``--home``'s ``gateway.yaml`` (or ``--config``), as ``gateway run`` reads
them; a relative SQLite path is taken from the deployment folder. Exit codes: 0 done; 1 a database
failed or (``current --check``) is not at the code's revision; 2 usage or configuration errors (no
``sql`` destination, an unknown name, a setting or a secret that is wrong).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from gateway.cli.options import load_deployment
from gateway.components import configured_destinations
from gateway.delivery.staging import TYPE, StagingConfig, migrate
from gateway.delivery.staging.config import sqlite_file
from gateway.delivery.staging.engine import first_line, make_engine
from gateway.errors import GatewayError
from gateway.settings import Deployment

__all__ = ["staging"]

F = TypeVar("F", bound=Callable[..., Any])


def _options(fn: F) -> F:
    fn = click.option(
        "--destination",
        "names",
        multiple=True,
        metavar="NAME",
        help="A sql destination of gateway.yaml (repeatable; default: every one).",
    )(fn)
    fn = click.option(
        "--config",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Settings file (default: HOME/gateway.yaml).",
    )(fn)
    return click.option(
        "--home",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        envvar="GATEWAY_HOME",
        help="The deployment folder (default: $GATEWAY_HOME or the current folder).",
    )(fn)


@click.group()
def staging() -> None:
    """The ERP staging tables of the sql destinations: migrate them, or print their SQL for a DBA."""


def _selected(deployment: Deployment, names: tuple[str, ...]) -> list[tuple[str, StagingConfig]]:
    """The sql destinations to work on, their settings checked; a usage error (exit 2) otherwise."""
    configured = configured_destinations(deployment)
    sql = {name: raw for name, raw in configured.items() if raw.get("type") == TYPE}
    if not sql:
        raise click.UsageError(
            f"no sql destination in {deployment.home / 'gateway.yaml'} (destinations: NAME: {{type: sql, url: ...}})"
        )
    unknown = [name for name in names if name not in sql]
    if unknown:
        raise click.UsageError(f"no sql destination {', '.join(map(repr, unknown))} (known: {', '.join(sorted(sql))})")
    out = []
    for name in names or tuple(sorted(sql)):
        try:
            out.append((name, StagingConfig.model_validate(sql[name])))
        except ValidationError as exc:
            raise click.UsageError(f"destination {name!r}: {exc}") from exc
    return out


def _url(name: str, config: StagingConfig, home: Path) -> URL:
    try:
        return config.engine_url(home)
    except GatewayError as exc:  # a secret that cannot be read
        raise click.UsageError(f"destination {name!r}: {exc}") from exc


def _where(url: URL, config: StagingConfig) -> str:
    return f"{url.render_as_string(hide_password=True)} {config.table_prefix}*"


@staging.command()
@_options
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL for the ERP's DBA instead (connects to nothing).")
def upgrade(home: Path | None, config: Path | None, names: tuple[str, ...], as_sql: bool) -> None:
    """Create the staging tables, or bring them to this gateway's revision (safe to run again)."""
    deployment = load_deployment(home, config)
    failed = False
    for name, settings in _selected(deployment, names):
        if as_sql:
            click.echo(f"-- destination {name}: staging tables {settings.table_prefix}* at revision {migrate.HEAD}")
            try:
                click.echo(migrate.upgrade_sql(settings.url, settings.table_prefix))
            except GatewayError as exc:
                raise click.ClickException(str(exc)) from exc
            continue
        url = _url(name, settings, deployment.home)
        on_disk = sqlite_file(url)
        if on_disk is not None:
            on_disk.parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings, url)
        try:
            with engine.begin() as conn:
                before = migrate.current_revision(conn, settings.table_prefix)
                if before != migrate.HEAD:
                    migrate.upgrade(conn, settings.table_prefix)
        except (SQLAlchemyError, GatewayError) as exc:
            click.echo(f"{name} ({_where(url, settings)}): upgrade failed: {first_line(exc)}", err=True)
            failed = True
            continue
        finally:
            engine.dispose()
        if before == migrate.HEAD:
            click.echo(f"{name} ({_where(url, settings)}): already at {migrate.HEAD}")
        else:
            click.echo(f"{name} ({_where(url, settings)}): upgraded {before or '(none)'} -> {migrate.HEAD}")
    if failed:
        raise SystemExit(1)


def _revision(settings: StagingConfig, url: URL) -> tuple[str | None, str | None]:
    """(revision, error): reads only; a SQLite file that does not exist is reported, not created."""
    on_disk = sqlite_file(url)
    if on_disk is not None and not on_disk.exists():
        return None, f"no database file {on_disk}"
    engine: Engine = (
        create_engine(url, poolclass=NullPool) if on_disk is not None else make_engine(settings, url)
    )  # a plain SQLite engine: reading must not switch the file to WAL
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn, settings.table_prefix), None
    except (SQLAlchemyError, GatewayError) as exc:
        return None, first_line(exc)
    finally:
        engine.dispose()


@staging.command()
@_options
@click.option("--check", is_flag=True, help="Exit 1 unless every one is at this gateway's revision.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def current(home: Path | None, config: Path | None, names: tuple[str, ...], check: bool, as_json: bool) -> None:
    """Print each sql destination's staging revision and the one this gateway needs (creates nothing)."""
    deployment = load_deployment(home, config)
    report = []
    for name, settings in _selected(deployment, names):
        url = _url(name, settings, deployment.home)
        revision, error = _revision(settings, url)
        report.append(
            {
                "destination": name,
                "url": url.render_as_string(hide_password=True),
                "table_prefix": settings.table_prefix,
                "revision": revision,
                "head": migrate.HEAD,
                "at_head": revision == migrate.HEAD,
                "error": error,
            }
        )
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for item in report:
            where = f"{item['destination']} ({item['url']} {item['table_prefix']}*)"
            if item["error"] is not None:
                click.echo(f"{where}: cannot read: {item['error']}")
            elif item["at_head"]:
                click.echo(f"{where}: {item['revision']} (head)")
            else:
                click.echo(
                    f"{where}: {item['revision'] or '(none)'}; head is {migrate.HEAD}: run "
                    f"`gateway staging upgrade --destination {item['destination']}`"
                )
    if any(item["error"] is not None for item in report) or (check and not all(i["at_head"] for i in report)):
        raise SystemExit(1)
