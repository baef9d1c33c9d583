"""``gateway messages list|show`` and ``gateway find``: finding a message and everything that became of it.

A message is a received file (id ``42``) or an interchange we sent (id ``out-7``); see
:mod:`gateway.store.search` for the filters and the search keys behind them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from gateway.cli.options import deployment_options, load_deployment, open_store_read_only
from gateway.errors import GatewayError
from gateway.runtime.fsutil import oneline, printable
from gateway.store import Archive
from gateway.store.errors import NotFoundError
from gateway.store.rows import DocumentRow, FileTree
from gateway.store.search import KEY_FIELDS, STATUSES, Found, Message, MessageFilter, parse_message_id, resolve_types
from gateway.store.search import keys_of as canonical_keys
from gateway.store.store import Store
from gateway.x12.extract import set_segments

_read_options = deployment_options(read_only=True)
_DURATION = re.compile(r"^(\d+)\s*(m|min|h|d|w)$")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def when(value: str, now: datetime, *, end: bool = False) -> datetime:
    """A ``--since``/``--until`` value: a duration back from ``now`` (``30m``, ``12h``, ``7d``, ``2w``), a
    date (``2026-12-01``: its start, or with ``end`` the start of the next day) or an ISO date-time (UTC
    unless it says otherwise)."""
    text = value.strip()
    m = _DURATION.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r}: a duration (30m, 12h, 7d, 2w), a date (2026-12-01) or a date-time (2026-12-01T08:00)"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _open(home: Path | None, config: Path | None, store_url: str | None) -> tuple[Any, Store]:
    deployment = load_deployment(home, config)
    return deployment, open_store_read_only(deployment, store_url)


@click.group()
def messages() -> None:
    """Find messages (received files, interchanges we sent) and show everything that became of them."""


@messages.command("list")
@click.option("--partner", help="Only this partner's messages.")
@click.option("--type", "types", multiple=True, help="Document type: invoice, 810, ship_notice, 856, po, 850...")
@click.option("--direction", type=click.Choice(["in", "out"]), help="Received (in) or sent (out); default both.")
@click.option("--status", "status_filter", type=click.Choice(STATUSES), help="The message's, a set's, "
              "a document's or a delivery's status (dead_letter: a delivery of it is a dead letter).")  # fmt: skip
@click.option("--since", help="From: 7d, 12h, 30m, 2w, a date (2026-12-01) or a date-time.")
@click.option("--until", help="Before: same forms as --since (a date means the end of that day).")
@click.option("--control", help="A control number: ISA13, GS06 or ST02 (leading zeros optional).")
@click.option("--po", help="A PO number (the order, its 855, ASNs and invoices quoting it).")
@click.option("--invoice", help="An invoice number.")
@click.option("--asn", help="A ship notice (shipment) id.")
@click.option("--lot", help="A lot number shipped or ordered.")
@click.option("--key", help="Any business key (PO, invoice, ASN, lot, serial, SSCC, bill of lading).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of messages.")
@_read_options
def list_messages(
    partner: str | None,
    types: tuple[str, ...],
    direction: str | None,
    status_filter: str | None,
    since: str | None,
    until: str | None,
    control: str | None,
    po: str | None,
    invoice: str | None,
    asn: str | None,
    lot: str | None,
    key: str | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Messages newest first: id (for `messages show`), time, direction, partner, status, documents, name.

    Filters combine (all must hold). A business key matches wherever the document carries it: `--po`
    finds the order, its acknowledgment, and the ship notices and invoices that quote it.
    """
    given = [(k, v) for k, v in (("po", po), ("invoice", invoice), ("asn", asn), ("lot", lot), (None, key)) if v]
    if len(given) > 1:
        raise click.UsageError("give one business key (--po, --invoice, --asn, --lot or --key)")
    now = datetime.now(UTC)
    try:
        wanted = MessageFilter(
            partner=partner,
            types=resolve_types(types),
            direction=direction,
            status=status_filter,
            since=when(since, now) if since else None,
            until=when(until, now, end=True) if until else None,
            control=control,
            key=given[0][1] if given else None,
            key_kind=given[0][0] if given else None,
            limit=limit,
        )
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    _deployment, store = _open(home, config, store_url)
    try:
        rows = store.list_messages(wanted)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_message_dict(m) for m in rows], indent=2, default=str))
        return
    for m in rows:
        click.echo(_message_line(m))
    if not rows:
        click.echo("no message matches", err=True)


