"""``gateway retransmit`` and ``gateway reprocess``: by id, or in bulk by filter.

By filter (``--partner``, ``--type``, ``--status``, ``--since``, ``--until``; ``--destination`` for
retransmit) they act on the latest link of each chain (see :mod:`gateway.store.bulk`). ``--dry-run``
counts and lists what would happen and changes nothing; otherwise the command asks for a confirmation
unless ``--yes``, then works in chunks with a progress bar (rich) on a terminal. Every new delivery or
file links to its parent, and every one is an event naming who (the OS user), when and ``--reason``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.deliveries_cli import actor, unknown_destination
from gateway.cli.options import deployment_options, load_deployment, open_store_read_only
from gateway.runtime.fsutil import oneline
from gateway.store.bulk import Selection
from gateway.store.errors import NotFoundError, StoreValueError, TransitionError
from gateway.store.statuses import DeliveryStatus, FileStatus

__all__ = ["confirm_or_stop", "progress_chunks", "reprocess", "retransmit", "retransmit_document"]

CHUNK = 50
"""Items per transaction in a bulk run: progress moves, and one bad item stops before much is done."""

F = TypeVar("F", bound=Callable[..., Any])
_options = deployment_options(read_only=True)
_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


def _utc(value: datetime | None) -> datetime | None:
    """A date from the command line, read as UTC (the ledger's zone) unless it names its own."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _filters(statuses: Sequence[str], status_help: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        for option in reversed(
            [
                click.option("--partner", help="Only this partner's."),
                click.option("--type", "doc_type", help="Only this document type (invoice, or an X12 set id: 810)."),
                click.option("--status", type=click.Choice(list(statuses)), help=status_help),
                click.option("--since", type=_DATE, help="From this date or time (UTC), inclusive."),
                click.option("--until", type=_DATE, help="Before this date or time (UTC)."),
                click.option("--dry-run", is_flag=True, help="Count and list what would happen; change nothing."),
                click.option("--yes", "-y", is_flag=True, help="Do not ask for a confirmation."),
                click.option("--limit", type=click.IntRange(min=1), help="At most this many (oldest first)."),
            ]
        ):
            fn = option(fn)
        return fn

    return decorate


def confirm_or_stop(question: str, yes: bool) -> None:
    """Go on when ``yes``; ask on a terminal; anywhere else stop (exit 2): a script must say ``--yes``."""
    if yes:
        return
    if not sys.stdin.isatty():
        click.echo(f"{question} -- not confirmed: pass --yes to run without a terminal", err=True)
        raise SystemExit(2)
    if not click.confirm(question, default=False):
        click.echo("nothing done", err=True)
        raise SystemExit(1)


def progress_chunks(items: Sequence[Any], label: str, work: Callable[[Sequence[Any]], None]) -> None:
    """Call ``work`` on ``items`` a :data:`CHUNK` at a time, with a rich progress bar on a terminal."""
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    if not sys.stderr.isatty() or len(chunks) < 2:
        for chunk in chunks:
            work(chunk)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=len(items))
        for chunk in chunks:
            work(chunk)
            bar.advance(task, len(chunk))


@dataclass(frozen=True, slots=True)
class Verb:
    """How a bulk action speaks of itself: ``2 delivery(ies) would retransmit``, ``retransmitting``..."""

    name: str  # retransmit
    noun: str  # delivery(ies)
    would: str  # would retransmit
    to_do: str  # to retransmit
    doing: str  # retransmitting
    done: str  # retransmitted


RETRANSMIT = Verb("retransmit", "delivery(ies)", "would retransmit", "to retransmit", "retransmitting", "retransmitted")
REPROCESS = Verb("reprocess", "file(s)", "would be reprocessed", "to reprocess", "reprocessing", "reprocessed")


def _run_bulk(
    verb: Verb,
    listed: Sequence[tuple[int, str]],
    run: Callable[[Sequence[int]], Sequence[tuple[int, int]]],
    *,
    dry_run: bool,
    confirmed: bool,
    show: bool = True,
) -> list[tuple[int, int]] | None:
    """The shape every bulk action shares: list ``listed`` (id, line) when ``show``; stop there on a dry run
    or when there is nothing (None); confirm unless ``confirmed``; ``run`` the store call a chunk at a time;
    on an error, say how many were done before it and exit 1. Returns ``run``'s (parent, new) pairs."""
    if show:
        click.echo(f"{len(listed)} {verb.noun} {verb.would if dry_run else verb.to_do}")
        for _, line in listed:
            click.echo(f"  {line}")
    if dry_run or not listed:
        return None
    confirm_or_stop(f"{verb.name} {len(listed)} {verb.noun}?", confirmed)
    done: list[tuple[int, int]] = []
    try:
        progress_chunks([i for i, _ in listed], verb.doing, lambda chunk: done.extend(run(chunk)))
    except (NotFoundError, TransitionError, StoreValueError) as exc:
        if done:
            click.echo(f"{len(done)} {verb.done} before the error", err=True)
        raise _fail(exc, 1) from exc
    return done


