"""``gateway run``, ``gateway status`` and ``gateway messages``: the runtime from the command line."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.maps_cli import open_workspace
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
from gateway.settings import Deployment, load_settings
from gateway.store.errors import StoreUnavailableError
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
    0 every file taken and processed; 1 a file failed or was quarantined; 3 a file could not be
    taken from the inbox or moved out of it; 4 the store could not be reached; 5 a recorded file
    could not be processed now (left received for a retry); 2 configuration.
    """
    _configure_logging(verbose, log_format)
    deployment = _deployment(home, config)
    ensure_folders(deployment)
    workspace = open_workspace(deployment.home)
    store = Store(store_url or deployment.store_url)
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
    if once:
        code = exit_code(summary)
        if code:
            click.echo(f"exit {code}: {EXIT_CODES[code]}", err=True)
        raise SystemExit(code)


def _print_summary(s: RunSummary, deployment: Deployment) -> None:
    processed = sum(s.statuses.values())
    click.echo(f"received     {s.received} file(s) into {deployment.path('archive')}")
    click.echo(
        f"processed    {processed} file(s): " + (", ".join(f"{n} {k}" for k, n in sorted(s.statuses.items())) or "none")
    )
    click.echo(f"translated   {s.documents} document(s) to {deployment.path('outbox') / 'canonical'}")
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
@_options
def status(as_json: bool, home: Path | None, config: Path | None, store_url: str | None) -> None:
    """Counts by state, the oldest pending file, and quarantined files."""
    deployment = _deployment(home, config)
    store = _store(deployment, store_url)
    counts = store.counts_by_status()
    oldest = store.oldest_pending()
    quarantined = store.list_files(status="quarantined", limit=20)
    store.close()
    reported = read_problems(deployment.path("run"))
    # A folder the service already reported is named once, by the service's report.
    problems = [m for f, m in folder_problems(deployment) if not any(str(f) in r for r in reported)] + reported
    if as_json:
        click.echo(
            json.dumps(
                {
                    "counts": counts,
                    "oldest_pending": None
                    if oldest is None
                    else {"id": oldest.id, "name": oldest.name, "since": oldest.received_at.isoformat()},
                    "quarantined": [{"id": f.id, "name": f.name, "reason": f.reason} for f in quarantined],
                    "problems": problems,
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
    for problem in problems:
        click.echo(f"problem            {problem}")


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
                    click.echo(f"        {err.get('code')} {err.get('where', '')}: {err.get('message')}")
                for d in st.documents:
                    click.echo(
                        f"        document {d.id} {d.doc_type} {d.business_key or ''} {d.status}"
                        + (f" ({d.reason})" if d.reason else "")
                    )
    for d in tree.documents:
        click.echo(
            f"  document {d.id} {d.doc_type} {d.business_key or ''} {d.status}" + (f" ({d.reason})" if d.reason else "")
        )
    for o in sent:
        click.echo(f"  sent {o.kind} {o.control_number or ''} to {o.partner_id} ({o.status})")
    click.echo("  events:")
    for e in events:
        click.echo(
            f"    {e.at:%Y-%m-%d %H:%M:%S} {e.entity_kind} {e.entity_id} {e.from_status or '-'} -> {e.to_status or '-'}"
            + (f" ({e.reason})" if e.reason else "")
        )


def _plain(obj: object) -> object:
    return asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else obj
