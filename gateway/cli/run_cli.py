"""``gateway run``, ``gateway status`` and ``gateway messages``: the runtime from the command line."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.maps_cli import open_workspace
from gateway.errors import GatewayError
from gateway.runtime.service import RunSummary, Service, ensure_folders
from gateway.settings import Deployment, load_settings
from gateway.store.store import Store


def _deployment(home: Path | None, config: Path | None) -> Deployment:
    deployment, problems = load_settings((home or Path.cwd()).resolve(), config)
    if problems.items:
        for p in problems.items:
            click.echo(str(p), err=True)
        raise SystemExit(2)
    return deployment


def _store(deployment: Deployment, url: str | None = None) -> Store:
    store = Store(url or deployment.store_url)
    try:
        store.upgrade()
    except GatewayError as exc:
        click.echo(f"store {store.url}: {exc}", err=True)
        raise SystemExit(2) from exc
    return store


F = TypeVar("F", bound=Callable[..., Any])


def _options(fn: F) -> F:
    fn = click.option(
        "--config", type=click.Path(dir_okay=False, path_type=Path), help="Settings file (default: HOME/gateway.yaml)."
    )(fn)
    fn = click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="GATEWAY_HOME",
        help="The deployment folder (default: $GATEWAY_HOME or the current folder).",
    )(fn)
    return click.option("--store", "store_url", help="Store URL (overrides gateway.yaml).")(fn)


@click.command()
@click.option("--once", is_flag=True, help="Process everything pending, print a summary and exit (cron/batch).")
@click.option("--worker", help="This process's name in leases (default host:pid).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@_options
def run(
    once: bool, worker: str | None, verbose: int, home: Path | None, config: Path | None, store_url: str | None
) -> None:
    """Run the gateway: watch the inbox, archive, validate, acknowledge, translate."""
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    deployment = _deployment(home, config)
    ensure_folders(deployment)
    workspace = open_workspace(deployment.home)
    store = _store(deployment, store_url)
    service = Service(deployment, workspace, store, worker=worker)
    service.install_signal_handlers()
    try:
        summary = service.run_once() if once else service.run_forever()
    finally:
        store.close()
    _print_summary(summary, deployment)


def _print_summary(s: RunSummary, deployment: Deployment) -> None:
    processed = sum(s.statuses.values())
    click.echo(f"received     {s.received} file(s) into {deployment.path('archive')}")
    click.echo(
        f"processed    {processed} file(s): " + (", ".join(f"{n} {k}" for k, n in sorted(s.statuses.items())) or "none")
    )
    click.echo(f"translated   {s.documents} document(s) to {deployment.path('outbox') / 'canonical'}")
    click.echo(f"acks read    {s.acknowledgments} acknowledgment(s) received (997/999/TA1), kept, not answered")
    click.echo(f"acknowledged {len(s.acks)} interchange(s)" + (f": {', '.join(s.acks)}" if s.acks else ""))
    click.echo(f"failed sets  {s.failed_sets}; duplicates {s.duplicates}")
    click.echo(f"quarantined  {len(s.quarantined)} file(s)" + ("" if not s.quarantined else ":"))
    for q in s.quarantined:
        click.echo(f"  {q}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@_options
def status(as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Counts by state, the oldest pending file, and quarantined files."""
    deployment = _deployment(home, config)
    store = _store(deployment, store_url)
    counts = store.counts_by_status()
    oldest = store.oldest_pending()
    quarantined = store.list_files(status="quarantined", limit=20)
    store.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "counts": counts,
                    "oldest_pending": None
                    if oldest is None
                    else {"id": oldest.id, "name": oldest.name, "since": oldest.received_at.isoformat()},
                    "quarantined": [{"id": f.id, "name": f.name, "reason": f.reason} for f in quarantined],
                },
                indent=2,
            )
        )
        return
    for table, by_status in counts.items():
        parts = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none"
        click.echo(f"{table:<18} {parts}")
    if oldest is None:
        click.echo("oldest pending     none")
    else:
        click.echo(
            f"oldest pending     file {oldest.id} {oldest.name} "
            f"({oldest.status} since {oldest.received_at:%Y-%m-%d %H:%M:%S})"
        )
    click.echo(f"quarantined        {len(quarantined)}")
    for f in quarantined:
        click.echo(f"  file {f.id} {f.name}: {f.reason}")