def _delivery_line(d: Any) -> str:
    what = f"document {d.document_id}" if d.document_id is not None else f"outbound {d.outbound_id}"
    last = f": {oneline(d.last_error)[:100]}" if d.last_error and d.status != "delivered" else ""
    return (
        f"delivery {d.id:>6} {d.status:<11} {d.destination:<20} {d.partner_id or '-':<14} {d.doc_type:<16} {what}{last}"
    )


def _selection(
    partner: str | None,
    doc_type: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    destination: str | None = None,
) -> Selection:
    return Selection(partner, doc_type, status, _utc(since), _utc(until), destination)


def _fail(exc: NotFoundError | TransitionError | StoreValueError, code: int) -> SystemExit:
    click.echo(f"error: {exc.message}", err=True)
    return SystemExit(code)


@click.command()
@click.argument("document_id", type=int, required=False)
@click.option("--delivery", "delivery_ids", type=int, multiple=True, help="Resend this delivery (repeatable).")
@click.option(
    "--outbound",
    "outbound_id",
    type=int,
    help="An interchange we sent (850, 997...): again with new control numbers from the partner's sequence, "
    "linked to the original (as `gateway acks resend`).",
)
@click.option("--destination", "destinations", multiple=True, help="Only to this destination (repeatable).")
@_filters([s.value for s in DeliveryStatus if s is not DeliveryStatus.PENDING], "Only deliveries in this status.")
@click.option("--reason", default="retransmitted by an operator", show_default=True, help="Recorded with each.")
@_options
@click.pass_context
def retransmit(
    ctx: click.Context,
    document_id: int | None,
    delivery_ids: tuple[int, ...],
    outbound_id: int | None,
    destinations: tuple[str, ...],
    partner: str | None,
    doc_type: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    yes: bool,
    limit: int | None,
    reason: str,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Deliver again: a new delivery (a new idempotency key) linked to the one it repeats; the running
    gateway (or `gateway deliver`) sends it.

    DOCUMENT_ID: that document, to every destination it went to (or --destination). --delivery ID: that
    link of a chain. Otherwise by filter: the latest delivery of each chain matching --partner, --type,
    --status, --destination, --since, --until (a pending one is on its way and never picked).
    """
    if outbound_id is not None:
        if document_id is not None or delivery_ids or dry_run:
            raise click.UsageError("--outbound resends one interchange: no DOCUMENT_ID, --delivery, --dry-run")
        from gateway.cli.acks_cli import resend  # one code path with `gateway acks resend`

        ctx.invoke(
            resend, outbound_id=outbound_id, reason=reason, destinations=destinations, home=home, config=config,
            store_url=store_url,
        )  # fmt: skip
        return
    sel = _selection(partner, doc_type, status, since, until, destinations[0] if len(destinations) == 1 else None)
    bulk = document_id is None and not delivery_ids
    if bulk and sel.is_empty():
        raise click.UsageError("name a DOCUMENT_ID, a --delivery, or at least one filter (--partner, --type, ...)")
    if len(destinations) > 1 and bulk:
        raise click.UsageError("in bulk, name at most one --destination")
    deployment = load_deployment(home, config)
    if document_id is not None:
        _known_destinations(deployment, destinations)
    elif destinations and (why := unknown_destination(deployment, destinations[0])) is not None:
        click.echo(f"note: {why}; picking what was recorded under that name", err=True)
    store = open_store_read_only(deployment, store_url)
    try:
        if document_id is not None:
            _one_document(store, document_id, destinations, reason, dry_run)
            return
        try:
            rows = store.select_deliveries(sel, limit) if bulk else [store.get_delivery(i) for i in delivery_ids]
        except NotFoundError as exc:
            raise _fail(exc, 2) from exc
        listed = [(d.id, _delivery_line(d)) for d in rows]
        done = _run_bulk(
            RETRANSMIT, listed, lambda chunk: store.retransmit_deliveries(chunk, actor(), reason),
            dry_run=dry_run, confirmed=yes or not bulk,
        )  # fmt: skip
        if done is None:
            return
    finally:
        store.close()
    for parent, new in done:
        click.echo(f"  delivery {parent} -> {new}")
    click.echo(f"{len(done)} new delivery(ies), due now")


def retransmit_document(
    store: Any, document_id: int, who: str, reason: str, destinations: Sequence[str] = ()
) -> list[int]:
    """New deliveries of document ``document_id`` to every destination it went to (or ``destinations``),
    ``who`` and ``reason`` recorded; the new ids. StoreValueError when its file was purged. The one code
    path of ``gateway retransmit DOCUMENT_ID`` and the dashboard's action."""
    if store.file_purged(document_id):
        raise StoreValueError(f"document {document_id}'s file was purged past the retention policy")
    new: list[int] = store.retransmit(document_id, who, reason, list(destinations) or None)
    return new


def _known_destinations(deployment: Any, names: Sequence[str]) -> None:
    """New deliveries go only to destinations the deployment has: a misspelt name is a usage error, not a
    dead letter "not configured" (nor, for an unrouted document, a reason to call it routed)."""
    for name in names:
        why = unknown_destination(deployment, name)
        if why is not None:
            raise click.UsageError(why)


def _one_document(store: Any, document_id: int, destinations: tuple[str, ...], reason: str, dry_run: bool) -> None:
    """The by-document form: one new delivery per destination the document went to (or ``destinations``)."""
    if dry_run and store.file_purged(document_id):
        click.echo(f"error: document {document_id}'s file was purged past the retention policy", err=True)
        raise SystemExit(1)
    if dry_run:
        earlier = {d.destination for d in store.list_deliveries(document_id=document_id, limit=1000)}
        targets = list(destinations) or sorted(earlier)
        click.echo(f"document {document_id}: would retransmit to {', '.join(targets) or 'nothing (never routed)'}")
        return
    try:
        new = retransmit_document(store, document_id, actor(), reason, destinations)
    except NotFoundError as exc:
        click.echo(f"no document {document_id} in the ledger at {store.url}", err=True)
        raise SystemExit(2) from exc
    except (TransitionError, StoreValueError) as exc:
        raise _fail(exc, 1) from exc
    click.echo(f"document {document_id}: {len(new)} new delivery(ies) {' '.join(map(str, new))}")


@click.command()
@click.argument("file_ids", type=int, nargs=-1)
@_filters([s.value for s in FileStatus if s.value not in ("received", "processing")], "Only files in this status.")
@click.option("--reason", default="translated again after a map or profile fix", show_default=True)
@_options
def reprocess(
    file_ids: tuple[int, ...],
    partner: str | None,
    doc_type: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    yes: bool,
    limit: int | None,
    reason: str,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Translate files again from their archived bytes with the current maps and profiles, each as a new
    file linked to the earlier one (its documents linked to the earlier documents); routing and delivery
    follow (the running gateway, or `gateway run --once`, processes them).

    FILE_IDS: those files. Otherwise by filter: the latest copy of each processed file matching
    --partner, --type (a document type or X12 set id in it), --status, --since, --until (received).
    """
    sel = _selection(partner, doc_type, status, since, until)
    bulk = not file_ids
    if bulk and sel.is_empty():
        raise click.UsageError("name FILE_IDS or at least one filter (--partner, --type, --status, --since, --until)")
    store = open_store_read_only(load_deployment(home, config), store_url)
    try:
        try:
            rows = store.select_files(sel, limit) if bulk else [store.get_file(i) for i in file_ids]
        except NotFoundError as exc:
            click.echo(f"error: {exc.message} in the ledger at {store.url}", err=True)
            raise SystemExit(2) from exc
        listed = [(f.id, f"file {f.id:>6} {f.status:<11} {f.partner_id or '-':<14} "
                          f"{f.received_at:%Y-%m-%d %H:%M:%S} {f.name}") for f in rows]  # fmt: skip
        done = _run_bulk(
            REPROCESS, listed, lambda chunk: store.reprocess_files(chunk, actor(), reason),
            dry_run=dry_run, confirmed=yes or not bulk, show=bulk or dry_run,
        )  # fmt: skip
        if done is None:
            return
    finally:
        store.close()
    names = {f.id: f.name for f in rows}
    for parent, new in done:
        click.echo(f"file {parent} {names[parent]}: reprocessed as file {new} (received)")
    if bulk:
        click.echo(f"{len(done)} file(s) queued to be translated again")
