"""``gateway run``, ``gateway status`` and ``gateway messages``: the runtime from the command line."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cli.maps_cli import open_workspace
from gateway.cli.options import deployment_options, load_deployment, open_store_read_only, resolve_store_url
from gateway.errors import GatewayError
from gateway.runtime.fsutil import oneline, printable
from gateway.runtime.health import folder_problems, read_problems
from gateway.runtime.service import (
    EXIT_CODES,
    EXIT_STORE,
    Interrupted,
    RunSummary,
    Service,
    ensure_folders,
    exit_code,
)
from gateway.runtime.sftp_pull import channel_line, read_states
from gateway.settings import Deployment
from gateway.store.errors import NotFoundError, StoreUnavailableError
from gateway.store.rows import FileRow
from gateway.store.store import Store
from gateway.workspace import Workspace


def _store(deployment: Deployment, url: str | None = None) -> Store:
    """The deployment's store, created or brought up to date (``render`` draws numbers from it)."""
    store = Store(resolve_store_url(deployment, url))
    try:
        store.upgrade()
    except GatewayError as exc:
        click.echo(f"store {store.url}: {exc}", err=True)
        raise SystemExit(2) from exc
    return store


_options = deployment_options(read_only=False)
_read_options = deployment_options(read_only=True)
_deployment = load_deployment


class JsonLines(logging.Formatter):
    """One JSON object per log record: time, level, logger, message, and a per-file line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        item: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "gateway", None)
        if isinstance(fields, dict):
            item.update(fields)
        if record.exc_info:
            item["traceback"] = self.formatException(record.exc_info)
        return json.dumps(item, default=str, ensure_ascii=False)


def _configure_logging(verbose: int, log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))
    logging.getLogger("gateway.files").setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)


@click.command()
@click.option("--once", is_flag=True, help="Process everything pending, print a summary and exit (cron/batch).")
@click.option("--worker", help="This process's name in leases (default host:pid).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or as JSON objects, one a line (stderr).",
)
@_options
def run(
    once: bool,
    worker: str | None,
    verbose: int,
    log_format: str,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Run the gateway: watch the inbox, archive, validate, acknowledge, translate.

    One line per file as it goes (stderr). With --once, the exit code says how the run went:
    0 every file taken and processed; 1 a file failed, was quarantined or was partly rejected; 3 a file could not be
    taken from the inbox or moved out of it; 4 the store could not be reached; 5 a recorded file
    could not be processed now (left received for a retry); 2 configuration.
    """
    _configure_logging(verbose, log_format)
    deployment = _deployment(home, config)
    _check_routing(deployment, config)
    ensure_folders(deployment)
    workspace = open_workspace(deployment.home, partial=True, deployment=deployment)
    deployment = _hold_broken(deployment, workspace)
    store = Store(resolve_store_url(deployment, store_url))
    service = Service(deployment, workspace, store, worker=worker)
    service.install_signal_handlers()
    service.start_watchdog()  # the schema check below may meet a store that hangs
    try:
        try:
            store.upgrade()
        except StoreUnavailableError as exc:
            click.echo(f"store {store.url}: {exc}", err=True)
            raise SystemExit(EXIT_STORE) from exc
        except GatewayError as exc:
            click.echo(f"store {store.url}: {exc}", err=True)
            raise SystemExit(2) from exc
        except Interrupted as exc:
            click.echo(f"store {store.url}: {exc}", err=True)
            raise SystemExit(EXIT_STORE if once else 0) from exc
        summary = service.run_once() if once else service.run_forever()
    finally:
        service.stop_watchdog()
        store.close()
    _print_summary(summary, deployment)
    _print_broken(workspace, deployment)
    if once:
        code = exit_code(summary)
        if code == 0 and workspace.broken:
            code = 2  # a partner's files wait for its configuration to be fixed: cron must hear of it
            click.echo("exit 2: a partner is not loaded (configuration): its files wait in its inbox folder", err=True)
        elif code:
            click.echo(f"exit {code}: {EXIT_CODES[code]}", err=True)
        raise SystemExit(code)


def _check_routing(deployment: Deployment, config: Path | None) -> None:
    """Phase one of destinations and routes (as `gateway config lint`), before anything is built or
    connected: every problem printed, exit 2."""
    from gateway.cli.config_cli import default_registry, lint_config, sorted_problems

    checked = lint_config(deployment.home, default_registry(), config)
    if checked.problems.items:
        for problem in sorted_problems(checked.problems):
            click.echo(str(problem), err=True)
        click.echo(
            f"{len(checked.problems.items)} problem(s) in destinations or routes: nothing was started "
            "(`gateway config lint` checks them)",
            err=True,
        )
        raise SystemExit(2)


