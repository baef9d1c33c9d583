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

import json
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from gateway.canonical import PurchaseOrder
from gateway.cli.maps_cli import open_workspace
from gateway.cli.run_cli import _deployment, _options, _store
from gateway.errors import ConfigError
from gateway.mapping.problems import MapLoadError
from gateway.outbound import OutboundMap, RenderError, render_850
from gateway.outbound_loader import load_outbound
from gateway.partners.profile import Profile
from gateway.settings import Deployment
from gateway.store.archive import Archive
from gateway.store.store import Store
from gateway.workspace import Workspace


class ControlCounter:
    """Control numbers for one interchange: ISA13 and GS06 are ``number`` (as the runtime's acks),
    ST02 counts from 1 inside the group."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sets = 0

    def __call__(self, kind: str) -> int:
        if kind == "set":
            self.sets += 1
            return self.sets
        return self.number


def _problem(where: str, message: str) -> None:
    click.echo(f"{where}: {message}", err=True)


def orders_in(text: str, name: str) -> list[PurchaseOrder]:
    """The purchase orders in ``text``: one canonical purchase order, a list of them, ``gateway translate
    --json`` output (its results' documents that are purchase orders), or JSON Lines of any of these.
    Exits 1 listing every problem with its key path."""
    try:
        values: list[Any] = [json.loads(text)]
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            values = [json.loads(line) for line in lines] if len(lines) > 1 else []
        except json.JSONDecodeError:
            values = []
        if not values:
            _problem(name, f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
            raise SystemExit(1) from exc
    candidates: list[tuple[str, Any]] = []
    for value in values:
        candidates.extend(_candidates(value))
    orders: list[PurchaseOrder] = []
    failed = False
    for where, doc in candidates:
        try:
            orders.append(PurchaseOrder.model_validate(doc))
        except ValidationError as exc:
            failed = True
            for err in exc.errors():
                path = ".".join(str(p) for p in err["loc"]) or "(document)"
                _problem(name, f"{where}{path}: {err['msg']}")
    if failed:
        raise SystemExit(1)
    if not orders:
        _problem(name, "no purchase order found (a canonical purchase order or `gateway translate --json` output)")
        raise SystemExit(1)
    return orders


def _candidates(value: Any) -> list[tuple[str, Any]]:
    """(where, document) pairs: translate results' purchase orders, else the value itself."""
    if isinstance(value, list):
        return [pair for item in value for pair in _candidates(item)]
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        return [
            (f"results[{n}].document.", r["document"])
            for n, r in enumerate(value["results"])
            if isinstance(r, dict) and isinstance(r.get("document"), dict) and _is_order(r)
        ]
    if isinstance(value, dict) and isinstance(value.get("document"), dict) and "po_number" not in value:
        return [("document.", value["document"])] if _is_order(value) else []
    return [("", value)]


def _is_order(result: dict[str, Any]) -> bool:
    """A translate result holding a purchase order (from an 850, a cXML OrderRequest, a CSV order)."""
    return bool(result["document"].get("document_type") == "purchase_order")


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
    cmap = _outbound_map(ws, profile)
    text = sys.stdin.read() if str(file) == "-" else file.read_text("utf-8")
    orders = orders_in(text, str(file))
    if test_control is not None:
        orders = [o.model_copy(update={"provenance": o.provenance.model_copy(update={"test": True})}) for o in orders]
    now = datetime.now()

    def write(order: PurchaseOrder, number: int) -> bytes:
        return render_850(
            order, profile, cmap, control_numbers=ControlCounter(number), when=now, xrefs=ws.xrefs.get(profile.id)
        )

    for order in orders:  # every problem before any number is drawn
        _checked(write, order, 999_999_999, file, partner)
    if test_control is not None:
        click.echo(
            f"warning: test interchange(s) numbered from {test_control} (ISA15=T), drawn from no sequence and "
            "recorded nowhere: not for production",
            err=True,
        )
        written = [_checked(write, o, test_control + n, file, partner) for n, o in enumerate(orders)]
    else:
        written = [data for data, _ in _drawn(deployment, store_url, profile, orders, write, file)]
    data = b"".join(written)
    if out is None:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    write_atomic(out, data)
    for order in orders:
        click.echo(f"{out}: 850 for {partner} (map {cmap.name}), PO {order.po_number}, {len(order.lines)} line(s)")


def _outbound_map(ws: Workspace, profile: Profile) -> OutboundMap:
    try:
        library = load_outbound(ws.root, ws.catalog, partners=ws.partners, profile_files=ws.profile_files)
        return library.for_partner(profile, "850")
    except MapLoadError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from exc
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc


def _checked(write: Render, order: PurchaseOrder, number: int, file: Path, partner: str) -> bytes:
    """``write(order, number)``; exits 1 listing every problem, 2 on configuration errors."""
    try:
        return write(order, number)
    except RenderError as exc:
        click.echo(f"{file}: PO {order.po_number}: cannot write the 850 for {partner}:", err=True)
        for e in exc.errors:
            click.echo(f"  {e.location.path or e.location.describe()}: [{e.code}] {e.message}", err=True)
        raise SystemExit(1) from exc
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc


def _drawn(
    deployment: Deployment,
    store_url: str | None,
    profile: Profile,
    orders: list[PurchaseOrder],
    write: Render,
    file: Path,
    *,
    command: str = "render",
    deliver_to: list[str] | None = None,
    worker: str | None = None,
) -> list[tuple[bytes, int]]:
    """Each order numbered from the partner's sequence, archived and recorded as an outbound 850 (with its
    deliveries when ``deliver_to`` names destinations); the bytes and the outbound row id of each."""
    store = _open_store(deployment, store_url)
    archive = Archive(deployment.path("archive"))
    written: list[tuple[bytes, int]] = []
    try:
        for order in orders:
            number = store.next_interchange_number(profile.id)
            data = _checked(write, order, number, file, profile.id)
            sha = archive.put(data)
            row = store.add_outbound(
                profile.id,
                "850",
                sha,
                control_number=f"{number:09d}",
                group_control_number=str(number),
                reason=f"gateway {command}: PO {order.po_number}",
                expected_ack="pending",
                deliver_to=deliver_to,
                worker=worker,
            )
            written.append((data, row.id))
    finally:
        store.close()
    return written


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--partner", required=True, help="The partner the purchase order goes to.")
@_options
def send(file: Path, partner: str, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Send the purchase order(s) in FILE to PARTNER: written as its X12 850, numbered from its persisted
    sequence, archived, recorded and delivered to its outbox (the `partner-outbox` destination, with the
    same retries and dead letters as everything else). Exit 6 when the delivery has to wait for a retry."""
    from gateway.components import BuildContext, build_destinations, configured_destinations, default_registry
    from gateway.planning import PARTNER_OUTBOX
    from gateway.runtime.deliver import Deliverer
    from gateway.runtime.service import default_worker

    deployment = _deployment(home, config)
    ws = open_workspace(deployment.home)
    profile = ws.partners.get(partner)
    if profile is None:
        raise click.UsageError(f"no partner profile {partner!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    cmap = _outbound_map(ws, profile)
    text = sys.stdin.read() if str(file) == "-" else file.read_text("utf-8")
    orders = orders_in(text, str(file))
    now = datetime.now()

    def write(order: PurchaseOrder, number: int) -> bytes:
        return render_850(
            order, profile, cmap, control_numbers=ControlCounter(number), when=now, xrefs=ws.xrefs.get(profile.id)
        )

    for order in orders:  # every problem before any number is drawn
        _checked(write, order, 999_999_999, file, partner)
    try:
        destinations, policies = build_destinations(
            configured_destinations(deployment),
            default_registry(),
            BuildContext(deployment.home, deployment.settings.processing.sync),
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    worker = default_worker()
    _store(deployment, store_url).close()  # send is an operation of the deployment: its store is created as run does
    sent = _drawn(
        deployment, store_url, profile, orders, write, file, command="send", deliver_to=[PARTNER_OUTBOX], worker=worker
    )
    store = _open_store(deployment, store_url)
    deliverer = Deliverer(
        store, Archive(deployment.path("archive")), destinations, worker=worker, clock=store._clock, policies=policies
    )
    try:
        ids = [
            d.id
            for _, out_id in sent
            for d in store.list_deliveries(partner_id=partner, limit=20)
            if d.outbound_id == out_id
        ]
        deliverer.deliver_owed(ids)
        final = store.delivery_statuses(ids)
    finally:
        deliverer.close()
        store.close()
    for order, (data, _) in zip(orders, sent, strict=True):
        click.echo(f"850 for {partner}, PO {order.po_number}, ISA13 {data[90:99].decode('latin-1')}")
    waiting = [i for i, st in final.items() if st != "delivered"]
    click.echo(f"delivered {len(final) - len(waiting)} of {len(final)} to {PARTNER_OUTBOX}")
    if waiting:
        click.echo(f"waiting: deliveries {' '.join(map(str, waiting))} (`gateway deliveries show ID`)", err=True)
        raise SystemExit(6)


__all__ = ["ControlCounter", "orders_in", "read_order", "render", "send"]
