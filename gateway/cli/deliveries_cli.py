"""Operators' commands for deliveries: list and show them, retry or discard dead letters,
deliver what is due now, and put files back (release a held duplicate, requeue a failed file).

Every command that changes something records who (the OS user), when and why as a ledger event,
which ``gateway messages show`` and ``gateway deliveries show`` print. Every list has ``--json``.
"""

from __future__ import annotations

import difflib
import getpass
import json
from pathlib import Path
from typing import Any

import click

from gateway.cli.options import deployment_options, load_deployment, open_store_read_only
from gateway.errors import GatewayError
from gateway.planning import RELEASED
from gateway.runtime.fsutil import oneline
from gateway.store.deliveries import DeliveryRow
from gateway.store.errors import NotFoundError, StoreValueError, TransitionError
from gateway.store.rows import FileRow
from gateway.store.statuses import DeliveryStatus

__all__ = ["deadletters", "deliver", "deliveries", "put_back", "release", "requeue"]

EXIT_WAITING = 6
"""``gateway deliver``: a delivery still waits for a retry, or became a dead letter (as ``run --once``)."""

_options = deployment_options(read_only=True)


def actor() -> str:
    """Who runs the command, for the ledger: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def partner_profiles(deployment: Any) -> Any:
    """The partner profiles (their ``outbound: {channel: sftp}`` servers are where their acks go)."""
    from gateway.cli.maps_cli import open_workspace

    return open_workspace(deployment.home, partial=True, deployment=deployment).partners


def _open(home: Path | None, config: Path | None, store_url: str | None) -> Any:
    return open_store_read_only(load_deployment(home, config), store_url)


def unknown_destination(deployment: Any, name: str) -> str | None:
    """Why ``name`` is no destination of the deployment (with a did-you-mean), or None when it is one."""
    from gateway.components import BUILTIN_DESTINATIONS, configured_destinations

    known = sorted({*BUILTIN_DESTINATIONS, *configured_destinations(deployment)})
    if name in known:
        return None
    close = difflib.get_close_matches(name, known, n=1)
    return f"no destination {name!r}{f' (did you mean {close[0]!r}?)' if close else ''}; known: {', '.join(known)}"


def _filtered_by(home: Path | None, config: Path | None, store_url: str | None, destination: str | None) -> Any:
    """The store, once a filter on a destination the deployment does not have is noted on stderr (it may be
    one removed since: what was recorded under that name is still listed)."""
    deployment = load_deployment(home, config)
    why = unknown_destination(deployment, destination) if destination else None
    if why is not None:
        click.echo(f"note: {why}; listing what was recorded under that name", err=True)
    return open_store_read_only(deployment, store_url)


def _delivery_dict(d: DeliveryRow) -> dict[str, Any]:
    return {
        "id": d.id,
        "status": d.status,
        "destination": d.destination,
        "rule": d.rule,
        "partner_id": d.partner_id,
        "doc_type": d.doc_type,
        "document_id": d.document_id,
        "outbound_id": d.outbound_id,
        "file_id": d.file_id,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.isoformat(),
        "delivered_at": None if d.delivered_at is None else d.delivered_at.isoformat(),
        "last_error": d.last_error,
        "last_response": d.last_response,
        "idempotency_key": d.idempotency_key,
        "correlation_id": d.correlation_id,
        "parent_id": d.parent_id,
        "payload_sha256": d.payload_sha256,
        "created_at": d.created_at.isoformat(),
    }


def _line(d: DeliveryRow) -> str:
    what = f"document {d.document_id}" if d.document_id is not None else f"outbound {d.outbound_id}"
    when = ""
    if d.status == DeliveryStatus.PENDING:
        when = f" next {d.next_attempt_at:%Y-%m-%d %H:%M:%S}"
    elif d.delivered_at is not None:
        when = f" at {d.delivered_at:%Y-%m-%d %H:%M:%S}"
    error = f": {oneline(d.last_error)[:160]}" if d.last_error and d.status != DeliveryStatus.DELIVERED else ""
    return (
        f"{d.id:>8} {d.status:<11} {d.destination:<20} {d.partner_id or '-':<14} {d.doc_type:<18} "
        f"{what} attempts {d.attempts}{when}{error}"
    )


def _print(rows: list[DeliveryRow], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([_delivery_dict(d) for d in rows], indent=2, default=str))
        return
    if not rows:
        click.echo("no deliveries")
    for d in rows:
        click.echo(_line(d))


@click.group()
def deliveries() -> None:
    """Deliveries to destinations: what was delivered, what waits for a retry, what failed."""


@deliveries.command("list")
@click.option("--status", "status_filter", type=click.Choice([s.value for s in DeliveryStatus]))
@click.option("--destination", help="Only this destination.")
@click.option("--partner", help="Only this partner's.")
@click.option("--document", "document_id", type=int, help="Only this document's.")
@click.option("--file", "file_id", type=int, help="Only this file's.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@_options
def list_deliveries(
    status_filter: str | None,
    destination: str | None,
    partner: str | None,
    document_id: int | None,
    file_id: int | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Deliveries, newest first."""
    store = _filtered_by(home, config, store_url, destination)
    try:
        rows = store.list_deliveries(
            status=status_filter,
            destination=destination,
            partner_id=partner,
            document_id=document_id,
            file_id=file_id,
            limit=limit,
        )
    finally:
        store.close()
    _print(rows, as_json)