def _hold_broken(deployment: Deployment, workspace: Workspace) -> Deployment:
    """Report the partners whose maps or profile are broken; their inbox folders are left alone.

    Their files wait in ``inbox/<partner>/`` (nothing is archived, acknowledged or failed) until the
    configuration is fixed and the service restarted; every other partner runs as usual.
    """
    inbox = deployment.path("inbox")
    for pid, found in sorted(workspace.broken.items()):
        click.echo(f"partner {pid} is not loaded; its files wait in {inbox / pid}/ until this is fixed:", err=True)
        for problem in found:
            click.echo(f"  {problem}", err=True)
    stray = workspace.unattributed()
    if stray:
        click.echo("problems in maps no partner uses (unknown senders may lack a base map):", err=True)
        for problem in stray:
            click.echo(f"  {problem}", err=True)
    if not workspace.broken:
        return deployment
    settings = deployment.settings
    intake = settings.intake.model_copy(update={"ignore": [*settings.intake.ignore, *sorted(workspace.broken)]})
    return Deployment(deployment.home, settings.model_copy(update={"intake": intake}))


def _print_broken(workspace: Workspace, deployment: Deployment) -> None:
    if workspace.broken:
        inbox = deployment.path("inbox")
        names = ", ".join(f"{pid} (files wait in {inbox / pid}/)" for pid in sorted(workspace.broken))
        click.echo(f"not loaded   {len(workspace.broken)} partner(s): {names}")


