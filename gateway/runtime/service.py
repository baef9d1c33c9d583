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
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from gateway.channels.inbox import Candidate, Inbox
from gateway.errors import GatewayError
from gateway.runtime.intake import Intake
from gateway.runtime.process import FileOutcome, Processor, transient
from gateway.settings import Deployment
from gateway.store import Archive
from gateway.store.errors import LeaseError
from gateway.store.store import Store
from gateway.workspace import Workspace

log = logging.getLogger("gateway.run")


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

    def add(self, outcome: FileOutcome) -> None:
        """Count one processed file."""
        self.statuses[outcome.status] += 1
        self.documents += outcome.documents
        self.acknowledgments += outcome.acknowledgments
        self.failed_sets += outcome.failed
        self.duplicates += outcome.duplicates
        self.acks.extend(outcome.acks)


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
    ) -> None:
        cfg = deployment.settings
        self.deployment = deployment
        self.store = store
        self.worker = worker or cfg.processing.worker or default_worker()
        self.clock = clock
        self.archive = Archive(deployment.path("archive"))
        self.inbox = Inbox(
            deployment.path("inbox"),
            stable_seconds=cfg.intake.stable_seconds,
            rescan_seconds=cfg.intake.rescan_seconds,
            ignore=cfg.intake.ignore,
        )
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
        )
        self.stopping = threading.Event()
        self.summary = RunSummary()
        self.backoff = False  # the last batch failed only for reasons that may pass: wait before the next

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask the loop to stop after the file in hand."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current file", signum)
            self.stopping.set()
            self.inbox._wake.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # --- steps ------------------------------------------------------------------------------

    def take_ready(self) -> int:
        """Take every ready inbox file, a batch at a time; returns how many were taken."""
        size = self.deployment.settings.processing.batch
        taken = 0
        batch: list[Candidate] = []
        for cand in self.inbox.ready():
            if self.stopping.is_set():
                self.inbox.release(cand.path)
                continue
            batch.append(cand)
            if len(batch) >= size:
                taken += self._take(batch)
                batch = []
        if batch:
            taken += self._take(batch)
        return taken

    def _take(self, batch: list[Candidate]) -> int:
        try:
            results = self.intake.take_many(batch, self.clock().date())
        except (OSError, GatewayError) as exc:
            log.error("intake of %d file(s) failed, will retry: %s", len(batch), exc)
            for cand in batch:
                self.inbox.release(cand.path)
            return 0
        taken = 0
        for cand, result in zip(batch, results, strict=True):
            self.inbox.done(cand.path)  # forgotten: a file not taken ("failed", logged) is found again by the rescan
            if result.outcome == "received":
                self.summary.received += 1
                taken += 1
            elif result.outcome == "quarantined":
                self.summary.received += 1
                self.summary.quarantined.append(f"{cand.path.name}: {result.reason}")
                taken += 1
        return taken

    def process_claimed(self) -> int:
        """Claim a batch and process it; returns how many files were processed."""
        cfg = self.deployment.settings.processing
        rows = self.store.claim_files(self.worker, cfg.batch, cfg.lease_seconds, max_attempts=cfg.max_attempts)
        if not rows:
            return 0
        # The claim's lease ran while the files waited: renewed now, so none is taken over from a live worker.
        live = set(self.store.renew_leases([r.id for r in rows], self.worker, cfg.lease_seconds))
        rows = [r for r in rows if r.id in live]
        results = self.processor.process_batch(rows, stopping=self.stopping.is_set)
        done = released = 0
        for row, result in zip(rows, results, strict=False):
            if isinstance(result, FileOutcome):
                self.summary.add(result)
                done += 1
            elif isinstance(result, LeaseError):
                log.warning("file %s: lease lost, another worker has it: %s", row.id, result)
            elif transient(result):
                # The store or the disk failed under us: give the file back for a retry.
                why = str(result) if isinstance(result, GatewayError) else f"{type(result).__name__}: {result}"
                log.error("file %s: %s; released for retry", row.id, why)
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
        return done

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

    # --- loops ------------------------------------------------------------------------------

    def run_once(self) -> RunSummary:
        """Process everything pending now (files in the inbox and recorded ones), then return."""
        self.inbox.root.mkdir(parents=True, exist_ok=True)
        self.intake.recover_claims()
        self.processor.sweep()
        self.inbox.scan()
        deadline_idle = 0
        while not self.stopping.is_set():
            taken = self.take_ready()
            done = self.process_claimed()
            if taken or done:
                deadline_idle = 0
                continue
            if not self.inbox.pending:
                deadline_idle += 1
                if deadline_idle >= 2:
                    break
            time.sleep(min(0.05, self.deployment.settings.intake.stable_seconds or 0.01))
        return self.summary

    def run_forever(self) -> RunSummary:
        """Watch the inbox and process until stopped."""
        self.inbox.root.mkdir(parents=True, exist_ok=True)
        self.intake.recover_claims()
        self.processor.sweep()
        self.inbox.start()
        log.info("worker %s watching %s (store %s)", self.worker, self.inbox.root, self.store.url)
        poll = self.deployment.settings.processing.poll_seconds
        recovered_at = time.monotonic()
        try:
            while not self.stopping.is_set():
                try:
                    if time.monotonic() - recovered_at >= self.deployment.settings.intake.rescan_seconds:
                        # Claims left by a taker that died while this one runs (another process on this inbox).
                        self.intake.recover_claims()
                        recovered_at = time.monotonic()
                    taken = self.take_ready()
                    done = self.process_claimed()
                except GatewayError as exc:
                    log.error("store unavailable (%s); retrying in 5 s", exc)
                    self.stopping.wait(5)
                    continue
                except OSError as exc:  # a partner folder removed mid-scan, a full disk: the daemon goes on
                    log.error("file system error (%s); retrying in 5 s", exc)
                    self.stopping.wait(5)
                    continue
                if self.backoff:
                    self.stopping.wait(5)  # a full disk or a restarting database: do not spin on it
                elif not (taken or done):
                    self.inbox.wait(min(poll, self.inbox.next_due() or poll))
        finally:
            self.inbox.stop()
        return self.summary


def ensure_folders(deployment: Deployment) -> None:
    """Create the deployment's folders (first run on a fresh clone)."""
    for name in ("inbox", "outbox", "archive", "quarantine", "processed"):
        deployment.path(name).mkdir(parents=True, exist_ok=True)
    url = deployment.store_url
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