@click.group()
def messages() -> None:
    """Received files and what became of them."""


@messages.command("list")
@click.option("--status", "status_filter", help="Only files in this status.")
@click.option("--partner", help="Only this partner's files.")
@click.option("--limit", default=50, show_default=True)
@_options
def list_messages(
    status_filter: str | None,
    partner: str | None,
    limit: int,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Files newest first: id, status, partner, name, reason."""
    deployment = _deployment(home, config)
    store = _store(deployment, store_url)
    try:
        rows = store.list_files(status=status_filter, partner=partner, limit=limit)
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    for f in rows:
        click.echo(
            f"{f.id:>6} {f.status:<12} {f.partner_id or '-':<12} {f.received_at:%Y-%m-%d %H:%M:%S} {f.name}"
            + (f"  ({f.reason})" if f.reason else "")
        )


@messages.command("show")
@click.argument("file_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@_options
def show_message(file_id: int, as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """One file: lineage (interchanges, groups, sets, documents), errors with locations, events."""
    deployment = _deployment(home, config)
    store = _store(deployment, store_url)
    try:
        tree = store.file_tree(file_id)
        events = store.events_for_file(file_id)
        sent = store.list_outbound(file_id=file_id, limit=100)
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                {"tree": _plain(tree), "events": [_plain(e) for e in events], "outbound": [_plain(o) for o in sent]},
                indent=2,
                default=str,
            )
        )
        return
    f = tree.file
    click.echo(f"file {f.id} {f.name}  status {f.status}" + (f" ({f.reason})" if f.reason else ""))
    click.echo(f"  partner {f.partner_id or '-'}  format {f.format}  {f.size} bytes  sha256 {f.sha256}")
    click.echo(f"  origin {f.origin}  correlation {f.correlation_id}  attempts {f.attempts}")
    for ic in tree.interchanges:
        i = ic.row
        click.echo(
            f"  interchange {i.control_number} {i.sender_qualifier}:{i.sender_id} -> "
            f"{i.receiver_qualifier}:{i.receiver_id} {i.status}" + (f" ({i.reason})" if i.reason else "")
        )
        for g in ic.groups:
            gr = g.row
            click.echo(f"    group {gr.functional_id} {gr.control_number} {gr.status}")
            for st in g.sets:
                s = st.row
                click.echo(
                    f"      set {s.set_id} {s.control_number} {s.status}" + (f" ({s.reason})" if s.reason else "")
                )
                for err in s.errors:
                    line = f"{err.get('code')} {err.get('where', '')}: {err.get('message')}"
                    if err.get("severity") == "warning":
                        line = f"warning {line}" + (f" (accepted: {err['accepted']})" if err.get("accepted") else "")
                    click.echo(f"        {line}")
                for d in st.documents:
                    click.echo(f"        {_document_line(d)}")
                    _echo_warnings(d, "          ")
    for d in tree.documents:
        click.echo(f"  {_document_line(d)}")
        _echo_warnings(d, "    ")
    for o in sent:
        click.echo(f"  sent {o.kind} {o.control_number or ''} to {o.partner_id} ({o.status})")
    click.echo("  events:")
    for e in events:
        click.echo(
            f"    {e.at:%Y-%m-%d %H:%M:%S} {e.entity_kind} {e.entity_id} {e.from_status or '-'} -> {e.to_status or '-'}"
            + (f" ({e.reason})" if e.reason else "")
        )


def _document_line(d: Any) -> str:
    """A document of ``messages show``; an inbound 997/999/TA1 says what it accepts or rejects."""
    if d.doc_type == "acknowledgment":
        return f"acknowledgment received {d.id}: {d.reason or ''}"
    return f"document {d.id} {d.doc_type} {d.business_key or ''} {d.status}" + (f" ({d.reason})" if d.reason else "")


def _echo_warnings(d: Any, indent: str) -> None:
    """A document's business-level warnings (``BIZ-*``), each located: it was translated all the same."""
    for w in d.warnings:
        click.echo(f"{indent}warning {w.get('code')} {w.get('where', '')}: {w.get('message')}")


def _plain(obj: object) -> object:
    return asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else obj
