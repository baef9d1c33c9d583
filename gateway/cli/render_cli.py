"""``gateway render``: a canonical purchase order (JSON) written as the partner's X12 850.

Control numbers: every interchange we send a partner draws its ISA13 and GS06 from the one persisted
per-partner sequence in the deployment's store, the same the runtime's 997/999/TA1 draw from, and the
850 is archived and recorded as an outbound interchange. Without a store (none at the deployment's
``store:`` URL, or ``--store``) the command refuses, unless ``--test-control N`` asks for a test
interchange numbered N: ISA15 is then forced to ``T`` (the partner's test identity receives it) and
nothing is drawn or recorded.

FILE is a purchase order as ``gateway schema purchase_order`` describes it, or what ``gateway translate
--json`` prints (every purchase order in it is rendered, one interchange each); ``-`` reads stdin.

Exit codes as everywhere: 0 written, 1 the document cannot be written (invalid JSON, a value the
partner's X12 cannot carry; every problem listed, located by field), 2 usage or configuration (unknown
partner, map problems, no store).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from gateway.canonical import PurchaseOrder
from gateway.cli.maps_cli import open_workspace
from gateway.cli.run_cli import _deployment, _options, _store
from gateway.errors import ConfigError
from gateway.mapping.problems import MapLoadError
from gateway.outbound import OutboundMap
from gateway.outbound.orders import parse_orders
from gateway.partners.profile import Profile
from gateway.runtime.send import OrderSender
from gateway.settings import Deployment
from gateway.store.archive import Archive
from gateway.store.store import Store


def _problem(where: str, message: str) -> None:
    click.echo(f"{where}: {message}", err=True)


def orders_in(text: str, name: str) -> list[PurchaseOrder]:
    """The purchase orders in ``text`` (see :func:`~gateway.outbound.orders.parse_orders`). Exits 1 listing
    every problem with its key path."""
    orders, problems = parse_orders(text, name)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(1)
    return orders


def read_order(path: Path) -> PurchaseOrder:
    """The single purchase order in ``path``; exits 1 listing every problem with its key path."""
    orders = orders_in(path.read_text("utf-8"), str(path))
    if len(orders) != 1:
        _problem(str(path), f"{len(orders)} purchase orders, one expected")
        raise SystemExit(1)
    return orders[0]


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a watcher never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_store(deployment: Deployment, url: str | None) -> Store:
    """The deployment's store; exits 2 when there is none (a SQLite file that does not exist is not
    created: numbers drawn from a new empty store would repeat the ones already sent)."""
    target = url or deployment.store_url
    prefix = "sqlite:///"
    if target.startswith(prefix) and ":memory:" not in target and not Path(target[len(prefix) :]).is_file():
        click.echo(
            f"error: no store at {target}: `gateway render` draws the 850's ISA13/GS06 from the partner's "
            "persisted sequence (the one its acks use). Run it in the deployment (--home, --config, --store), "
            "or pass --test-control N for a test interchange (ISA15=T) numbered N, recorded nowhere.",
            err=True,
        )
        raise SystemExit(2)
    return _store(deployment, url)


Render = Callable[[PurchaseOrder, int], bytes]


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--partner", required=True, help="The partner profile to write for (its identity, version, delimiters).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of to stdout.")
@click.option(
    "--test-control",
    type=click.IntRange(1, 999_999_999),
    help="No store: a TEST interchange (ISA15=T, to the partner's test identity) with this ISA13/GS06, "
    "drawn from no sequence and recorded nowhere.",
)
@_options
def render(
    file: Path,
    partner: str,
    out: Path | None,
    test_control: int | None,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Write the purchase order in FILE (canonical JSON, or `gateway translate --json` output) as PARTNER's
    X12 850, numbered from the partner's persisted control-number sequence in the deployment's store."""
    deployment = _deployment(home, config)
    ws = open_workspace(deployment.home)
    profile = ws.partners.get(partner)
    if profile is None:
        raise click.UsageError(f"no partner profile {partner!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    text = sys.stdin.read() if str(file) == "-" else file.read_text("utf-8")
    orders = orders_in(text, str(file))
    if test_control is not None:
        orders = [o.model_copy(update={"provenance": o.provenance.model_copy(update={"test": True})}) for o in orders]
    now = datetime.now()
    archive = Archive(deployment.path("archive"))
    # the orders are checked before the store is opened: a bad order is the user's first problem
    cmap = _checked_all(OrderSender(ws, None, archive, clock=lambda: now), profile, orders, file)
    if test_control is not None:
        click.echo(
            f"warning: test interchange(s) numbered from {test_control} (ISA15=T), drawn from no sequence and "
            "recorded nowhere: not for production",
            err=True,
        )
        sender = OrderSender(ws, None, archive, clock=lambda: now)
        written = [sender.render(profile, o, test_control + n, now) for n, o in enumerate(orders)]
    else:
        store = _open_store(deployment, store_url)
        try:
            sender = OrderSender(ws, store, archive, clock=lambda: now)
            written = [s.data for s in sender.record(profile, orders, command="render", deliver=False, worker=None)]
        finally:
            store.close()
    data = b"".join(written)
    if out is None:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    write_atomic(out, data)
    for order in orders:
        click.echo(f"{out}: 850 for {partner} (map {cmap.name}), PO {order.po_number}, {len(order.lines)} line(s)")


def _checked_all(sender: OrderSender, profile: Profile, orders: list[PurchaseOrder], file: Path) -> OutboundMap:
    """The partner's 850 map, after a trial render of every order: exits 2 on map or configuration
    problems, 1 listing every problem of the orders (before any control number is drawn)."""
    try:
        cmap = sender.outbound_map(profile)
        problems = sender.problems(profile, orders, str(file))
    except MapLoadError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from exc
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    if problems:
        click.echo(f"{file}: cannot write the 850 for {profile.id}:", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1)
    return cmap


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--partner", required=True, help="The partner the purchase order goes to.")
@_options
def send(file: Path, partner: str, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Send the purchase order(s) in FILE to PARTNER: written as its X12 850, numbered from its persisted
    sequence, archived, recorded and delivered where the outbound routing rules send 850s (by default its
    outbox: the `partner-outbox` destination), with the same retries and dead letters as everything else.
    Exit 6 when a delivery has to wait for a retry, 1 when no rule routes an order (kept `unrouted`)."""
    from gateway.components import (
        BuildContext,
        build_destinations,
        configured_destinations,
        default_registry,
        make_outbound_router,
        profile_routes,
    )
    from gateway.runtime.deliver import Deliverer
    from gateway.runtime.service import default_worker

    deployment = _deployment(home, config)
    ws = open_workspace(deployment.home)
    profile = ws.partners.get(partner)
    if profile is None:
        raise click.UsageError(f"no partner profile {partner!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    text = sys.stdin.read() if str(file) == "-" else file.read_text("utf-8")
    orders = orders_in(text, str(file))
    try:
        destinations, policies = build_destinations(
            configured_destinations(deployment),
            default_registry(),
            BuildContext(deployment.home, deployment.settings.processing.sync, partners=ws.partners),
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    worker = default_worker()
    _store(deployment, store_url).close()  # send is an operation of the deployment: its store is created as run does
    store = _open_store(deployment, store_url)
    archive = Archive(deployment.path("archive"))
    deliverer = Deliverer(store, archive, destinations, worker=worker, clock=store._clock, policies=policies)
    try:
        router = make_outbound_router(list(deployment.settings.routes), profile_routes(ws.partners))
        sender = OrderSender(ws, store, archive, router=router)
        _checked_all(sender, profile, orders, file)
        sent = sender.record(profile, orders, command="send", deliver=True, worker=worker)
        ids = [i for s in sent for i in s.delivery_ids]
        deliverer.deliver_owed(ids)
        final = store.delivery_statuses(ids)
        destinations_of = {i: store.get_delivery(i).destination for i in ids}
    finally:
        deliverer.close()
        store.close()
    for s in sent:
        click.echo(f"850 for {partner}, PO {s.po_number}, ISA13 {s.data[90:99].decode('latin-1')}")
    waiting = [i for i, st in final.items() if st != "delivered"]
    to = ", ".join(sorted(set(destinations_of.values()))) or "nowhere"
    click.echo(f"delivered {len(final) - len(waiting)} of {len(final)} to {to}")
    unrouted = [s for s in sent if s.unrouted]
    for s in unrouted:
        click.echo(f"unrouted: PO {s.po_number} (outbound {s.outbound_id}): {s.unrouted}", err=True)
    if waiting:
        click.echo(f"waiting: deliveries {' '.join(map(str, waiting))} (`gateway deliveries show ID`)", err=True)
        raise SystemExit(6)
    if unrouted:
        raise SystemExit(1)


__all__ = ["orders_in", "read_order", "render", "send"]
