"""``gateway run``: the service loop (the composition root of the runtime).

One loop per process: take ready inbox files (archive, record, let go),
claim recorded files from the store under a lease, process them, repeat.
Several processes may run against one PostgreSQL store: claims use row
leases (``FOR UPDATE SKIP LOCKED``), so no file is processed twice, and a
dead worker's files are taken over when its lease expires. SIGTERM/SIGINT
stop the loop after the file in hand; claimed files not yet started are
released for others. Each file's lease is renewed when its processing
starts and while it runs, so files waiting in a claimed batch, or one
long file, are not taken over from a live worker.

The service says what it does with each file as it goes, one line per file
on the ``gateway.files`` logger (taken, quarantined, processed, failed, not
taken). A watchdog thread logs a store call that has had no answer for
``processing.store_stall_seconds`` and cuts it after
``processing.store_timeout_seconds`` (the store is then unavailable: the
loop backs off and retries). SIGTERM while the store hangs stops the loop at
once (:class:`Interrupted`), which is as safe as a crash: every step is
redone or recognised by the next run.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from gateway.channels.inbox import Candidate, Inbox, InboxConfig
from gateway.components import (
    BuildContext,
    build_destinations,
    configured_destinations,
    default_registry,
    make_outbound_router,
    make_router,
    profile_routes,
)
from gateway.delivery.registry import Registry
from gateway.errors import GatewayError
from gateway.planning import Router
from gateway.runtime.acks import AckCheck, AckTracker, AlertSink
from gateway.runtime.delegates import STOP_SECONDS, Delegates, delegate_name
from gateway.runtime.deliver import ROUNDS_IN_FLIGHT, Deliverer, DeliveryCounts
from gateway.runtime.fsutil import make_private, oneline, printable
from gateway.runtime.health import IntakeProblems
from gateway.runtime.intake import Intake, Taken
from gateway.runtime.process import FileOutcome, Processor, transient
from gateway.runtime.recon import Reconciler
from gateway.runtime.recon_alerts import ReconOutputs
from gateway.runtime.send import OrderSender
from gateway.runtime.sendfolder import CLAIM_PREFIX as SEND_CLAIM
from gateway.runtime.sendfolder import SendFolder
from gateway.runtime.sftp_pull import make_poller
from gateway.settings import Deployment
from gateway.store import Archive
from gateway.store.errors import LeaseError, StoreError
from gateway.store.files import NextBatch
from gateway.store.rows import FileRow
from gateway.store.store import Store
from gateway.workspace import Workspace

log = logging.getLogger("gateway.run")
files_log = logging.getLogger("gateway.files")
"""One line per file (taken, quarantined, processed, failed, not taken): shown by ``gateway run`` by default."""

ONCE_INTAKE_TRIES = 3
"""``--once``: intake batches failing as a whole (archive unwritable, store down) are tried this often."""
FORGET_SECONDS = 60.0
"""How often the daemon forgets the ids of the deliveries it tried (it counts them from the ledger at its stop)."""
INTERRUPT_AFTER_SECONDS = 2.0
"""SIGTERM interrupts a store call that has been waiting this long (a shorter one is let finish)."""
CUT_AFTER_INTERRUPT_SECONDS = 4.0
"""Interrupted, a loop that has not ended this long after is ended with the process (the last resort)."""


class Interrupted(BaseException):
    """SIGTERM arrived while the store hung: the loop stops where it is (as safe as a crash)."""


@dataclass(slots=True)
class NotTaken:
    """An inbox file the run could not take or let go (still in the inbox)."""

    path: Path
    reason: str
    recorded_as: int | None = None  # its file id when it was recorded but not moved out of the inbox


@dataclass(slots=True)
class RunSummary:
    """What a run did: counts for the operator."""

    received: int = 0
    quarantined: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    acknowledgments: int = 0  # inbound 997/999/TA1 read (not documents, not failures)
    documents: int = 0
    failed_sets: int = 0
    duplicates: int = 0
    acks: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_taken: dict[Path, NotTaken] = field(default_factory=dict)
    not_processed: dict[int, str] = field(default_factory=dict)  # file id -> why it was released for a retry
    store_error: str | None = None
    deliveries: DeliveryCounts = field(default_factory=DeliveryCounts)
    unrouted: int = 0
    orders_sent: list[str] = field(default_factory=list)  # send folder: "file: PO n ISA13 m" per order
    send_refused: list[str] = field(default_factory=list)  # send folder files quarantined, with the problems
    send_left: list[str] = field(default_factory=list)  # send folder files left for a retry (store, disk)
    interrupted: bool = False  # stopped while the store hung: a thread may still wait on it (not joined)
    ledger_waiting: tuple[int, int] | None = None  # the daemon's stop: (pending, dead letters) in the ledger now

    def add(self, outcome: FileOutcome, name: str = "") -> None:
        """Count one processed file."""
        self.not_processed.pop(outcome.file_id, None)
        if outcome.status == "failed":
            self.failed.append(f"file {outcome.file_id} {name}: {outcome.reason or 'failed'}")
        self.statuses[outcome.status] += 1
        self.documents += outcome.documents
        self.acknowledgments += outcome.acknowledgments
        self.failed_sets += outcome.failed
        self.duplicates += outcome.duplicates
        self.acks.extend(outcome.acks)
        self.unrouted += outcome.unrouted


EXIT_OK = 0
EXIT_FILES = 1
EXIT_INTAKE = 3
EXIT_STORE = 4
EXIT_RETRY = 5
EXIT_DELIVERY = 6
EXIT_CODES = {
    EXIT_OK: "every file was taken and processed (some sets may have been rejected and acknowledged so)",
    EXIT_FILES: "a file failed, was quarantined, or had part of it rejected (partial), or a send-folder file was "
    "refused",
    EXIT_INTAKE: "a file could not be taken from the inbox (or the send folder) or moved out of it (it is still there)",
    EXIT_STORE: "the store could not be reached or stopped answering",
    EXIT_RETRY: "a recorded file could not be processed now (disk, outbox): it is left received for a retry",
    EXIT_DELIVERY: "a delivery failed: it waits for a retry (or became a dead letter), or a document matched no route",
}
"""``gateway run --once`` exit codes (2 is a configuration or usage error, as for every command)."""


def exit_code(summary: RunSummary) -> int:
    """The exit code of a ``--once`` run (the most serious condition wins)."""
    if summary.store_error is not None:
        return EXIT_STORE
    if summary.not_taken or summary.send_left:
        return EXIT_INTAKE
    if summary.not_processed:
        return EXIT_RETRY
    if (
        summary.failed
        or summary.quarantined
        or summary.send_refused
        or any(summary.statuses.get(s) for s in ("failed", "quarantined", "partial"))
    ):
        return EXIT_FILES
    if summary.deliveries.retrying or summary.deliveries.dead or summary.deliveries.paused or summary.unrouted:
        return EXIT_DELIVERY
    return EXIT_OK


def exit_now(code: int) -> None:
    """End the process without joining its threads: stopped while the store hung, one of them may wait on
    it for minutes (as safe as a crash: docs/store.md). What was printed and logged is flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or not a file: nothing left to flush
            stream.flush()
    os._exit(code)


