"""``gateway web``: serve the dashboard with uvicorn; ``gateway web hash-password``: a hash for gateway.yaml.

Imported only when the command runs (``gateway.cli.main``'s lazy commands): no other command pays for
Starlette, Jinja2 or uvicorn.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway.cli.options import deployment_options, load_deployment, open_store_read_only, resolve_store_url

__all__ = ["web"]


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
@deployment_options(read_only=True)
@click.pass_context
def web(
    ctx: click.Context,
    host: str,
    port: int,
    log_level: str,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Serve the web dashboard (docs/web.md): overview, search, lineage, dead letters, acknowledgments,
    reconciliation, partners, and the operators' actions, for the users of gateway.yaml's `web:`."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from gateway.errors import GatewayError
    from gateway.web.app import create_app

    deployment = load_deployment(home, config)
    settings = deployment.settings.web
    if settings is None or (not settings.users):
        raise click.UsageError("no web users: add `web: {users: [...]}` to gateway.yaml (docs/web.md)")
    if not settings.trusted_header and not any(u.password_hash for u in settings.users):
        raise click.UsageError("no web user has a password_hash and no trusted_header is set: nobody could sign in")
    store = open_store_read_only(deployment, store_url)
    try:
        app = create_app(deployment, store)
    except GatewayError as exc:
        store.close()
        raise click.UsageError(f"web: {exc}") from exc
    click.echo(f"gateway web: {resolve_store_url(deployment, store_url)} on http://{host}:{port}/", err=True)
    try:
        # proxy_headers: X-Forwarded-For is believed from a proxy on loopback only (uvicorn's default), so the
        # sign-in limit counts each client behind a local reverse proxy, not the proxy as one client.
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, proxy_headers=True)
    finally:
        store.close()


@web.command("hash-password")
def hash_password() -> None:
    """Read a password from standard input (not echoed on a terminal) and print its argon2 hash for
    `web.users[].password_hash`."""
    from gateway.web.auth import hash_password as make_hash

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("an empty password: nothing to hash")
    click.echo(make_hash(password))
