"""``gateway run``: the runtime from the command line (``status`` and ``messages`` have their own modules)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import click

from gateway.cli.ending import Finished
from gateway.cli.heap import streaming_heap
from gateway.cli.logs import FORMATS, configure_logging
from gateway.cli.maps_cli import open_workspace
from gateway.cli.observers import Observers
from gateway.cli.options import STORE_ENV, deployment_options, load_deployment, resolve_store_url
from gateway.errors import GatewayError
from gateway.runtime.delegates import STOP_SECONDS, Delegates, delegate_name, watch_end_of_input
from gateway.runtime.fsutil import oneline, printable
from gateway.runtime.service import (
    EXIT_CODES,
    EXIT_STORE,
    Interrupted,
    RunSummary,
    Service,
    default_worker,
    ensure_folders,
    exit_code,
    exit_now,
)
from gateway.settings import Deployment
from gateway.store.errors import StoreUnavailableError
from gateway.store.store import Store
from gateway.workspace import Workspace

log = logging.getLogger("gateway.run")


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


@click.command()
@click.option("--once", is_flag=True, help="Process everything pending, print a summary and exit (cron/batch).")
@click.option("--worker", help="This process's name in leases (default host:pid).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    envvar="GATEWAY_LOG_FORMAT",
    help="Log lines as text or as JSON objects, one a line (stderr); env GATEWAY_LOG_FORMAT.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    envvar="GATEWAY_METRICS_PORT",
    help="Serve Prometheus /metrics and /healthz on this port (0: any free port, logged).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    envvar="GATEWAY_METRICS_HOST",
    help="The address /metrics and /healthz listen on (0.0.0.0: every interface).",
)
@click.option("--deliveries-only", is_flag=True, hidden=True, help="A delivery process (processing.delivery_workers).")
@_options
def run(
    once: bool,
    worker: str | None,
    verbose: int,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    deliveries_only: bool,
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
    configure_logging(verbose, log_format)
    deployment = _deployment(home, config)
    _check_routing(deployment, config)
    ensure_folders(deployment)
    url = resolve_store_url(deployment, store_url)
    worker = worker or deployment.settings.processing.worker or default_worker()
    # The delivery processes start first: their start-up (a second each) runs on another core beside the
    # service's own (its workspace, its components, the schema check) instead of after it.
    started = datetime.now(UTC)  # the daemon's summary counts what it and its delivery processes deliver from now
    delegates = None if deliveries_only else _delegates(deployment, worker, url, once, verbose, log_format, config)
    try:
        workspace = open_workspace(deployment.home, partial=True, deployment=deployment)
        deployment = _hold_broken(deployment, workspace)
        store = Store(url)
        service = Service(deployment, workspace, store, worker=worker, delegated=False if deliveries_only else None)
    except BaseException as exc:
        if delegates is not None:
            delegates.abandon()
        if isinstance(exc, GatewayError):  # a destination that cannot be built (its tables not at the code's
            click.echo(f"Error: {exc}", err=True)  # revision, say): refused, said, exit 2 (configuration);
            raise SystemExit(EXIT_STORE if isinstance(exc, StoreUnavailableError) else 2) from exc  # the store: 4
        raise
    service.started_at = started
    if delegates is not None:
        service.attach_delegates(delegates)
    service.install_signal_handlers()
    service.start_watchdog()  # the schema check below may meet a store that hangs
    try:
        _check_schema(service, store, once)
        if deliveries_only:  # its state file: `gateway status` lists it, with the destinations it paused
            _deliveries_only(service, store, once, Observers.start(service, deployment, url, "", None, state=not once))
            return
        observers = Observers.start(service, deployment, url, metrics_host, metrics_port, state=not once)
        try:
            with streaming_heap():  # start-up's objects (definitions, maps, schemas) out of the GC's walks
                summary = _loop(service, service.run_once if once else service.run_forever)
        finally:
            observers.stop()
    finally:
        if service.delegates is not None and service.summary.interrupted:
            service.delegates.abandon()  # stopped while the store hung: the process ends at once (docs/store.md)
        elif service.delegates is not None:
            service.delegates.finish(limit=STOP_SECONDS)  # (done already unless the loop raised)
        service.stop_watchdog()
        writes = store.database.write_summary()
        if writes is not None:  # with -v: where the ledger's write lock went (docs/performance.md)
            log.info("%s%s", "delivery process: " if deliveries_only else "", writes)
        store.close()
    _print_summary(summary, deployment)
    _print_broken(workspace, deployment)
    code = 0
    if once:
        code = exit_code(summary)
        if code == 0 and workspace.broken:
            code = 2  # a partner's files wait for its configuration to be fixed: cron must hear of it
            click.echo("exit 2: a partner is not loaded (configuration): its files wait in its inbox folder", err=True)
        elif code:
            click.echo(f"exit {code}: {EXIT_CODES[code]}", err=True)
    if summary.interrupted:
        exit_now(code)
    if once:  # every thread joined, the store closed: the process may end without teardown
        raise Finished(code)


def _check_schema(service: Service, store: Store, once: bool) -> None:
    """The store at the code's revision (migrated when it is behind); else exit 4 (unreachable), 2 (another
    error), or as interrupted (SIGTERM while it hung)."""
    try:
        try:
            store.upgrade()
        except GatewayError:
            service.raise_if_interrupted()  # a hung call's clean-up failed in place of the interruption
            raise
    except StoreUnavailableError as exc:
        click.echo(f"store {store.url}: {exc}", err=True)
        raise SystemExit(EXIT_STORE) from exc
    except GatewayError as exc:
        click.echo(f"store {store.url}: {exc}", err=True)
        raise SystemExit(2) from exc
    except Interrupted as exc:
        click.echo(f"store {store.url}: {exc}", err=True)
        raise SystemExit(EXIT_STORE if once else 0) from exc


def _delegates(
    deployment: Deployment,
    worker: str,
    url: str,
    once: bool,
    verbose: int,
    log_format: str,
    config: Path | None,
) -> Delegates | None:
    """The service's delivery processes (``processing.delivery_workers``), started; None without them."""
    count = deployment.settings.processing.delivery_workers
    if not count:
        return None
    command = partial(_delegate_command, worker, once=once, verbose=verbose, log_format=log_format)
    # The store's URL in their environment, not on their command line, where `ps` shows its password.
    env = {**os.environ, STORE_ENV[0]: url}
    delegates = Delegates([command(n, home=deployment.home, config=config) for n in range(1, count + 1)], env=env)
    delegates.start()
    return delegates