def default_worker() -> str:
    """``host:pid``: unique per process, readable in leases and events."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Service:
    """Intake plus processing against one store and archive."""

    def __init__(
        self,
        deployment: Deployment,
        workspace: Workspace,
        store: Store,
        *,
        worker: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        registry: Registry | None = None,
        router: Router | None = None,
        delegated: bool | None = None,
    ) -> None:
        """``delegated``: the deliveries are left to delivery processes (:mod:`gateway.runtime.delegates`);
        None: when ``processing.delivery_workers`` asks for them (a delivery process itself passes False)."""
        cfg = deployment.settings
        self.deployment = deployment
        self.store = store
        self.worker = worker or cfg.processing.worker or default_worker()
        self.clock = clock
        self.archive = Archive(deployment.path("archive"))
        stable_for = {
            p.id: p.inbound.stable_seconds
            for p in workspace.partners.profiles.values()
            if p.inbound is not None and p.inbound.stable_seconds is not None
        }
        components = registry or default_registry()
        channel = InboxConfig(
            folder=str(deployment.path("inbox")),
            stable_seconds=cfg.intake.stable_seconds,
            rescan_seconds=cfg.intake.rescan_seconds,
            ignore=cfg.intake.ignore,
            stable_for=stable_for,
            retry_seconds=cfg.intake.retry_seconds,
        )
        self.inbox: Inbox = components.build("channel", "inbox", channel, BuildContext(deployment.home))
        self.intake = Intake(
            store,
            self.archive,
            workspace.partners,
            inbox=deployment.path("inbox"),
            processed=deployment.path("processed"),
            quarantine=deployment.path("quarantine"),
            after=cfg.intake.after,
            worker=self.worker,
            sync=cfg.processing.sync,
        )
        destinations, policies = build_destinations(
            configured_destinations(deployment),
            components,
            BuildContext(deployment.home, cfg.processing.sync, clock, partners=workspace.partners),
        )
        own_rules = profile_routes(workspace.partners)
        if router is None:
            router = make_router(list(cfg.routes), own_rules)
        outbound_router = make_outbound_router(list(cfg.routes), own_rules)  # our acks and 850s
        # Acknowledgments owed for what we send: checked beside the deliveries (see deliver_due).
        self.acks = AckTracker(
            store, self.archive, workspace.partners, workspace.catalog, rules=cfg.routes, worker=self.worker
        )
        self.stopping = threading.Event()  # SIGTERM/SIGINT: finish what is in hand, take nothing more
        self.deliverer = Deliverer(
            store,
            self.archive,
            destinations,
            worker=self.worker,
            clock=clock,
            policies=policies,
            lease_seconds=cfg.processing.lease_seconds,
            stopping=self.stopping,
        )
        self.processor = Processor(
            store,
            self.archive,
            workspace.translator(max_errors=cfg.processing.max_errors),
            outbox=deployment.path("outbox"),
            worker=self.worker,
            clock=clock,
            isa13_window_days=cfg.duplicates.isa13_window_days,
            lease_seconds=cfg.processing.lease_seconds,
            sync=cfg.processing.sync,
            deliverer=self.deliverer,
            router=router,
            background=True,  # deliveries overlap the next batch (docs/performance.md, "Delivery")
            outbound_router=outbound_router,
            delegated=cfg.processing.delivery_workers > 0 if delegated is None else delegated,
        )
        self.delegates: Delegates | None = None  # the delivery processes (attach_delegates)
        send_channel = InboxConfig(
            folder=str(deployment.path("send")),
            stable_seconds=cfg.intake.stable_seconds,
            rescan_seconds=cfg.intake.rescan_seconds,
            ignore=[f"{SEND_CLAIM}*", *cfg.intake.ignore],  # a claim is never a candidate, whatever `ignore` says
            retry_seconds=cfg.intake.retry_seconds,
        )
        self.send_folder = SendFolder(
            channel=components.build("channel", "inbox", send_channel, BuildContext(deployment.home)),
            sender=OrderSender(workspace, store, self.archive, router=outbound_router),
            archive=self.archive,
            partners=workspace.partners,
            processed=deployment.path("processed"),
            quarantine=deployment.path("quarantine"),
            worker=self.worker,
            deliver=lambda ids: self.processor.delivery_counts.add(self.deliverer.deliver_owed(ids)),
        )
        self.reconciler = Reconciler(
            store,
            cfg.reconciliation,
            workspace.partners.get,
            actor=self.worker,
            clock=clock,
            xrefs=lambda partner: workspace.xrefs.get(partner, {}),
        )
        sink = AlertSink(store, self.archive, workspace.partners, list(cfg.routes), self.worker)
        self.recon_outputs = ReconOutputs.attach(self.reconciler, sink)  # alerts, billing (docs/reconciliation.md)
        self._sent_at = 0.0
        self._sla_asked = -math.inf  # when (the clock's epoch seconds) this worker last asked for the timer's turn
        self.sftp = make_poller(
            workspace.partners,
            store,
            self.archive,
            home=deployment.home,
            run_folder=deployment.path("run"),
            sync=cfg.processing.sync,
        )  # partners with `inbound: {channel: sftp}` (docs/sftp.md); None when there is none
        self.summary = RunSummary()
        self.backoff = False  # the last batch failed only for reasons that may pass: wait before the next
        self.intake_failing = False  # the last intake batch failed as a whole (archive or store)
        self.intake_error: Exception | None = None
        self.problems = IntakeProblems(deployment.path("run"), self.worker)
        self._main_thread = threading.get_ident()
        self.interruption: Interrupted | None = None  # raised by the signal handler (see raise_if_interrupted)
        self.interrupted_at = 0.0
        self.interruptible = True  # the signal handler may raise Interrupted (not once a loop is ending)
        self.cut_exit_code = 0  # the process's exit code when the last resort ends it (run_once: EXIT_STORE)
        self._watchdog: threading.Thread | None = None
        self._watch_done = threading.Event()
        self.beats: dict[str, float] = {}  # step → wall time of its last success: /healthz, metrics, status
        processing = deployment.settings.processing
        self.claimed = NextBatch(processing.batch, processing.lease_seconds)  # claimed with the last's results
        self._forgot_at = time.monotonic()  # see _forget_tried_now_and_then
        self.started_at = datetime.now(UTC)  # `gateway run` sets it before it starts the delivery processes

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask the loop to stop after the file in hand; while the store hangs, at once."""
        self._main_thread = threading.get_ident()
        # The handler runs in the main thread between two bytecodes, possibly inside Event.wait holding the
        # event's (not reentrant) lock: setting an event there can deadlock the process for good. It only
        # writes a byte to a pipe; a thread sets the events.
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)

        def relay() -> None:
            while os.read(wake_read, 64):
                self.stopping.set()
                self.inbox._wake.set()

        threading.Thread(target=relay, name="signals", daemon=True).start()

        def handler(signum: int, frame: FrameType | None) -> None:
            if not self.stopping.is_set():  # reads a flag, takes no lock
                log.info("signal %s: stopping after the current file", signum)
            with contextlib.suppress(BlockingIOError):  # a full pipe: a wake-up is pending already
                os.write(wake_write, b"\0")
            if not self.interruptible:
                return  # the loop has ended: what is left (closing, the summary) does not wait on the store
            stalled = self.store.database.stalled()
            if self.interruption is not None and stalled is not None:
                raise self.interruption  # once interrupted, every later store call is too, at once
            if stalled is not None and stalled[1] >= INTERRUPT_AFTER_SECONDS:
                # Kept before raising: the hung call's clean-up may raise an error of its own in its place.
                self.interruption = Interrupted(f"stopped while the store hung ({stalled[0]}, {stalled[1]:.0f} s)")
                self.interrupted_at = time.monotonic()
                self.summary.interrupted = True
                raise self.interruption

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        _dump_stacks_on_sigusr1()

    # --- the store watchdog -----------------------------------------------------------------

    def start_watchdog(self) -> None:
        """Watch the store from a thread: log a stall, cut a call past its timeout, interrupt on SIGTERM.
        Started by the loops (and before them by ``gateway run``, for the start-up's schema check)."""
        if self._watchdog is not None:
            return
        self._watch_done.clear()
        self._watchdog = threading.Thread(target=self._watch, name="store-watchdog", daemon=True)
        self._watchdog.start()

    def stop_watchdog(self) -> None:
        """Stop the watchdog thread."""
        self._watch_done.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)
            self._watchdog = None

    def _watch(self) -> None:
        cfg = self.deployment.settings.processing
        db = self.store.database
        reported: float | None = None  # the stall already logged (its start)
        aborted: float | None = None
        nudged = -math.inf
        while not self._watch_done.wait(0.25):
            if self.interruption is not None and time.monotonic() - self.interrupted_at >= CUT_AFTER_INTERRUPT_SECONDS:
                self._cut_process()
            stalled = db.busy_since()
            if stalled is None:
                if reported is not None:
                    log.warning("store %s answers again", self.store.url)
                reported = aborted = None
                continue
            what, began = stalled  # a stall is known by its start: logged, cut and interrupted once
            seconds = time.monotonic() - began
            if seconds >= cfg.store_stall_seconds and reported != began:
                reported = began
                log.error("store stalled: %s has had no answer for %.0f s (store %s)", what, seconds, self.store.url)
            if seconds >= cfg.store_timeout_seconds and aborted != began:
                aborted = began
                cut = db.abort()
                log.error("store call %s cut after %.0f s (%d connection(s)); will retry", what, seconds, cut)
            due = self.interruption is not None or seconds >= INTERRUPT_AFTER_SECONDS
            if self.stopping.is_set() and self.interruptible and due and time.monotonic() - nudged >= 0.5:
                nudged = time.monotonic()  # the handler raises in the main thread, inside the hung call
                signal.pthread_kill(self._main_thread, signal.SIGTERM)

    def _cut_process(self) -> None:
        """The last resort: interrupted while the store hung, the loop has still not ended (a call's
        clean-up waiting on the dead socket): end the process here, as a crash would (docs/store.md)."""
        log.error(
            "stopped while the store hung: the loop did not end within %.0f s; the process ends now",
            CUT_AFTER_INTERRUPT_SECONDS,
        )
        exit_now(self.cut_exit_code)

    # --- steps ------------------------------------------------------------------------------

    def send_orders(self, every: float = 0.0) -> int:
        """Take the send folder's ready files (at most every ``every`` seconds); returns how many were
        taken. A file left for a retry (store or disk) is named in the summary until a later poll sends it."""
        now = time.monotonic()
        if now - self._sent_at < every:
            return 0
        self._sent_at = now
        taken = 0
        for result in self.send_folder.poll():
            where = f"{result.partner or '?'}/{result.path.name}"
            if result.outcome == "sent":
                taken += 1
                self.reconcile_recorded()
                self.summary.send_left = [x for x in self.summary.send_left if not x.startswith(f"{where}:")]
                self.summary.orders_sent.extend(
                    f"{where}: PO {o.po_number}, ISA13 {o.control_number}"
                    + (" (recorded before a restart, not numbered again)" if o.earlier else "")
                    + (f"; unrouted, sent nowhere: {o.unrouted}" if o.unrouted else "")
                    for o in result.orders
                )
                self.summary.unrouted += sum(1 for o in result.orders if o.unrouted)  # exit 6, as for documents
            elif result.outcome == "refused":
                taken += 1
                self.summary.send_refused.append(f"{where}: " + "; ".join(result.problems))
            elif result.problems and result.problems[0] != "taken by another worker":
                self.summary.send_left.append(f"{where}: {result.problems[0]}")
        return taken

    def take_ready(self, limit: int | None = None) -> int:
        """Take every ready inbox file (at most ``limit``), a batch at a time; returns how many were taken."""
        size = self.deployment.settings.processing.batch
        self.intake_failing = False
        taken = 0
        batch: list[Candidate] = []
        for cand in self.inbox.ready(limit):
            if self.stopping.is_set():
                self.inbox.release(cand.path)
                continue
            batch.append(cand)
            if len(batch) >= size:
                taken += self._take(batch)
                batch = []
                self._keep_claimed()  # a big inbox: the batch claimed with the last results waits
        if batch:
            taken += self._take(batch)
        return taken

    def _intake_limit(self) -> int:
        """How many inbox files the loop takes in before it processes a batch: one batch, or two for a service
        whose delivery processes deliver when none is claimed yet, so that it stays a batch ahead and the
        batch processed claims the next one with its results."""
        size = self.deployment.settings.processing.batch
        return 2 * size if self.processor.delegated and not self.claimed.rows else size

    def _take(self, batch: list[Candidate]) -> int:
        try:
            results = self.intake.take_many(batch, self.clock().date())
        except (OSError, GatewayError) as exc:
            log.error("intake of %d file(s) failed, will retry in 5 s: %s", len(batch), oneline(str(exc)))
            for cand in batch:
                self.inbox.release(cand.path)
                self.summary.not_taken[cand.path] = NotTaken(cand.path, str(exc))
            self.intake_failing = True  # the loop waits before the next try: no hot loop on a broken archive
            self.intake_error = exc
            return 0
        finally:
            self.processor.wake_delegates()  # after this ledger write, as after a claim (process_claimed)
        taken = 0
        for cand, result in zip(batch, results, strict=True):
            shown = self._shown(cand.path)
            if result.outcome in ("received", "quarantined"):
                self.inbox.done(cand.path)
                self.summary.not_taken.pop(cand.path, None)
                self.summary.received += 1
                taken += 1
                assert result.row is not None
                row = result.row
                self.problems.clear(self._destination(row.status))
                self.problems.clear(f"file {shown}")
                if result.outcome == "quarantined":
                    self.summary.quarantined.append(f"{printable(cand.path.name)}: {result.reason}")
                    files_log.warning(
                        "quarantined %s as file %s: %s",
                        shown,
                        row.id,
                        result.reason,
                        extra=_fields(row.id, shown, "quarantined", result.reason),
                    )
                else:
                    files_log.info(
                        "received %s as file %s (%s%s)",
                        shown,
                        row.id,
                        row.format,
                        f", {row.partner_id}" if row.partner_id else "",
                        extra=_fields(
                            row.id, shown, "received", None, partner=row.partner_id, correlation_id=row.correlation_id
                        ),
                    )
            elif result.outcome == "changed":
                self.inbox.release(cand.path)  # still being written: looked at again once it is stable
                files_log.info(
                    "not taking %s yet: %s", shown, result.reason, extra=_fields(None, shown, "changed", result.reason)
                )
            elif result.outcome in ("failed", "stuck"):
                self._not_taken(cand.path, result)
            else:  # skipped: another worker has it
                self.inbox.done(cand.path)
        return taken

    def _not_taken(self, path: Path, result: Taken) -> None:
        reason = oneline(result.reason or result.outcome)
        file_id = result.row.id if result.row is not None else None
        self.summary.not_taken[path] = NotTaken(path, reason, file_id)
        if not self.inbox.hold(path, reason):
            return  # reported already
        shown = self._shown(path)
        now = self.clock()
        if result.outcome == "stuck" and result.row is not None:
            where = self._destination(result.row.status)
            message = (
                f"files recorded but left in the inbox: cannot move them to the {where} folder "
                f"({self.deployment.path(where) if where != 'inbox' else 'delete'}): {reason}"
            )
            self.problems.report(where, message, now)
        else:
            self.problems.report(f"file {shown}", f"cannot take {shown}: {reason}", now)
        if result.outcome == "stuck":
            files_log.error(
                "file %s (%s) is recorded but stays in the inbox: %s; it is not taken again until it changes "
                "or %.0f s pass (see `gateway status`)",
                file_id,
                shown,
                reason,
                self.inbox.retry_seconds,
                extra=_fields(file_id, shown, "stuck", reason),
            )
        else:
            files_log.error(
                "cannot take %s: %s; left in the inbox, tried again when it changes or in %.0f s",
                shown,
                reason,
                self.inbox.retry_seconds,
                extra=_fields(None, shown, "not_taken", reason),
            )

    def _destination(self, status: str) -> str:
        """Where a taken file goes: the quarantine or processed folder (``inbox``: deleted in place)."""
        if status == "quarantined":
            return "quarantine"
        return "processed" if self.deployment.settings.intake.after == "move" else "inbox"

    def _shown(self, path: Path) -> str:
        try:
            rel = path.relative_to(self.inbox.root).as_posix()
        except ValueError:
            rel = str(path)
        return printable("inbox/" + rel)

    def process_claimed(self) -> int:
        """Claim a batch and process it; returns how many files were processed. Delegating, the next batch
        is claimed in this one's results transaction (``self.claimed``), and processed by the next call."""
        cfg = self.deployment.settings.processing
        held = self.claimed
        rows: list[FileRow] = []
        try:
            if not held.rows:
                rows = self.store.claim_files(self.worker, cfg.batch, cfg.lease_seconds, max_attempts=cfg.max_attempts)
        finally:
            # The last batch's deliveries, told now: after this claim (or the one made with the last
            # results) rather than before it, so the delivery processes' claim of them does not hold
            # SQLite's write lock while this one waits.
            self.processor.wake_delegates()
        leased_at = None  # a claim made now: its lease runs from now (the processor renews every third of it)
        if held.rows:
            self._keep_claimed()
            rows, leased_at = held.rows, held.leased_at
            self.claimed = NextBatch(cfg.batch, cfg.lease_seconds)
        if not rows:
            return 0
        next_batch = NextBatch(cfg.batch, cfg.lease_seconds, cfg.max_attempts) if self.processor.delegated else None
        try:
            results = self.processor.process_batch(
                rows, stopping=self.stopping.is_set, claim=next_batch, leased_at=leased_at
            )
        finally:
            if next_batch is not None:
                self.claimed = next_batch  # its rows, if its transaction committed, even if a later step failed
                if next_batch.error is not None:
                    log.warning("%s", next_batch.error)
        done = released = 0
        for row, result in zip(rows, results, strict=False):
            if isinstance(result, FileOutcome):
                self.summary.add(result, printable(row.name))
                self._report(row.id, printable(row.name), result, row)
                done += 1
            elif isinstance(result, LeaseError):
                log.warning("file %s: lease lost, another worker has it: %s", row.id, result)
            elif transient(result):
                # The store or the disk failed under us: give the file back for a retry.
                why = str(result) if isinstance(result, GatewayError) else f"{type(result).__name__}: {result}"
                log.error("file %s: %s; released for retry", row.id, why)
                self.summary.not_processed[row.id] = f"file {row.id} {printable(row.name)}: {why}"
                self._release_quietly(row.id, why)
                released += 1
            elif isinstance(result, GatewayError):
                log.error("file %s: %s; failed (retrying cannot help)", row.id, result)
                self._fail(row.id, str(result))
            else:
                trace = "".join(traceback.format_exception(result))
                log.error("file %s: internal error\n%s", row.id, trace)
                self._fail(row.id, f"internal error {type(result).__name__}: {result}")
        for rest in rows[len(results) :]:  # stopping: not started
            self._release_quietly(rest.id, "worker stopping")
        self.backoff = released > 0 and done == 0
        if done and not self.processor.delegated:  # else the delivery processes reconcile (run_deliveries)
            self.reconcile_recorded()
        return done

    def reconcile_recorded(self) -> None:
        """Reconcile the PO chains the documents just recorded (or orders just sent) touched. The documents
        are recorded already: a failure here is logged and retried with the next batch (the index keeps
        its place), never a reason to stop processing."""
        try:
            self.reconciler.catch_up()
            owed = self.recon_outputs.take_owed()
            if owed:  # exception alerts and billing events just recorded
                self.processor.delivery_counts.add(self.deliverer.deliver_owed(owed))
        except GatewayError as exc:
            log.error("reconciliation not brought up to date (retried after the next batch): %s", exc)
        except Exception:  # a bug in a check must not stop the service: logged with its traceback
            log.exception("reconciliation failed (retried after the next batch)")

    def check_slas(self) -> int:
        """The SLA timer: every ``processing.sla_check_seconds``, when no other worker on the store took
        the turn, reconcile the chains still waiting for a document, so an 855, 856 or 810 that never
        comes opens its exception (and alert) in time. Errors are logged; the next turn tries again."""
        every = self.deployment.settings.processing.sla_check_seconds
        now = self.clock().timestamp()
        if not every or now - self._sla_asked < every:
            return 0
        self._sla_asked = now
        try:
            if not self.store.take_turn("sla_check", every):
                return 0
            chains = self.reconciler.check_slas()
            owed = self.recon_outputs.take_owed()
            if owed:
                self.processor.delivery_counts.add(self.deliverer.deliver_owed(owed))
            return chains
        except GatewayError as exc:
            log.error("SLA check not done (tried again at the next turn): %s", exc)
        except Exception:  # a bug in a check must not stop the service: logged with its traceback
            log.exception("SLA check failed (tried again at the next turn)")
        return 0

    def _keep_claimed(self) -> None:
        """Renew the leases of the batch claimed with the last results once a third of them has run (the loop
        takes files in before that batch is processed): a lease that ran out would let another worker
        take its files as if this one had died, and count that against them (``max_attempts``)."""
        held = self.claimed
        if not held.rows or held.leased_at is None or time.monotonic() - held.leased_at < held.lease_seconds / 3:
            return
        at = time.monotonic()
        kept = set(self.store.renew_leases([r.id for r in held.rows], self.worker, held.lease_seconds))
        held.rows, held.leased_at = [r for r in held.rows if r.id in kept], at

    def _release_claimed(self) -> None:
        """The loop has ended: the batch claimed with the last one's results, never started, is given back
        in one transaction (else its files would wait for the lease to run out, and their next claim would
        count a death). Not when the store failed: they wait for their leases, as after a crash."""
        rows, self.claimed.rows = self.claimed.rows, []
        if not rows or self.summary.store_error is not None:
            return
        try:
            self.store.unclaim([r.id for r in rows], self.worker, "worker stopping before the batch started")
        except GatewayError as exc:
            log.error("%d claimed file(s) could not be given back (their leases will expire): %s", len(rows), exc)

    def _release_quietly(self, file_id: int, reason: str) -> None:
        try:
            self.store.release(file_id, self.worker, reason[:500])
        except GatewayError as exc:
            log.error("file %s could not be released (its lease will expire): %s", file_id, exc)

    def _fail(self, file_id: int, reason: str) -> None:
        try:
            self.store.set_file_status(file_id, "failed", reason[:1000], self.worker)
        except GatewayError as exc:
            log.error("file %s could not be marked failed (its lease will expire): %s", file_id, exc)
        self.summary.statuses["failed"] += 1
        self.summary.failed.append(f"file {file_id}: {reason[:200]}")
        files_log.error(
            "file %s failed: %s", file_id, reason[:500], extra=_fields(file_id, None, "failed", reason[:500])
        )

    @staticmethod
    def _report(file_id: int, name: str, outcome: FileOutcome, row: FileRow | None = None) -> None:
        details = f"{outcome.documents} document(s)"
        if outcome.failed:
            details += f", {outcome.failed} failed set(s)"
        if outcome.duplicates:
            details += f", {outcome.duplicates} duplicate(s)"
        if outcome.acks:
            details += f", acks {' '.join(outcome.acks)}"
        level = logging.ERROR if outcome.status in ("failed", "quarantined") else logging.INFO
        files_log.log(
            level,
            "file %s %s: %s (%s)%s",
            file_id,
            name,
            outcome.status,
            details,
            f": {outcome.reason}" if outcome.reason else "",
            extra=_fields(
                file_id,
                name,
                outcome.status,
                outcome.reason,
                documents=outcome.documents,
                failed_sets=outcome.failed,
                acks=outcome.acks,
                partner=row.partner_id if row else None,
                correlation_id=row.correlation_id if row else None,
            ),
        )

    # --- loops ------------------------------------------------------------------------------

    def run_once(self) -> RunSummary:
        """Process everything pending now (files in the inbox and recorded ones), then return. Files that
        could not be taken are held, not retried in this run (``summary.not_taken``); a store that cannot be
        reached ends the run (``summary.store_error``)."""
        self.inbox.root.mkdir(parents=True, exist_ok=True)
        self.interruptible, self.cut_exit_code = True, EXIT_STORE
        self.start_watchdog()
        try:
            self.intake.recover_claims()
            self.processor.sweep()
            self.inbox.scan()
            if self.sftp is not None:
                self.sftp.poll_all()  # every SFTP partner once, concurrently; errors are in `gateway status`
            deadline_idle = failing = 0
            self.send_orders()
            while not self.stopping.is_set():
                # A batch taken in, then one processed, as `gateway run` does: the delivery processes start on
                # the first batch instead of waiting for the whole inbox to be taken in (5-10% end to end on
                # 3,000 files). Intake failing, its last try takes every ready file, so each one left in the
                # inbox is named in the summary.
                last_try = failing >= ONCE_INTAKE_TRIES - 1
                taken = self.take_ready(limit=None if last_try else self._intake_limit())
                done = self.process_claimed()
                self.beats.update(dict.fromkeys(("loop", "inbox"), time.time()))
                if taken or done or self.claimed.rows:
                    deadline_idle = failing = 0
                    continue
                if self.intake_failing:
                    failing += 1
                    if failing >= ONCE_INTAKE_TRIES:
                        if isinstance(self.intake_error, StoreError):
                            self.summary.store_error = str(self.intake_error)  # exit 4, not 3
                        break  # the files stay in the inbox, named in the summary (exit 3)
                    self.stopping.wait(1)
                    continue
                if not self.inbox.pending:
                    deadline_idle += 1
                    if deadline_idle >= 2:
                        break
                time.sleep(min(0.05, self.deployment.settings.intake.stable_seconds or 0.01))
            self.raise_if_interrupted()
            self.processor.drain()  # the last batches' deliveries, still on their thread
            self._last_deliveries()
            self._count_deliveries()
        except GatewayError as exc:
            log.error("%s", self.interruption or f"store unavailable: {exc}")
            self.summary.store_error = str(self.interruption or exc)
        except Interrupted as exc:
            log.error("%s", exc)
            self.summary.store_error = str(exc)
            self.summary.interrupted = True
        finally:
            self.interruptible = False  # what is left does not wait on the store, or is cut as below
            if not self.summary.interrupted:  # else a delivery may hang on the store: it is not waited for
                self._release_claimed()
                self._finish_deliveries(None)  # the watchdog still cuts (and SIGTERM interrupts) a hung call
            self.stop_watchdog()
            if self.sftp is not None:
                self.sftp.close()
        return self.summary

    def deliver_due(self, limit: int | None = None) -> DeliveryCounts:
        """Try every delivery due now (any worker's whose lease is free), or ``limit`` of them; counted into
        the summary."""
        check = self.acks.maybe_check()  # overdue acks, acks matched, alerts routed: at most once a minute
        if check is not None:
            self._route_alerts(check)
        counts = self.deliverer.run_due(limit)
        self.processor.delivery_counts.add(counts)
        return counts

    def _last_deliveries(self) -> None:
        """``run_once``'s last deliveries: retries now due, and deliveries a dead worker left (its delivery
        processes', when it has them: they deliver what is due, then end)."""
        if self.delegates is not None:
            self.delegates.finish(stopping=self.stopping)
            if not self.stopping.is_set() and self.summary.store_error is None:
                # Theirs ran before this run's files were processed: its acks, and the clocks of what
                # they delivered, are checked here, as the last round of a run without them does.
                self._route_alerts(self.acks.check())
        elif not self.stopping.is_set() and self.summary.store_error is None:
            self.deliver_due()

    def _route_alerts(self, check: AckCheck) -> None:
        """Deliver the alerts an acknowledgment check recorded (counted into the summary)."""
        if check.alerts:
            self.processor.delivery_counts.add(self.deliverer.deliver_owed(check.alerts))

    def _count_deliveries(self) -> None:
        """The run's deliveries as they stand at its end (a retry later delivered counts as delivered)."""
        tried = self.processor.delivery_counts
        self.summary.deliveries = tried
        if tried.touched:
            final = self.store.delivery_statuses(sorted(tried.touched))
            tried.retrying = sum(1 for s in final.values() if s == "pending")
            tried.dead = sum(1 for s in final.values() if s == "dead_letter")
            tried.delivered = sum(1 for s in final.values() if s == "delivered")
            if self.processor.delegated:  # delivered by the delivery processes: counted from the ledger
                tried.by_destination = Counter(self.store.delivered_by_destination(sorted(tried.touched)))

    def _count_at_stop(self, since: datetime) -> None:
        """The daemon's summary: what it and its delivery processes delivered since ``since``, from their
        attempts in the ledger, and what waits in the ledger now (a store down then: logged, not counted)."""
        try:
            count = len(self.delegates) if self.delegates is not None else 0
            names = [self.worker, *(delegate_name(self.worker, n) for n in range(1, count + 1))]
            by_destination = self.store.delivered_by(names, since)
            backlog = self.store.delivery_backlog()
        except GatewayError as exc:
            log.error("the deliveries of this run could not be counted for its summary: %s", exc)
            return
        counts = DeliveryCounts(by_destination=Counter(by_destination))
        counts.delivered = sum(by_destination.values())
        self.summary.deliveries = counts
        waiting = sum(b.get("pending", 0) for b in backlog.values())
        self.summary.ledger_waiting = (waiting, sum(b.get("dead_letter", 0) for b in backlog.values()))

    def _forget_tried_now_and_then(self) -> None:
        """The daemon counts its deliveries from the ledger at its stop: the ids of those it tried are not
        kept for its whole life (every :data:`FORGET_SECONDS`)."""
        if time.monotonic() - self._forgot_at >= FORGET_SECONDS:
            self.processor.delivery_counts.touched.clear()
            self._forgot_at = time.monotonic()

    def run_forever(self) -> RunSummary:
        """Watch the inbox and process until stopped."""
        started = self.started_at  # what it delivered from then on is in its summary (the ledger's clock)
        self.inbox.root.mkdir(parents=True, exist_ok=True)
        self.interruptible, self.cut_exit_code = True, 0
        self.start_watchdog()
        try:
            self.intake.recover_claims()
            self.processor.sweep()
        except Interrupted as exc:
            log.error("%s", exc)
            self.summary.interrupted = True
            self.interruptible = False
            self.stop_watchdog()
            return self.summary
        self.inbox.start()
        log.info("worker %s watching %s (store %s)", self.worker, self.inbox.root, self.store.url)
        delivering: threading.Thread | None = None
        if not self.processor.delegated:  # else the delivery processes try what is due
            delivering = threading.Thread(target=self._deliver_forever, name="deliveries", daemon=True)
            delivering.start()
        if self.sftp is not None:
            threading.Thread(target=self.sftp.run, args=(self.stopping,), name="sftp-poller", daemon=True).start()
        poll = self.deployment.settings.processing.poll_seconds
        recovered_at = time.monotonic()
        try:
            while not self.stopping.is_set():
                try:
                    if time.monotonic() - recovered_at >= self.deployment.settings.intake.rescan_seconds:
                        # Claims left by a taker that died while this one runs (another process on this inbox).
                        self.intake.recover_claims()
                        recovered_at = time.monotonic()
                    if self.delegates is not None:
                        self.delegates.check()  # one that died is started again
                    # A batch taken in, then a batch processed: under a steady drop, taking in every ready file
                    # first left processing one batch between two intakes, and the files waited in the ledger.
                    taken = self.take_ready(limit=self._intake_limit())
                    done = self.process_claimed()
                    taken += self.send_orders(every=1.0)
                    self.check_slas()
                    self._forget_tried_now_and_then()
                    self.beats.update(dict.fromkeys(("loop", "inbox", "send"), time.time()))
                except GatewayError as exc:
                    self.raise_if_interrupted()
                    log.error("store unavailable (%s); retrying in 5 s", exc)
                    self.stopping.wait(5)
                    continue
                except OSError as exc:  # a partner folder removed mid-scan, a full disk: the daemon goes on
                    log.error("file system error (%s); retrying in 5 s", exc)
                    self.stopping.wait(5)
                    continue
                if self.backoff or self.intake_failing:
                    self.stopping.wait(5)  # a full disk or a restarting database: do not spin on it
                elif not (taken or done or self.claimed.rows):
                    self.inbox.wait(min(poll, self.inbox.next_due() or poll))
            self.raise_if_interrupted()
        except Interrupted as exc:
            log.error("%s", exc)
            self.summary.interrupted = True
        finally:
            self.interruptible = False  # what is left does not wait on the store, or is cut as below
            self.inbox.stop()
            if self.sftp is not None:
                self.sftp.close()
            if not self.summary.interrupted:  # the store hangs: a delivery round may too; cut it like a crash
                self._release_claimed()
                self._finish_deliveries(delivering)
                if self.delegates is not None and not self.summary.interrupted:  # (interrupted: `gateway run`
                    self.delegates.finish(limit=STOP_SECONDS)  # stops them, waiting for none)
                self._count_at_stop(started)
            self.stop_watchdog()
        return self.summary

    def attach_delegates(self, delegates: Delegates) -> None:
        """The delivery processes this service leaves its deliveries to (started, told of each batch's
        deliveries, finished by its loops)."""
        self.delegates = delegates
        self.processor.on_delegated = delegates.nudge

    def run_deliveries(self, *, once: bool, ended: threading.Event, woken: threading.Event) -> RunSummary:
        """A delivery process's loop (``gateway run --deliveries-only``): what is due, round after round,
        until ``ended`` (the service closed its pipe, or died), then, under ``once``, until a round finds
        nothing due; idle, it waits ``poll_seconds`` or until ``woken`` (the service recorded deliveries).
        SIGTERM stops it after the round in hand (or at once while the store hangs)."""
        self.interruptible, self.cut_exit_code = True, EXIT_STORE if once else 0
        self.start_watchdog()
        # Idle, at most twice a second (an empty claim is a write transaction; the service's nudges wake it).
        poll = max(self.deployment.settings.processing.poll_seconds, 0.5)
        log.info("worker %s delivering (store %s)", self.worker, self.store.url)
        try:
            while not self.stopping.is_set():
                finishing = ended.is_set()  # read before the round: a round after the end sees all there is
                # The PO chains the service's last batches touched, reconciled here rather than by the service
                # after each batch (a tenth of its time per file): errors are logged, the next round retries.
                self.reconcile_recorded()
                try:
                    # A few rounds at a time: under load what is due never runs out, and the loop beats
                    # (`status`) and sees its end of input or SIGTERM between them, not once the backlog is gone.
                    counts = self.deliver_due(limit=self.deliverer.round_size * ROUNDS_IN_FLIGHT)
                    self.beats.update(dict.fromkeys(("loop", "deliveries"), time.time()))
                except GatewayError as exc:
                    self.raise_if_interrupted()
                    self.summary.store_error = str(exc)
                    if finishing:  # its service is gone or done: a failed round is its last one all the same
                        log.error("deliveries: store unavailable (%s)", exc)
                        break
                    log.error("deliveries: store unavailable (%s); retrying in 5 s", exc)
                    self.stopping.wait(5)
                    continue
                except Exception:  # a bug in one round: logged with its trace, the next round tries again
                    log.exception("deliveries: internal error; retrying in 5 s")
                    if finishing:
                        break
                    self.stopping.wait(5)
                    continue
                self.summary.store_error = None
                self._forget_tried_now_and_then()  # a delivery process counts nothing from them (no summary)
                if finishing and (not once or not counts.tried):
                    break
                if not counts.tried:
                    woken.wait(poll)
                    woken.clear()
            self.raise_if_interrupted()
        except Interrupted as exc:
            log.error("%s", exc)
            self.summary.interrupted = True
        finally:
            self.interruptible = False
            if not self.summary.interrupted:
                self._finish_deliveries(None)
            self.stop_watchdog()
        return self.summary

    def _finish_deliveries(self, delivering: threading.Thread | None) -> None:
        """Let the deliveries in flight end (the last batches', the delivery loop's round). The watchdog is
        still up: when one of them hangs on the store, SIGTERM interrupts the wait as it would the loop."""
        try:
            self.interruptible = True
            self.processor.close()
            if delivering is not None:
                delivering.join(timeout=5)
            self.deliverer.close()
        except Interrupted as exc:
            log.error("%s", exc)
            self.summary.interrupted = True
        except GatewayError:
            if self.interruption is None:
                raise
            log.error("%s", self.interruption)  # its store call's clean-up failed in its place
        finally:
            self.interruptible = False

    def raise_if_interrupted(self) -> None:
        """Raise the signal handler's :class:`Interrupted` again when a store call it interrupted let an
        error of its own out instead (the connection's clean-up failing on the hung socket): the loop then
        stops as interrupted and waits for no thread, as it would have."""
        if self.interruption is not None:
            raise self.interruption

    def _deliver_forever(self) -> None:
        """The delivery loop beside processing: retries as they fall due, deliveries dead workers left."""
        poll = max(self.deployment.settings.processing.poll_seconds, 0.5)
        while not self.stopping.is_set():
            try:
                counts = self.deliver_due()
                self.beats["deliveries"] = time.time()
            except GatewayError as exc:
                log.error("deliveries: store unavailable (%s); retrying in 5 s", exc)
                self.stopping.wait(5)
                continue
            except Exception:
                log.exception("deliveries: internal error; retrying in 5 s")
                self.stopping.wait(5)
                continue
            if not counts.tried:
                self.stopping.wait(poll)


