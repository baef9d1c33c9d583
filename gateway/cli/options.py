"""The deployment options shared by ``run``, ``status``, ``messages`` and ``db``, and how they open the store.

``--home`` (``$GATEWAY_HOME``, else the current folder) is the deployment folder; ``--config``
its settings file (default ``HOME/gateway.yaml``); ``--store`` (``$GATEWAY_STORE`` or
``$GATEWAY_DB_URL``; ``--url`` is a hidden alias kept for old scripts) overrides the settings'
``store:``. Read-only commands open the store with :func:`open_store_read_only`, which never
creates a folder, a database file or a table: a mistyped ``--home`` or ``--store`` is a usage
error (exit 2) that says what is missing, not a new empty deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.errors import GatewayError
from gateway.settings import Deployment, load_settings
from gateway.store.migrate import head_revision
from gateway.store.store import Store

F = TypeVar("F", bound=Callable[..., Any])

STORE_ENV = ["GATEWAY_STORE", "GATEWAY_DB_URL"]
STORE_HELP = (
    "Store URL: sqlite:///path/file.db or postgresql+psycopg://user@host/db "
    "(default: $GATEWAY_STORE, else `store:` in gateway.yaml)."
)


def _store_alias(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """``--url``: the old name of ``--store``."""
    if value is not None:
        ctx.meta["gateway.store_alias"] = value
        given = ctx.params.get("store_url")
        if given and given != value:
            raise click.UsageError("--store and --url are the same option: give one")
        ctx.params["store_url"] = value


def _store_value(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    alias = ctx.meta.get("gateway.store_alias")
    if value is not None and alias is not None and value != alias:
        raise click.UsageError("--store and --url are the same option: give one")
    return value if value is not None else alias


def deployment_options(*, read_only: bool) -> Callable[[F], F]:
    """``--home``, ``--config`` and ``--store``; with ``read_only`` the home folder must exist."""

    def decorate(fn: F) -> F:
        fn = click.option("--url", hidden=True, expose_value=False, callback=_store_alias, is_eager=False)(fn)
        fn = click.option("--store", "store_url", envvar=STORE_ENV, callback=_store_value, help=STORE_HELP)(fn)
        fn = click.option(
            "--config",
            type=click.Path(dir_okay=False, exists=read_only, path_type=Path),
            help="Settings file (default: HOME/gateway.yaml).",
        )(fn)
        return click.option(
            "--home",
            type=click.Path(file_okay=False, exists=read_only, path_type=Path),
            envvar="GATEWAY_HOME",
            help="The deployment folder (default: $GATEWAY_HOME or the current folder).",
        )(fn)

    return decorate


def load_deployment(home: Path | None, config: Path | None) -> Deployment:
    """``gateway.yaml`` of ``home`` (or ``config``); exit 2 listing every problem."""
    deployment, problems = load_settings((home or Path.cwd()).resolve(), config)
    if problems.items:
        for p in problems.items:
            click.echo(str(p), err=True)
        raise SystemExit(2)
    return deployment


def resolve_store_url(deployment: Deployment, override: str | None) -> str:
    """``--store`` when given, else the settings' ``store:`` (a relative SQLite path is under the home)."""
    return override or deployment.store_url


def missing_sqlite_file(url: str, option: str = "--store") -> Path | None:
    """The file of a ``sqlite:///`` URL when it does not exist (reading must not create it), else None."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise click.BadParameter(f"not a database URL: {url!r}", param_hint=option) from exc
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def open_store_read_only(deployment: Deployment, override: str | None) -> Store:
    """The deployment's store, at the newest schema, or exit 2 saying what is missing; creates nothing."""
    url = resolve_store_url(deployment, override)
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise click.UsageError(
            f"no store at {missing}: nothing has run in {deployment.home} yet, or --home/--store is mistyped "
            "(`gateway db upgrade` or `gateway run` creates it)"
        )
    store = Store(url)
    try:
        revision = store.revision()
    except GatewayError as exc:
        store.close()
        raise click.UsageError(f"store {store.url}: {exc}") from exc
    if revision != head_revision():
        store.close()
        what = "has no gateway tables (mistyped --store?)" if revision is None else f"is at revision {revision}"
        raise click.UsageError(f"store {store.url} {what}: run `gateway db upgrade`")
    return store