def _delegate_command(
    worker: str,
    n: int,
    *,
    once: bool,
    verbose: int,
    log_format: str,
    home: Path,
    config: Path | None,
) -> list[str]:
    """``gateway run --deliveries-only`` for delivery process ``n``, with this service's deployment and
    logging (the same interpreter and package: ``python -m gateway.cli.main``); its store comes in its
    environment (``$GATEWAY_STORE``)."""
    command = [sys.executable, "-m", "gateway.cli.main", "run", "--deliveries-only"]
    command += ["--worker", delegate_name(worker, n)]
    command += ["--once"] if once else []
    command += ["-v"] * verbose + ["--log-format", log_format, "--home", str(home)]
    return command + (["--config", str(config)] if config is not None else [])


def _deliveries_only(service: Service, store: Store, once: bool, observers: Observers) -> None:
    """A delivery process: its loop until the service closes its input (see gateway.runtime.delegates);
    no summary (the service prints one). Exit 4 when the store could not be reached at its end."""
    ended, woken = threading.Event(), threading.Event()
    watch_end_of_input(lambda size: os.read(0, size), ended, woken)  # its standard input: the service's pipe
    try:
        summary = _loop(service, lambda: service.run_deliveries(once=once, ended=ended, woken=woken))
    finally:
        observers.stop()
        service.stop_watchdog()
        store.close()
    code = EXIT_STORE if summary.store_error is not None else 0
    if summary.interrupted:
        exit_now(code)
    raise Finished(code) if once else SystemExit(code)


def _loop(service: Service, loop: Callable[[], RunSummary]) -> RunSummary:
    """``loop()``'s summary; interrupted (SIGTERM while the store hung) as it ended, before it could catch it,
    the summary so far, marked interrupted."""
    try:
        return loop()
    except Interrupted as exc:
        click.echo(str(exc), err=True)
        service.summary.interrupted = True
        return service.summary


def _check_routing(deployment: Deployment, config: Path | None) -> None:
    """Phase one of destinations and routes (as `gateway config lint`), before anything is built or
    connected: every problem printed, exit 2."""
    from gateway.cli.config_cli import default_registry, lint_config, sorted_problems

    checked = lint_config(deployment.home, default_registry(), config)
    # The dashboard's cookie key is `gateway web`'s alone (it refuses to start without it): the service
    # that processes files need not hold it, so its absence is not a reason to stop processing.
    checked.problems.items[:] = [p for p in checked.problems.items if p.path != "web.secret"]
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


def _print_deliveries(s: RunSummary) -> None:
    """The summary's delivery lines: this run's; the daemon's stop adds what waits in the ledger now."""
    d = s.deliveries
    line = f"delivered    {d.delivered} delivery(ies)"
    if d.by_destination:
        line += " (" + ", ".join(f"{n} to {k}" for k, n in sorted(d.by_destination.items())) + ")"
    click.echo(
        line
        + (f"; {d.retrying} waiting for a retry" if d.retrying else "")
        + (f"; {d.dead} dead letter(s)" if d.dead else "")
    )
    if s.ledger_waiting is not None and any(s.ledger_waiting):  # the daemon: what waits in the ledger now
        pending, dead = s.ledger_waiting
        click.echo(f"  in the ledger now: {pending} waiting for a retry, {dead} dead letter(s)")
    if d.retrying or d.dead or (s.ledger_waiting is not None and any(s.ledger_waiting)):
        click.echo("  see `gateway deliveries list --status pending` / `gateway deadletters list`")


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
    _print_deliveries(s)
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