def _message_dict(m: Message) -> dict[str, Any]:
    item = asdict(m)
    item["at"] = m.at.isoformat()
    return item


def _message_line(m: Message) -> str:
    """``id time direction partner status documents name (reason)``: the name last, as the old listing."""
    fine = {"translated", "delivered", "routed"}
    docs = "; ".join(
        f"{sum(st.values())} {t}" + ("" if set(st) <= fine else f" ({'/'.join(sorted(st))})")
        for t, st in sorted(m.types.items())
    ) if m.direction == "in" else ""  # fmt: skip
    key = m.keys[0] if m.keys else ""
    summary = " ".join(x for x in (docs, key) if x)
    return (
        f"{m.id:>8} {m.at:%Y-%m-%d %H:%M:%S} {m.direction:<3} {m.partner or '-':<12} {m.status:<12} "
        f"{summary:<30} {printable(m.name)}" + (f"  ({oneline(m.reason)[:200]})" if m.reason else "")
    )


@click.command()
@click.argument("text")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of matches.")
@_read_options
def find(text: str, limit: int, as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Where is it? TEXT is a PO, invoice, ASN, lot or serial number, a control number (ISA13, GS06, ST02)
    or a correlation id. Each match names what matched, the document type, partner and status, and the
    id to give `gateway messages show`. Exit 1 when nothing matches."""
    _deployment, store = _open(home, config, store_url)
    try:
        found = store.find(text, limit)
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_found_dict(f) for f in found], indent=2))
    else:
        for f in found:
            doc = f" document {f.document_id}" if f.document_id is not None else ""
            click.echo(
                f"{f.match:<28} {f.doc_type:<20} {f.partner or '-':<12} {f.status:<14} "
                f"{f.at:%Y-%m-%d %H:%M:%S}  gateway messages show {f.message}{doc}"
            )
    if not found:
        click.echo(
            f"nothing in the ledger matches {text!r} (business keys, control numbers, correlation ids)", err=True
        )
        raise SystemExit(1)


def _found_dict(f: Found) -> dict[str, Any]:
    item = asdict(f)
    item["at"] = f.at.isoformat()
    return item


# --- messages show ---------------------------------------------------------------------------------


@messages.command("show")
@click.argument("message_id")
@click.option("--segments", default=40, show_default=True, type=click.IntRange(0, None),
              help="Raw segments shown per transaction set (0: none).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@_read_options
def show_message(
    message_id: str, segments: int, as_json: bool, home: Path | None, config: Path | None, store_url: str | None
) -> None:
    """One message's whole lineage: file → interchange → group → set (its raw segments and located errors)
    → canonical document (its keys and routing decision) → each delivery and every attempt with its
    response → what we sent back (997/999/TA1) and its deliveries → every event with its time.

    MESSAGE_ID is a file id (42) or out-N for an interchange we sent. Exit 2 when there is no such message.
    """
    try:
        kind, number = parse_message_id(message_id)
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    deployment, store = _open(home, config, store_url)
    archive = Archive(deployment.path("archive"))
    try:
        shown = _outbound_view(store, number) if kind == "outbound" else _file_view(store, archive, number, segments)
    except NotFoundError as exc:
        what = "file" if kind == "file" else "outbound interchange"
        click.echo(f"no {what} {message_id} in the ledger at {store.url} (see `gateway messages list`)", err=True)
        raise SystemExit(2) from exc
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(shown, indent=2, default=str))
    elif kind == "outbound":
        _echo_outbound(shown, archive, segments)
    else:
        _echo_file(shown)


def _file_view(store: Store, archive: Archive, file_id: int, limit: int) -> dict[str, Any]:
    """Everything ``messages show`` says about a received file, as plain data (``--json`` prints it)."""
    tree = store.file_tree(file_id)
    delivered = store.list_deliveries(file_id=file_id, limit=10_000)
    attempts = store.attempts_of([d.id for d in delivered])
    sent = store.list_outbound(file_id=file_id, limit=1000)
    raw = raw_sets(archive, tree, limit) if limit and tree.file.format == "x12" else {}
    return {
        "tree": _plain(tree),
        "segments": raw,
        "keys": {str(d.id): canonical_keys(_json(d.canonical)) for d in _documents(tree)},
        "events": [_plain(e) for e in store.events_for_file(file_id)],
        "outbound": [_plain(o) for o in sent],
        "deliveries": [dict(_plain(d), tries=attempts[d.id]) for d in sorted(delivered, key=lambda d: d.id)],
    }


def _outbound_view(store: Store, outbound_id: int) -> dict[str, Any]:
    row = store.outbound_row(outbound_id)
    delivered = store.list_deliveries(outbound_id=outbound_id, limit=10_000)
    attempts = store.attempts_of([d.id for d in delivered])
    events = store.events_for("outbound", outbound_id)
    for d in delivered:
        events += store.events_for("delivery", d.id)
    return {
        "outbound": row,
        # What the partner answered, set by set, and the 997/999/TA1 documents that said it (docs/acks.md).
        "acknowledgments": store.list_owed_acks(outbound_id=outbound_id, limit=1000),
        "acks_received": store.list_ack_receipts(outbound_id=outbound_id, limit=100),
        "keys": store.keys_of_outbound(outbound_id),
        "deliveries": [dict(_plain(d), tries=attempts[d.id]) for d in sorted(delivered, key=lambda d: d.id)],
        "events": [_plain(e) for e in sorted(events, key=lambda e: e.id)],
    }


def _documents(tree: FileTree) -> list[DocumentRow]:
    inside = [d for ic in tree.interchanges for g in ic.groups for s in g.sets for d in s.documents]
    return [*inside, *tree.documents]


def raw_sets(archive: Archive, tree: FileTree, limit: int) -> dict[str, Any]:
    """Each set's segments as received, read back from the archived file (a set id → lines)."""
    try:
        data = archive.read(tree.file.sha256)
    except (OSError, GatewayError) as exc:
        return {"unavailable": f"archived bytes of file {tree.file.id} cannot be read: {exc}"}
    out: dict[str, Any] = {}
    for ic in tree.interchanges:
        for g in ic.groups:
            for s in g.sets:
                text = set_segments(data, ic.row.position, g.row.position, s.row.position, s.row.control_number, limit)
                out[str(s.row.id)] = {"segments": text.segments, "total": text.total, "found": text.found}
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {}


def _plain(obj: object) -> Any:
    return asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else obj


def _at(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else str(value or "-")


def _echo_file(view: dict[str, Any]) -> None:
    tree = view["tree"]
    f = tree["file"]
    click.echo(
        f"file {f['id']} {printable(f['name'])}  status {f['status']}" + (f" ({f['reason']})" if f["reason"] else "")
    )
    click.echo(f"  partner {f['partner_id'] or '-'}  format {f['format']}  {f['size']} bytes  sha256 {f['sha256']}")
    click.echo(f"  received {_at(f['received_at'])}  origin {f['origin']}")
    click.echo(f"  correlation {f['correlation_id']}  attempts {f['attempts']}")
    for parent in tree["ancestors"]:
        click.echo(f"  reprocessed from file {parent['id']} {printable(parent['name'])} ({parent['status']})")
    for child in tree["children"]:
        click.echo(f"  reprocessed as file {child['id']} ({child['status']})")
    by_document: dict[int | None, list[dict[str, Any]]] = {}
    for d in view["deliveries"]:
        by_document.setdefault(d["document_id"], []).append(d)
    for ic in tree["interchanges"]:
        i = ic["row"]
        click.echo(
            f"  interchange {i['control_number']} {i['sender_qualifier']}:{i['sender_id']} -> "
            f"{i['receiver_qualifier']}:{i['receiver_id']} {i['status']}"
            + (f" ({i['reason']})" if i["reason"] else "")
            + (" [test]" if i["test"] else "")
        )
        for g in ic["groups"]:
            gr = g["row"]
            click.echo(f"    group {gr['functional_id']} {gr['control_number']} {gr['status']}")
            for st in g["sets"]:
                s = st["row"]
                click.echo(
                    f"      set {s['set_id']} {s['control_number']} {s['status']}"
                    + (f" ({s['reason']})" if s["reason"] else "")
                )
                for err in s["errors"]:
                    line = f"{err.get('code')} {err.get('where', '')}: {err.get('message')}"
                    if err.get("severity") == "warning":
                        line = f"warning {line}" + (f" (accepted: {err['accepted']})" if err.get("accepted") else "")
                    click.echo(f"        {line}")
                _echo_segments(view["segments"].get(str(s["id"])), "        ")
                for d in st["documents"]:
                    _echo_document(d, view, by_document, "        ")
    for d in tree["documents"]:
        _echo_document(d, view, by_document, "  ")
    unavailable = view["segments"].get("unavailable")
    if unavailable:
        click.echo(f"  segments: {unavailable}")
    _echo_sent(view, by_document)
    _echo_events(view["events"])


def _echo_sent(view: dict[str, Any], by_document: dict[Any, Any]) -> None:
    """What we sent back for the file (997/999/TA1) and the deliveries of it."""
    for o in view["outbound"]:
        ack = f", ack {o['expected_ack']}" if o["expected_ack"] else ""
        click.echo(
            f"  sent {o['kind']} {o['control_number'] or ''} to {o['partner_id']} ({o['status']}{ack})"
            f"  gateway messages show out-{o['id']}"
        )
        _echo_route(o.get("route"), "    ")
        for dv in [d for d in view["deliveries"] if d["outbound_id"] == o["id"]]:
            _echo_delivery(dv, "    ")
    for dv in by_document.get(None, []):
        if dv["outbound_id"] is None:
            _echo_delivery(dv, "  ")


def _echo_segments(raw: dict[str, Any] | None, indent: str) -> None:
    if not raw:
        return
    if not raw["found"]:
        click.echo(f"{indent}segments: not found in the archived file where the ledger places this set")
        return
    more = f" (first {len(raw['segments'])} of {raw['total']}; --segments N shows more)" if raw["total"] > len(
        raw["segments"]
    ) else ""  # fmt: skip
    click.echo(f"{indent}segments{more}:")
    for index, text in raw["segments"]:
        click.echo(f"{indent}  {index:>5} {printable(text)}")


def _echo_document(d: dict[str, Any], view: dict[str, Any], by_document: dict[Any, Any], indent: str) -> None:
    if d["doc_type"] == "acknowledgment":
        click.echo(f"{indent}acknowledgment received {d['id']}: {d['reason'] or ''}")
    else:
        click.echo(
            f"{indent}document {d['id']} {d['doc_type']} {d['business_key'] or ''} {d['status']}"
            + (f" ({oneline(d['reason'])[:300]})" if d["reason"] else "")
        )
    keys = view["keys"].get(str(d["id"])) or []
    if keys:
        click.echo(
            f"{indent}  keys: " + ", ".join(f"{k} {v}" for k, v in keys[:12]) + (" ..." if len(keys) > 12 else "")
        )
    for w in d["warnings"]:
        click.echo(f"{indent}  warning {w.get('code')} {w.get('where', '')}: {w.get('message')}")
    _echo_route(d.get("route"), indent + "  ")
    for dv in by_document.get(d["id"], []):
        _echo_delivery(dv, indent + "  ")


def _echo_route(route: dict[str, Any] | None, indent: str) -> None:
    """A routing decision (a document's, or an outbound item's): the rules and destinations, or why none."""
    if route:
        rules = ", ".join(route.get("rules", [])) or "none"
        dests = ", ".join(route.get("destinations", [])) or "none"
        click.echo(f"{indent}routed: rules {rules} -> destinations {dests}" + (
            f" (unrouted: {route.get('reason')})" if route.get("unrouted") else ""))  # fmt: skip


def _echo_delivery(dv: dict[str, Any], indent: str) -> None:
    error = f": {oneline(dv['last_error'])[:200]}" if dv["last_error"] and dv["status"] != "delivered" else ""
    what = (
        f"document {dv['document_id']}"
        if dv["document_id"] is not None
        else f"{dv['doc_type']} (outbound {dv['outbound_id']})"
    )
    click.echo(
        f"{indent}delivery {dv['id']} {what} -> {dv['destination']} {dv['status']} after {dv['attempts']} attempt(s)"
        f" (rule {dv['rule'] or '-'}){error}"
    )
    for a in dv["tries"]:
        took = ""
        if isinstance(a["started_at"], datetime) and isinstance(a["finished_at"], datetime):
            took = f" in {(a['finished_at'] - a['started_at']).total_seconds() * 1000:.0f} ms"
        response = f" response {oneline(json.dumps(a['response'], default=str))[:200]}" if a["response"] else ""
        err = f" error {oneline(a['error'])[:200]}" if a["error"] else ""
        click.echo(f"{indent}  attempt {a['number']} {_at(a['started_at'])} {a['outcome']}{took}{response}{err}")


def _echo_events(events: list[dict[str, Any]]) -> None:
    click.echo("  events:")
    for e in events:
        click.echo(
            f"    {_at(e['at'])} {e['entity_kind']} {e['entity_id']} "
            f"{e['from_status'] or '-'} -> {e['to_status'] or '-'}"
            + (f" ({oneline(e['reason'])[:300]})" if e["reason"] else "")
            + f" [{e['action']}"
            + (f" by {e['actor']}]" if e["actor"] else "]")
        )


def _echo_outbound(view: dict[str, Any], archive: Archive, limit: int) -> None:
    o = view["outbound"]
    click.echo(
        f"outbound {o['id']} {o['kind']} to {o['partner_id']}  status {o['status']}"
        + (f" ({o['reason']})" if o["reason"] else "")
    )
    click.echo(f"  ISA13 {o['control_number'] or '-'}  GS06 {o['group_control_number'] or '-'}  sha256 {o['sha256']}")
    click.echo(f"  created {_at(o['created_at'])}  correlation {o['correlation_id']}")
    if o["expected_ack"]:
        click.echo(f"  acknowledgment expected: {o['expected_ack']} (due {_at(o['ack_due_at'])})")
    if o["file_id"] is not None:
        click.echo(f"  answers file {o['file_id']}  gateway messages show {o['file_id']}")
    if view["keys"]:
        click.echo("  keys: " + ", ".join(f"{k} {v}" for k, v in view["keys"]))
    _echo_route(o.get("route"), "  ")
    if limit:
        try:
            data = archive.read(o["sha256"])
        except (OSError, GatewayError) as exc:
            click.echo(f"  segments: archived bytes cannot be read: {exc}")
        else:
            text = set_segments(data, 1, 1, 1, None, limit)
            _echo_segments({"segments": text.segments, "total": text.total, "found": text.found}, "  ")
    for dv in view["deliveries"]:
        _echo_delivery(dv, "  ")
    for a in view["acknowledgments"]:
        late = " (late)" if a["late"] else ""
        click.echo(
            f"  set {a['set_id']} {a['group_control']}/{a['set_control']}: {a['status']}{late}, "
            f"due {_at(a['due_at'])}, answered {_at(a['acked_at'])}"
        )
        for error in a.get("errors") or []:
            click.echo(f"    {error}")
    for r in view["acks_received"]:
        click.echo(f"  acknowledgment document {r['document_id']} ({r['kind']}, {r['outcome']}): {r['summary']}")
    _echo_events(view["events"])


__all__ = ["KEY_FIELDS", "find", "messages", "raw_sets", "when"]