def _print_summary(s: RunSummary, deployment: Deployment) -> None:
    processed = sum(s.statuses.values())
    click.echo(f"received     {s.received} file(s) into {deployment.path('archive')}")
    click.echo(
        f"processed    {processed} file(s): " + (", ".join(f"{n} {k}" for k, n in sorted(s.statuses.items())) or "none")
    )
    click.echo(
        f"translated   {s.documents} document(s)"
        + (f", {s.unrouted} matched no route (unrouted)" if s.unrouted else "")
    )
    d = s.deliveries
    line = f"delivered    {d.delivered} delivery(ies)"
    if d.by_destination:
        line += " (" + ", ".join(f"{n} to {k}" for k, n in sorted(d.by_destination.items())) + ")"
    click.echo(
        line
        + (f"; {d.retrying} waiting for a retry" if d.retrying else "")
        + (f"; {d.dead} dead letter(s)" if d.dead else "")
    )
    if d.retrying or d.dead:
        click.echo("  see `gateway deliveries list --status pending` / `gateway deadletters list`")
    if s.orders_sent or s.send_refused or s.send_left:
        click.echo(f"sent         {len(s.orders_sent)} purchase order(s) from {deployment.path('send')} as 850s")
        for line in s.orders_sent:
            click.echo(f"  {line}")
        for line in s.send_refused:
            click.echo(f"  refused (quarantined, nothing numbered): {oneline(line)}")
        for line in s.send_left:
            click.echo(f"  left in the send folder for a retry: {oneline(line)}")
    click.echo(f"acks read    {s.acknowledgments} acknowledgment(s) received (997/999/TA1), kept, not answered")
    click.echo(f"acknowledged {len(s.acks)} interchange(s)" + (f": {', '.join(s.acks)}" if s.acks else ""))
    click.echo(f"failed sets  {s.failed_sets}; duplicates {s.duplicates}")
    click.echo(f"quarantined  {len(s.quarantined)} file(s)" + ("" if not s.quarantined else ":"))
    for q in s.quarantined:
        click.echo(f"  {q}")
    if s.failed:
        click.echo(f"failed       {len(s.failed)} file(s):")
        for f in s.failed:
            click.echo(f"  {f}")
    if s.not_taken:
        click.echo(f"not taken    {len(s.not_taken)} file(s), still in the inbox:")
        for item in s.not_taken.values():
            recorded = f" (recorded as file {item.recorded_as})" if item.recorded_as is not None else ""
            click.echo(f"  {printable(str(item.path))}{recorded}: {oneline(item.reason)}")
    if s.not_processed:
        click.echo(f"not processed {len(s.not_processed)} file(s), left received for a retry:")
        for why in s.not_processed.values():
            click.echo(f"  {why}")
    if s.store_error:
        click.echo(f"store        {s.store_error}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@_read_options
def status(as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Counts by state, the oldest pending file, and quarantined files."""
    deployment = _deployment(home, config)
    store = open_store_read_only(deployment, store_url)
    counts = store.counts_by_status()
    oldest = store.oldest_pending()
    quarantined = store.list_files(status="quarantined", limit=20)
    backlog = store.delivery_backlog()
    unrouted = store.list_documents(status="unrouted", limit=20)
    store.close()
    reported = read_problems(deployment.path("run"))
    # A folder the service already reported is named once, by the service's report.
    problems = [m for f, m in folder_problems(deployment) if not any(str(f) in r for r in reported)] + reported
    channels = read_states(deployment.path("run"))  # SFTP partners' last poll (docs/sftp.md)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "counts": counts,
                    "oldest_pending": None
                    if oldest is None
                    else {"id": oldest.id, "name": oldest.name, "since": oldest.received_at.isoformat()},
                    "quarantined": [{"id": f.id, "name": f.name, "reason": f.reason} for f in quarantined],
                    "destinations": backlog,
                    "unrouted": [{"id": d.id, "file_id": d.file_id, "reason": d.reason} for d in unrouted],
                    "problems": problems,
                    "channels": channels,
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
            f"oldest pending     file {oldest.id} {printable(oldest.name)} "
            f"({oldest.status} since {oldest.received_at:%Y-%m-%d %H:%M:%S})"
        )
    click.echo(f"quarantined        {len(quarantined)}")
    for f in quarantined:
        click.echo(f"  file {f.id} {printable(f.name)}: {oneline(f.reason or '')}")
    for name, by_status in sorted(backlog.items()):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
        click.echo(f"destination        {name}: {parts}")
    if unrouted:
        click.echo(f"unrouted           {len(unrouted)} document(s) matched no route:")
        for d in unrouted:
            click.echo(f"  document {d.id} (file {d.file_id}): {oneline(d.reason or '')[:200]}")
    for problem in problems:
        click.echo(f"problem            {problem}")
    for partner, state in sorted(channels.items()):
        click.echo(f"channel            {partner}: {channel_line(state)}")


@click.group()
def messages() -> None:
    """Received files and what became of them."""


@messages.command("list")
@click.option("--status", "status_filter", help="Only files in this status.")
@click.option("--partner", help="Only this partner's files.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of files.")
@_read_options
def list_messages(
    status_filter: str | None,
    partner: str | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    config: Path | None,
    store_url: str | None,
) -> None:
    """Files newest first: id, status, partner, name, reason."""
    deployment = _deployment(home, config)
    store = open_store_read_only(deployment, store_url)
    try:
        rows = store.list_files(status=status_filter, partner=partner, limit=limit)
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_file_dict(f) for f in rows], indent=2))
        return
    for f in rows:
        click.echo(
            f"{f.id:>6} {f.status:<12} {f.partner_id or '-':<12} {f.received_at:%Y-%m-%d %H:%M:%S} {f.name}"
            + (f"  ({f.reason})" if f.reason else "")
        )


def _file_dict(f: FileRow) -> dict[str, object]:
    """One file of ``messages list --json``."""
    return {
        "id": f.id,
        "status": f.status,
        "partner": f.partner_id,
        "format": f.format,
        "name": f.name,
        "size": f.size,
        "sha256": f.sha256,
        "received_at": f.received_at.isoformat(),
        "reason": f.reason,
    }


@messages.command("show")
@click.argument("file_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@_read_options
def show_message(file_id: int, as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """One file: lineage (interchanges, groups, sets, documents), errors with locations, events.

    Exit 2 when the ledger has no file FILE_ID (it says so, in words).
    """
    deployment = _deployment(home, config)
    store = open_store_read_only(deployment, store_url)
    try:
        tree = store.file_tree(file_id)
        events = store.events_for_file(file_id)
        sent = store.list_outbound(file_id=file_id, limit=100)
        delivered = store.list_deliveries(file_id=file_id, limit=1000)
    except NotFoundError as exc:
        click.echo(f"no file {file_id} in the ledger at {store.url} (see `gateway messages list`)", err=True)
        raise SystemExit(2) from exc
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "tree": _plain(tree),
                    "events": [_plain(e) for e in events],
                    "outbound": [_plain(o) for o in sent],
                    "deliveries": [_plain(d) for d in delivered],
                },
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
    for dv in sorted(delivered, key=lambda d: d.id):
        what = (
            f"document {dv.document_id}" if dv.document_id is not None else f"{dv.doc_type} (outbound {dv.outbound_id})"
        )
        error = f": {oneline(dv.last_error)[:160]}" if dv.last_error and dv.status != "delivered" else ""
        click.echo(
            f"  delivery {dv.id} {what} -> {dv.destination} {dv.status} after {dv.attempts} attempt(s)"
            f" (rule {dv.rule or '-'}){error}"
        )
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
