"""``gateway recon``: the exceptions reconciliation found between orders, acknowledgments, ship notices
and invoices; a PO's chain as a grid; resolving and waiving with a reason; re-running; a month's summary.

Exceptions are found as documents are recorded (``gateway run``); ``gateway recon run`` reconciles
again (time-based SLAs move with the clock, settings may have changed). Every change to an exception
is an event (``gateway recon history ID``).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from gateway.cli.deliveries_cli import actor
from gateway.cli.options import deployment_options, load_deployment, open_store_read_only
from gateway.errors import GatewayError
from gateway.partners.profile import PartnerDirectory
from gateway.reconcile import Kind, Severity
from gateway.reconcile.grid import GridLine, grid, rates
from gateway.reconcile.words import money, qty
from gateway.runtime.acks import AlertSink
from gateway.runtime.recon import Reconciler, build_chain
from gateway.runtime.recon_alerts import ReconOutputs
from gateway.settings import Deployment
from gateway.store import Archive
from gateway.store.errors import NotFoundError, StoreValueError, TransitionError
from gateway.store.recon import ExceptionRow
from gateway.store.statuses import ExceptionStatus
from gateway.store.store import Store
from gateway.workspace import load_profiles

__all__ = ["po_grid", "recon", "reconcile", "settle"]

_options = deployment_options(read_only=True)


class _Env:
    def __init__(self, home: Path | None, config: Path | None, store_url: str | None) -> None:
        self.deployment: Deployment = load_deployment(home, config)
        self.store: Store = open_store_read_only(self.deployment, store_url)

    @classmethod
    def of(cls, deployment: Deployment, store: Store) -> _Env:
        """An environment on a deployment and store already open (the dashboard's)."""
        env = cls.__new__(cls)
        env.deployment, env.store = deployment, store
        return env

    def reconciler(self) -> Reconciler:
        profiles = load_profiles(self.deployment.path("partners"), self.deployment.home)
        return Reconciler(self.store, self.deployment.settings.reconciliation, profiles.get, actor=actor())

    def outputs(self, reconciler: Reconciler) -> ReconOutputs:
        """Exception alerts and billing events for ``reconciler``'s runs (delivered by ``gateway run``)."""
        profiles = load_profiles(self.deployment.path("partners"), self.deployment.home)
        archive = Archive(self.deployment.path("archive"))
        partners = PartnerDirectory(list(profiles.values()))
        sink = AlertSink(self.store, archive, partners, list(self.deployment.settings.routes), f"recon:{actor()}")
        return ReconOutputs.attach(reconciler, sink)

    def deliver(self, outputs: ReconOutputs) -> None:
        """Try the alerts and billing events ``outputs`` recorded now (what fails waits for a retry by
        ``gateway run`` or ``gateway deliver``)."""
        owed = outputs.take_owed()
        if not owed:
            return
        from gateway.cli.deliveries_cli import partner_profiles
        from gateway.components import BuildContext, build_destinations, configured_destinations, default_registry
        from gateway.runtime.deliver import Deliverer

        built, policies = build_destinations(
            configured_destinations(self.deployment),
            default_registry(),
            BuildContext(
                self.deployment.home, self.deployment.settings.processing.sync,
                partners=partner_profiles(self.deployment),
            ),
        )  # fmt: skip
        archive = Archive(self.deployment.path("archive"))
        deliverer = Deliverer(
            self.store, archive, built, worker=outputs.sink.worker, clock=self.store._clock, policies=policies
        )
        try:
            deliverer.deliver_owed(owed)
        finally:
            deliverer.close()


def _month(value: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a month like 2026-11", param_hint="--month") from exc
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _line(e: ExceptionRow) -> str:
    amount = e.amount or "-"
    return (
        f"{e.id:>7} {e.status:<8} {e.severity:<6} {e.partner_id or '-':<12} {e.po_number:<14} "
        f"{e.line or '-':<5} {e.kind:<24} {amount:>10}  {e.reason}"
    )


@click.group()
def recon() -> None:
    """Reconciliation of purchase orders, acknowledgments, ship notices and invoices (docs/reconciliation.md)."""


@recon.command("list")
@_options
@click.option("--partner", help="Only this partner's exceptions.")
@click.option("--po", "po_number", help="Only this PO's exceptions.")
@click.option("--type", "kind", type=click.Choice([k.value for k in Kind]), help="Only this kind.")
@click.option("--severity", type=click.Choice([s.value for s in Severity]), help="Only this severity.")
@click.option("--open", "only_open", is_flag=True, help="Only open exceptions.")
@click.option("--status", type=click.Choice([s.value for s in ExceptionStatus]), help="Only this status.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Found on or after this day (UTC).")
@click.option("--limit", default=1000, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="As CSV.")
def list_(
    home: Path | None,
    config: Path | None,
    store_url: str | None,
    partner: str | None,
    po_number: str | None,
    kind: str | None,
    severity: str | None,
    only_open: bool,
    status: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
    as_csv: bool,
) -> None:
    """The exceptions found, oldest first, then the open ones summed by partner."""
    if only_open and status not in (None, "open"):
        raise click.UsageError("--open and --status are the same filter: give one")
    with _Env(home, config, store_url).store as store:
        rows = store.list_exceptions(
            partner_id=partner,
            po_number=po_number,
            kind=kind,
            severity=severity,
            status="open" if only_open else status,
            since=since.replace(tzinfo=UTC) if since else None,
            limit=limit,
        )
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if as_csv:
        out = io.StringIO()
        fields = [f for f in ExceptionRow.__slots__ if f != "key"]
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            values = r.as_json()
            values["documents"] = " ".join(values["documents"])
            writer.writerow(values)
        click.echo(out.getvalue(), nl=False)
        return
    for r in rows:
        click.echo(_line(r))
    totals: dict[str, list[Decimal]] = defaultdict(list)
    for r in rows:
        if r.status == "open":
            totals[r.partner_id].append(Decimal(r.amount or 0))
    for partner_id, amounts in sorted(totals.items()):
        click.echo(f"{partner_id or '-'}: {len(amounts)} open, {money(sum(amounts, Decimal(0)))} at stake")
    if not rows:
        click.echo("no exceptions")


@recon.command()
@_options
@click.argument("po_number")
@click.option("--partner", required=True, help="The partner (PO numbers are unique per partner only).")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def show(
    home: Path | None, config: Path | None, store_url: str | None, po_number: str, partner: str, as_json: bool
) -> None:
    """A PO's chain line by line: ordered, acknowledged, shipped, invoiced, with its exceptions marked."""
    env = _Env(home, config, store_url)
    with env.store as store:
        try:
            data, chain, lines, found = po_grid(env.deployment, store, partner, po_number, datetime.now(UTC))
        except NotFoundError as exc:
            raise click.ClickException(exc.message) from exc
    marks: dict[str | None, list[ExceptionRow]] = defaultdict(list)
    for e in found:
        if e.status == "open":
            marks[e.line].append(e)
    if as_json:
        click.echo(json.dumps(_show_json(data.docs, lines, found), indent=2, default=str))
        return
    click.echo(f"PO {po_number} ({partner})")
    for d in data.docs:
        click.echo(f"  {d.ref:<16} {d.doc_type:<18} {d.number or '':<16} recorded {d.received_at:%Y-%m-%d %H:%M}")
    if chain.order is None:
        click.echo("  (the order itself was never sent or received)")
    head = f"{'line':<5} {'item':<16} {'unit':<4} {'ordered':>9} {'acked':>9} {'shipped':>9} {'invoiced':>9}"
    click.echo(f"\n{head} {'price':>10} {'inv. price':>10}  exceptions")
    for g in lines:
        click.echo(_grid_line(g, marks.get(g.line, [])))
    for e in marks.get(None, []):
        click.echo(f"  ! [{e.id}] {e.kind}: {e.reason}")
    closed = [e for e in found if e.status != "open"]
    if closed:
        click.echo(f"\nsettled ({len(closed)}): " + ", ".join(f"[{e.id}] {e.kind} {e.status}" for e in closed))


def po_grid(
    deployment: Deployment, store: Store, partner: str, po_number: str, now: datetime
) -> tuple[Any, Any, list[GridLine], list[ExceptionRow]]:
    """PO ``po_number``'s chain: its documents, the chain, the grid (a line per order line: ordered,
    acknowledged, shipped, invoiced) under the partner's policy at ``now``, and every exception on it.
    NotFoundError when no document names the PO. The one code path of ``recon show`` and the dashboard."""
    data = store.chain_data(partner, po_number)
    if not data.docs:
        raise NotFoundError(f"no documents for PO {po_number} of partner {partner}")
    policy, _ = _Env.of(deployment, store).reconciler().policy(partner)
    chain = build_chain(data)
    return (
        data,
        chain,
        grid(chain, policy, now),
        store.list_exceptions(partner_id=partner, po_number=po_number, limit=None),
    )


def _empty(partner_id: str) -> dict[str, Any]:
    return {"partner": partner_id, "exceptions": 0, "open": 0, "at_stake": Decimal(0), "price_variance": Decimal(0),
            "invoices_on_hold": set(), "by_kind": defaultdict(int), "lines_ordered": 0, "fill_rate": None,
            "backorder_rate": None}  # fmt: skip


def _q(value: Decimal | None) -> str:
    return "-" if value is None else qty(value)


def _grid_line(g: GridLine, marks: list[ExceptionRow]) -> str:
    prices = sorted(set(g.invoiced_prices))
    inv_price = ",".join(money(p) for p in prices) if prices else "-"
    flags = " ".join(f"[{e.id}] {e.kind}" for e in marks)
    return (
        f"{g.line:<5} {g.item[:16]:<16} {g.uom or '-':<4} {_q(g.ordered):>9} {_q(g.acknowledged):>9} "
        f"{_q(g.shipped):>9} {_q(g.invoiced):>9} {money(g.price) if g.price is not None else '-':>10} "
        f"{inv_price:>10}  {('! ' + flags) if flags else ''}"
    ).rstrip()


def _show_json(docs: list[Any], lines: list[GridLine], found: list[ExceptionRow]) -> dict[str, Any]:
    return {
        "documents": [
            {"ref": d.ref, "doc_type": d.doc_type, "number": d.number, "received_at": d.received_at} for d in docs
        ],
        "lines": [
            {
                "line": g.line, "item": g.item, "uom": g.uom, "ordered": g.ordered, "acknowledged": g.acknowledged,
                "shipped": g.shipped, "invoiced": g.invoiced, "price": g.price, "invoiced_prices": g.invoiced_prices,
                "lots": g.lots,
            }
            for g in lines
        ],
        "exceptions": [e.as_json() for e in found],
    }  # fmt: skip


def settle(
    deployment: Deployment, store: Store, exception_id: int, status: str, reason: str, who: str
) -> tuple[ExceptionRow, int]:
    """Resolve or waive (``status``) exception ``exception_id``, ``who`` and ``reason`` kept in its history,
    then release the billing it withheld (delivered now when the destinations take it); the exception and
    the number of billing events released. NotFoundError, TransitionError or StoreValueError when it cannot
    be done. The one code path of ``recon resolve|waive`` and the dashboard's actions."""
    env = _Env.of(deployment, store)
    row = store.settle_exception(exception_id, status, reason, who)
    outputs = env.outputs(env.reconciler())
    outputs.after([(row.partner_id, row.po_number)])  # billing withheld for this exception is released
    env.deliver(outputs)
    return row, outputs.events


def _settle(env: _Env, exception_id: int, status: str, reason: str) -> None:
    with env.store as store:
        try:
            row, released = settle(env.deployment, store, exception_id, status, reason, actor())
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
        except (TransitionError, StoreValueError) as exc:
            raise click.UsageError(str(exc)) from exc
    click.echo(f"exception {row.id} {row.status}: {row.kind} on PO {row.po_number} ({row.partner_id}): {reason}")
    if released:
        click.echo(f"{released} billing event(s) released")


@recon.command()
@_options
@click.argument("exception_id", type=int)
@click.option("--reason", required=True, help="Why (kept in the exception's history).")
def resolve(home: Path | None, config: Path | None, store_url: str | None, exception_id: int, reason: str) -> None:
    """Mark an open exception resolved: settled with the supplier outside EDI, say."""
    _settle(_Env(home, config, store_url), exception_id, "resolved", reason)


@recon.command()
@_options
@click.argument("exception_id", type=int)
@click.option("--reason", required=True, help="Why it is accepted as it is.")
def waive(home: Path | None, config: Path | None, store_url: str | None, exception_id: int, reason: str) -> None:
    """Accept an open exception as it is (a price increase agreed, a substitution approved)."""
    _settle(_Env(home, config, store_url), exception_id, "waived", reason)


@recon.command()
@_options
@click.argument("exception_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def history(home: Path | None, config: Path | None, store_url: str | None, exception_id: int, as_json: bool) -> None:
    """An exception and every change to it."""
    with _Env(home, config, store_url).store as store:
        try:
            found = store.get_exception(exception_id)
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
        events = store.exception_events(exception_id)
    if as_json:
        out = found.as_json()
        out["events"] = [{**asdict(e), "at": e.at.isoformat()} for e in events]
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(_line(found))
    for e in events:
        click.echo(
            f"  {e.at:%Y-%m-%d %H:%M:%S} {e.action:<7} {e.from_status or '-'} -> {e.to_status} by {e.actor}: {e.reason}"
        )


@recon.command()
@_options
@click.option("--partner", help="Only this partner's chains.")
def run(home: Path | None, config: Path | None, store_url: str | None, partner: str | None) -> None:
    """Reconcile every chain in the index again (or one partner's)."""
    env = _Env(home, config, store_url)
    with env.store as store:
        before = store.count_exceptions()
        reconciler = env.reconciler()
        outputs = env.outputs(reconciler)
        try:
            chains = reconciler.rerun(partner=partner)
            env.deliver(outputs)
        except GatewayError as exc:
            raise click.ClickException(str(exc)) from exc
        after = store.count_exceptions()
    click.echo(
        f"reconciled {chains} PO chain(s): {after.get('open', 0)} open exception(s) "
        f"(was {before.get('open', 0)}), {after.get('resolved', 0)} resolved, {after.get('waived', 0)} waived"
    )
    if outputs.alerts or outputs.events:
        click.echo(f"recorded {outputs.alerts} exception alert(s) and {outputs.events} billing event(s) to deliver")


def _echo_by_partner(out: list[dict[str, Any]]) -> None:
    click.echo(
        f"{'partner':<14} {'found':>6} {'open':>6} {'at stake':>12} {'price var.':>12} {'inv. on hold':>12} "
        f"{'lines':>7} {'fill %':>7} {'backord. %':>10}"
    )
    for s in out:
        click.echo(
            f"{s['partner'] or '-':<14} {s['exceptions']:>6} {s['open']:>6} {s['at_stake']:>12} "
            f"{s['price_variance']:>12} {s['invoices_on_hold']:>12} {s['lines_ordered']:>7} "
            f"{s['fill_rate'] or '-':>7} {s['backorder_rate'] or '-':>10}"
        )


def _by_partner(env: _Env, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Exceptions found in [start, end) by partner (how many, open, at stake, price variance, invoices on
    hold) and, of the orders recorded then, the fill and backorder rates."""
    with env.store as store:
        rows = store.list_exceptions(since=start, until=end, limit=None)
        lines: dict[str, list[GridLine]] = defaultdict(list)
        reconciler = env.reconciler()
        now = datetime.now(UTC)
        for data in store.chains(store.orders_recorded(start, end)):
            lines[data.partner_id] += grid(build_chain(data), reconciler.policy(data.partner_id)[0], now)
    by_partner: dict[str, dict[str, Any]] = {}
    for partner_id, partner_lines in lines.items():
        ordered, full, held = rates(partner_lines)
        by_partner[partner_id] = _empty(partner_id) | {
            "lines_ordered": ordered,
            "fill_rate": f"{100 * full / ordered:.1f}" if ordered else None,
            "backorder_rate": f"{100 * held / ordered:.1f}" if ordered else None,
        }
    for r in rows:
        s = by_partner.setdefault(r.partner_id, _empty(r.partner_id))
        s["exceptions"] += 1
        s["by_kind"][r.kind] += 1
        if r.status != "open":
            continue
        s["open"] += 1
        amount = Decimal(r.amount or 0)
        s["at_stake"] += amount
        if r.kind in ("invoice_price", "ack_price"):
            s["price_variance"] += amount
        if r.kind.startswith("invoice_") and r.severity == "high" and r.kind != "invoice_late":
            s["invoices_on_hold"].add(r.documents[0])
    out = [
        {**s, "at_stake": money(s["at_stake"]), "price_variance": money(s["price_variance"]),
         "invoices_on_hold": len(s["invoices_on_hold"]), "by_kind": dict(sorted(s["by_kind"].items()))}
        for _, s in sorted(by_partner.items())
    ]  # fmt: skip
    return out


@recon.command()
@_options
@click.option("--month", required=True, help="The month, e.g. 2026-11 (exceptions found in it).")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def summary(home: Path | None, config: Path | None, store_url: str | None, month: str, as_json: bool) -> None:
    """A month's exceptions by partner: how many, still open, amount at stake, price variance, invoices on hold;
    and of the orders sent or received that month, the fill rate (lines shipped in full) and backorder rate."""
    start, end = _month(month)
    out = _by_partner(_Env(home, config, store_url), start, end)
    if as_json:
        click.echo(json.dumps({"month": month, "partners": out}, indent=2))
        return
    click.echo(f"{month}: exceptions found by partner (open amounts at stake); rates of the lines ordered")
    _echo_by_partner(out)
    if not out:
        click.echo(f"no exceptions found in {month} (before {date(end.year, end.month, 1)})")


@click.pass_context
def _reconcile(ctx: click.Context, /, **options: Any) -> None:
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_, **options)
        if options["as_json"] or options["as_csv"]:
            return
        since = options["since"].replace(tzinfo=UTC) if options["since"] else datetime(1970, 1, 1, tzinfo=UTC)
        out = _by_partner(_Env(options["home"], options["config"], options["store_url"]), since, datetime.now(UTC))
        if options["partner"]:
            out = [s for s in out if s["partner"] == options["partner"]]
        click.echo(
            f"since {since:%Y-%m-%d}: exceptions found by partner (open amounts at stake); rates of the lines ordered"
        )
        _echo_by_partner(out)


reconcile = click.Group(
    "reconcile",
    params=list(list_.params),
    callback=_reconcile,
    invoke_without_command=True,
    help="Reconciliation (the same as `gateway recon`): with no subcommand, the exceptions as `recon list` "
    "gives them (`gateway reconcile --open --partner P`), then the open ones summed by partner.",
)
for _name, _command in recon.commands.items():
    reconcile.add_command(_command, _name)