@deliveries.command("show")
@click.argument("delivery_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@_options
def show_delivery(
    delivery_id: int, as_json: bool, home: Path | None, config: Path | None, store_url: str | None
) -> None:
    """One delivery: where, what, every attempt with its time, outcome, error and response."""
    store = _open(home, config, store_url)
    try:
        d = store.get_delivery(delivery_id)
        attempts = store.delivery_attempts(delivery_id)
        events = store.events_for("delivery", delivery_id)
    except NotFoundError as exc:
        click.echo(f"no delivery {delivery_id} in the ledger at {store.url} (see `gateway deliveries list`)", err=True)
        raise SystemExit(2) from exc
    finally:
        store.close()
    if as_json:
        data = _delivery_dict(d) | {"attempts_made": attempts, "events": [_event_dict(e) for e in events]}
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(_line(d))
    click.echo(f"  idempotency key {d.idempotency_key}  correlation {d.correlation_id}  rule {d.rule or '-'}")
    if d.parent_id is not None:
        click.echo(f"  retransmission of delivery {d.parent_id}")
    if d.payload_sha256:
        click.echo(f"  payload archived as {d.payload_sha256}")
    for a in attempts:
        response = a["response"] or {}
        status = response.get("status")
        click.echo(
            f"  attempt {a['number']} {a['started_at']:%Y-%m-%d %H:%M:%S} {a['outcome']}"
            + (f" HTTP {status}" if status else "")
            + (f": {oneline(a['error'])[:300]}" if a["error"] else "")
        )
        excerpt = response.get("excerpt")
        if excerpt:
            click.echo(f"    response: {oneline(str(excerpt))[:300]}")
        if response.get("note"):  # e.g. a 409 Conflict taken as delivered
            click.echo(f"    note: {oneline(str(response['note']))}")
    for e in events:
        click.echo(
            f"  event {e.at:%Y-%m-%d %H:%M:%S} {e.action} {e.from_status or '-'} -> {e.to_status}"
            + (f" by {e.actor}" if e.actor else "")
            + (f" ({oneline(e.reason)})" if e.reason else "")
        )


def _event_dict(e: Any) -> dict[str, Any]:
    return {
        "at": e.at.isoformat(),
        "action": e.action,
        "from": e.from_status,
        "to": e.to_status,
        "actor": e.actor,
        "reason": e.reason,
    }


@click.group()
def deadletters() -> None:
    """Deliveries that failed for good: list them, retry them, or discard them with a reason."""


@deadletters.command("list")
@click.option("--destination", help="Only this destination.")
@click.option("--partner", help="Only this partner's.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@_options
def list_dead(
    destination: str | None,
    partner: str | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Dead letters, newest first, with their last error."""
    store = _filtered_by(home, config, store_url, destination)
    try:
        rows = store.list_deliveries(status="dead_letter", destination=destination, partner_id=partner, limit=limit)
    finally:
        store.close()
    _print(rows, as_json)


def _act(kind: str, ids: tuple[int, ...], reason: str, home: Path | None, config: Path | None, url: str | None) -> None:
    store = _open(home, config, url)
    try:
        if kind == "retry":
            done = store.retry_deliveries(list(ids), actor(), reason)
        else:
            done = store.discard_deliveries(list(ids), actor(), reason)
    except (NotFoundError, TransitionError, StoreValueError) as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from exc
    finally:
        store.close()
    verb = "queued again (due now)" if kind == "retry" else "discarded"
    click.echo(f"{len(done)} delivery(ies) {verb}: {' '.join(map(str, done))}")


@deadletters.command("retry")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--reason", default="retried by an operator", show_default=True, help="Recorded with the retry.")
@_options
def retry_dead(
    ids: tuple[int, ...], reason: str, home: Path | None, config: Path | None, store_url: str | None
) -> None:
    """Put dead letters back in the queue, due now (the running gateway, or `gateway deliver`, sends them)."""
    _act("retry", ids, reason, home, config, store_url)


@deadletters.command("discard")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--reason", required=True, help="Why they are given up (recorded).")
@_options
def discard_dead(
    ids: tuple[int, ...], reason: str, home: Path | None, config: Path | None, store_url: str | None
) -> None:
    """Give up dead letters (or pending deliveries) for good."""
    _act("discard", ids, reason, home, config, store_url)


PUT_BACK_FROM = {"release": ("held",), "requeue": ("failed", "quarantined")}
"""What ``release`` and ``requeue`` take: a held duplicate; a failed or quarantined file."""
_OTHERWISE = {
    "duplicate": " (a duplicate refused under `duplicates.policy: reject`: `gateway reprocess {id}` lets it through)",
    "processed": " (`gateway reprocess` translates it again; `gateway retransmit` delivers it again)",
    "partial": " (`gateway reprocess` translates it again; `gateway retransmit` delivers it again)",
}
"""What to do instead, for a file ``release``/``requeue`` does not take."""


def put_back(store: Any, kind: str, file_id: int, reason: str, who: str) -> FileRow:
    """``release`` or ``requeue`` file ``file_id`` (back to received, the reason and ``who`` recorded);
    the file as it was. NotFoundError when there is none; TransitionError when its status does not allow
    it. The one code path of the commands and the dashboard's actions."""
    row: FileRow = store.get_file(file_id)
    allowed = PUT_BACK_FROM[kind]
    if row.status not in allowed:
        hint = _OTHERWISE.get(row.status, "").format(id=file_id)
        raise TransitionError(
            f"file {file_id} is {row.status}: {kind} takes a file that is {' or '.join(allowed)}{hint}"
        )
    prefix = RELEASED if kind == "release" else "requeued by an operator"
    store.requeue_file(file_id, who, f"{prefix}: {reason}")
    return row


def _file_action(kind: str, file_id: int, reason: str, home: Path | None, config: Path | None, url: str | None) -> None:
    store = _open(home, config, url)
    try:
        row = put_back(store, kind, file_id, reason, actor())
    except NotFoundError as exc:
        click.echo(f"no file {file_id} in the ledger at {store.url}", err=True)
        raise SystemExit(2) from exc
    except GatewayError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    finally:
        store.close()
    click.echo(f"file {file_id} {row.name}: {row.status} -> received (the running gateway processes it again)")


@click.command()
@click.argument("file_id", type=int)
@click.option("--reason", default="its duplicates are wanted", show_default=True)
@_options
def release(file_id: int, reason: str, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Let a file held as a duplicate through: it is processed again, its duplicates allowed."""
    _file_action("release", file_id, reason, home, config, store_url)


@click.command()
@click.argument("file_id", type=int)
@click.option("--reason", default="its cause is fixed", show_default=True)
@_options
def requeue(file_id: int, reason: str, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Process a failed or quarantined file again, once its cause is fixed."""
    _file_action("requeue", file_id, reason, home, config, store_url)


@click.command()
@click.option("--now", "make_due", is_flag=True, help="Do not wait for retries: every pending delivery is due now.")
@click.option("--destination", help="Only this destination's deliveries (with --now).")
@click.option("--worker", help="This process's name in delivery leases (default host:pid).")
@deployment_options(read_only=False)
def deliver(
    make_due: bool,
    destination: str | None,
    worker: str | None,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Try every delivery that is due, once, and say what came of it (exit 6 if any still waits or died)."""
    from gateway.components import BuildContext, build_destinations, configured_destinations, default_registry
    from gateway.runtime.deliver import Deliverer
    from gateway.runtime.service import default_worker
    from gateway.store import Archive

    deployment = load_deployment(home, config)
    store = open_store_read_only(deployment, store_url)
    try:
        destinations, policies = build_destinations(
            configured_destinations(deployment),
            default_registry(),
            BuildContext(deployment.home, deployment.settings.processing.sync, partners=partner_profiles(deployment)),
        )
    except GatewayError as exc:
        store.close()
        raise click.UsageError(str(exc)) from exc
    deliverer = Deliverer(
        store,
        Archive(deployment.path("archive")),
        destinations,
        worker=worker or default_worker(),
        clock=store._clock,
        policies=policies,
        lease_seconds=deployment.settings.processing.lease_seconds,
    )
    try:
        if make_due:
            store.make_due(actor(), destination)
        counts = deliverer.run_due()
        final = store.delivery_statuses(sorted(counts.touched)) if counts.touched else {}
    finally:
        deliverer.close()
        store.close()
    delivered = sum(1 for v in final.values() if v == "delivered")
    waiting = sum(1 for v in final.values() if v == "pending")
    dead = sum(1 for v in final.values() if v == "dead_letter")
    click.echo(f"delivered {delivered}; waiting for a retry {waiting}; dead letters {dead}; paused {counts.paused}")
    if waiting or dead or counts.paused:
        raise SystemExit(EXIT_WAITING)
