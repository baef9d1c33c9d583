"""``gateway acks``: the 997/999 we are owed for what we sent, and what partners answered.

``gateway acks`` first checks (tracks what was sent since, matches acknowledgments received, flags
what is past its deadline, records the alerts routing rules ask for), then lists the tracked sets,
newest first: ``--waiting``, ``--overdue``, ``--rejected`` filter them; ``--unmatched`` lists the
acknowledgments that matched nothing we sent or repeated an answer. ``gateway acks show ID`` gives an
outbound interchange's sets, their answers (codes in words), resend links and events; ``gateway acks
resend ID --reason R`` sends it again with new control numbers, linked to it, and records who, when
and why. Every listing has ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from gateway.cli.deliveries_cli import actor
from gateway.cli.maps_cli import open_workspace
from gateway.cli.options import deployment_options, load_deployment, open_store_read_only
from gateway.errors import ConfigError
from gateway.runtime.acks import AckTracker
from gateway.settings import Deployment
from gateway.store import Archive
from gateway.store.errors import NotFoundError
from gateway.store.store import Store

__all__ = ["acks"]

_options = deployment_options(read_only=True)


@contextmanager
def _tracking(home: Path | None, config: Path | None, store_url: str | None) -> Iterator[tuple[Deployment, AckTracker]]:
    """The deployment, its store (which must exist) and a tracker on it; the store closed afterwards."""
    deployment = load_deployment(home, config)
    ws = open_workspace(deployment.home, deployment=deployment)
    store = open_store_read_only(deployment, store_url)
    try:
        tracker = AckTracker(
            store,
            Archive(deployment.path("archive")),
            ws.partners,
            ws.catalog,
            rules=deployment.settings.routes,
            worker=f"acks:{actor()}",
        )
        yield deployment, tracker
    finally:
        store.close()


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _line(r: dict[str, Any]) -> str:
    status = r["status"] + (" (late)" if r["late"] else "")
    links = ""
    if r.get("resent_as"):
        links += f" resent as {r['resent_as']}"
    if r.get("resent_from"):
        links += f" resends {r['resent_from']}"
    return (
        f"{r['outbound_id']:>8} {r['partner_id']:<14} {r['set_id']} {r['interchange_control']:>9} "
        f"{r['functional_id']} {r['group_control']:>9}/{r['set_control']:<6} {status:<28} "
        f"due {_when(r['due_at'])} acked {_when(r['acked_at'])}{links}"
    )


def _json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group(invoke_without_command=True)
@click.option("--waiting", "which", flag_value="waiting", help="Only sets still waiting (deadline not passed).")
@click.option("--overdue", "which", flag_value="overdue", help="Only sets past their deadline with no answer.")
@click.option("--rejected", "which", flag_value="rejected", help="Only sets the partner rejected.")
@click.option(
    "--unmatched", "which", flag_value="unmatched", help="Acknowledgments matching nothing we sent, or repeats."
)
@click.option("--partner", help="Only this partner's.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_options
@click.pass_context
def acks(
    ctx: click.Context,
    which: str | None,
    partner: str | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """The acknowledgments we are owed for what we sent: waiting, overdue, rejected, unmatched."""
    if ctx.invoked_subcommand is not None:
        return
    with _tracking(home, config, store_url) as (_, tracker):
        check = tracker.check(full=True)
        store = tracker.store
        if which == "unmatched":
            rows = store.list_ack_receipts(
                outcome=["unmatched", "duplicate", "partly_matched"], partner_id=partner, limit=limit
            )
        else:
            rows = store.list_owed_acks(status=[which] if which else None, partner_id=partner, limit=limit)
    if as_json:
        _json({"check": check.as_dict(), "rows": rows})
        return
    if check.overdue or check.matched or check.unmatched or check.duplicates:
        click.echo(
            f"checked: {check.matched} acknowledgment(s) matched, {check.unmatched} unmatched, "
            f"{check.duplicates} duplicate, {check.overdue} set(s) newly overdue"
        )
    for problem in check.problems:
        click.echo(f"problem: {problem}", err=True)
    if which == "unmatched":
        if not rows:
            click.echo("no unmatched or duplicate acknowledgments")
        for r in rows:
            click.echo(
                f"{r['document_id']:>8} {r['partner_id'] or '-':<14} {r['kind']:<4} {r['outcome']:<15} "
                f"received {_when(r['received_at'])}: {r['summary']}"
            )
        return
    if not rows:
        click.echo("no acknowledgments tracked" + (f" that are {which}" if which else ""))
    for r in rows:
        click.echo(_line(r))
        if r["status"] in ("rejected", "accepted_with_errors") and r.get("errors"):
            for error in r["errors"][:5]:
                click.echo(f"{'':>9}{error}")


@acks.command("show")
@click.argument("outbound_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@_options
def show(outbound_id: int, as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """An outbound interchange: its sets, what the partner answered (codes in words), resends, events."""
    with _tracking(home, config, store_url) as (_, tracker):
        tracker.check()
        store = tracker.store
        try:
            row = store.get_outbound(outbound_id)
        except NotFoundError as exc:
            raise click.UsageError(str(exc)) from exc
        sets = store.list_owed_acks(outbound_id=outbound_id, limit=1000)
        receipts = store.list_ack_receipts(outbound_id=outbound_id, limit=100)
        events = store.events_for("outbound", outbound_id)
    if as_json:
        _json(
            {"outbound": asdict(row), "sets": sets, "acknowledgments": receipts, "events": [asdict(e) for e in events]}
        )
        return
    click.echo(
        f"outbound {row.id}: {row.kind} to {row.partner_id}, ISA13 {row.control_number}, status {row.status}, "
        f"acknowledgment {row.expected_ack or 'not expected'}, due {_when(row.ack_due_at)}"
    )
    for r in sets:
        click.echo(_line(r))
        for error in r.get("errors") or []:
            click.echo(f"{'':>9}{error}")
    for a in receipts:
        click.echo(
            f"acknowledgment document {a['document_id']} ({a['kind']}, {a['outcome']}, received "
            f"{_when(a['received_at'])}): {a['summary']}"
        )
    for e in events:
        who = f" by {e.actor}" if e.actor else ""
        click.echo(f"  {e.at:%Y-%m-%d %H:%M:%S} {e.action} {e.to_status}{who}: {e.reason or ''}")


@acks.command("resend")
@click.argument("outbound_id", type=int)
@click.option("--reason", required=True, help="Why it is sent again (kept in the ledger).")
@click.option("--destination", "destinations", multiple=True, help="Where to (default: where the original went).")
@_options
def resend(
    outbound_id: int,
    reason: str,
    destinations: tuple[str, ...],
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Send outbound interchange OUTBOUND_ID again with new control numbers (ISA13, GS06, ST02), drawn
    from the partner's sequence and linked to the original. Exit 6 when delivery has to wait for a retry."""
    from gateway.cli.deliveries_cli import partner_profiles
    from gateway.components import BuildContext, build_destinations, configured_destinations, default_registry
    from gateway.runtime.ackresend import resend_outbound
    from gateway.runtime.deliver import Deliverer

    with _tracking(home, config, store_url) as (deployment, tracker):
        store: Store = tracker.store
        try:
            built, policies = build_destinations(
                configured_destinations(deployment),
                default_registry(),
                BuildContext(
                    deployment.home, deployment.settings.processing.sync, partners=partner_profiles(deployment)
                ),
            )
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from exc
        try:
            done = resend_outbound(
                store,
                tracker.archive,
                tracker,
                outbound_id,
                actor=actor(),
                reason=reason,
                clock=store._clock,
                worker=tracker.worker,
                destinations=list(destinations) or None,
            )
        except NotFoundError as exc:
            raise click.UsageError(str(exc)) from exc
        except ConfigError as exc:
            raise click.UsageError(f"[{exc.code}] {exc.message}") from exc
        deliverer = Deliverer(
            store, tracker.archive, built, worker=tracker.worker, clock=store._clock, policies=policies
        )
        try:
            deliverer.deliver_owed(list(done.delivery_ids))
            final = store.delivery_statuses(list(done.delivery_ids))
        finally:
            deliverer.close()
    click.echo(
        f"outbound {done.row.id} resends {done.original.id} to {done.row.partner_id}: ISA13 "
        f"{done.original.control_number} -> {done.row.control_number}"
    )
    waiting = [i for i, st in final.items() if st != "delivered"]
    click.echo(f"delivered {len(final) - len(waiting)} of {len(final)}")
    if waiting:
        click.echo(f"waiting: deliveries {' '.join(map(str, waiting))} (`gateway deliveries show ID`)", err=True)
        raise SystemExit(6)