def _dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 PID``: every thread's stack to stderr, and the service goes on (a worker that will not
    stop says where it waits; docs/store.md). Needs a real file: when stderr is captured in memory (the
    command run in process, as tests do), the process's own stderr, else nothing."""
    for stream in (s for s in (sys.stderr, sys.__stderr__) if s is not None):
        try:
            stream.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: not backed by a file
            continue
        faulthandler.register(signal.SIGUSR1, file=stream, all_threads=True, chain=False)
        return
    log.debug("no stderr file to write stacks to: SIGUSR1 is left as it was")


PRIVATE_FOLDERS = ("archive", "quarantine", "processed")
"""Folders holding partners' bytes: readable by the gateway's user only (0700)."""


def ensure_folders(deployment: Deployment) -> None:
    """Create the deployment's folders (first run on a fresh clone); those with partners' bytes 0700."""
    for name in ("inbox", "outbox", "send"):
        deployment.path(name).mkdir(parents=True, exist_ok=True)
    for name in PRIVATE_FOLDERS:
        folder = deployment.path(name)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private(folder, 0o700)
    url = deployment.store_url
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def _fields(
    file_id: int | None, name: str | None, status: str, reason: str | None, **more: object
) -> dict[str, object]:
    """Structured fields of a per-file log line (``--log-format json`` prints them)."""
    fields: dict[str, object] = {"file_id": file_id, "file": name, "status": status}
    if reason:
        fields["reason"] = reason
    fields.update({k: v for k, v in more.items() if v not in (None, [], 0)})
    return {"gateway": fields}
