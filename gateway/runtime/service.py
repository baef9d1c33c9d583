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

from gateway.channels.inbox import Inbox
from gateway.errors import GatewayError
from gateway.runtime.intake import Intake
from gateway.runtime.process import FileOutcome, Processor
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
    documents: int = 0
    failed_sets: int = 0
    duplicates: int = 0
    acks: list[str] = field(default_factory=list)

    def add(self, outcome: FileOutcome) -> None:
        """Count one processed file."""
        self.statuses[outcome.status] += 1
        self.documents += outcome.documents
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
        )
        self.stopping = threading.Event()
        self.summary = RunSummary()

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
        """Take every ready inbox file; returns how many were taken."""
        taken = 0
        for cand in self.inbox.ready():
            if self.stopping.is_set():
                self.inbox.release(cand.path)
                continue
            try:
                result = self.intake.take(cand, self.clock().date())
            except (OSError, GatewayError) as exc:
                log.error("intake of %s failed, will retry: %s", cand.path, exc)
                self.inbox.release(cand.path)
                continue
            self.inbox.done(cand.path)
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
        rows = self.store.claim_files(self.worker, cfg.batch, cfg.lease_seconds)
        done = 0
        for i, row in enumerate(rows):
            if self.stopping.is_set():
                for rest in rows[i:]:
                    self.store.release(rest.id, self.worker, "worker stopping")
                break
            try:
                # The batch shared one lease: renew it now, so the files waiting their turn were not taken over.
                self.store.renew_lease(row.id, self.worker, cfg.lease_seconds)
                outcome = self.processor.process(row)
            except LeaseError as exc:
                log.warning("file %s: lease lost, another worker has it: %s", row.id, exc)
                continue
            except GatewayError as exc:
                # The store or archive failed under us: give the file back for a retry.
                log.error("file %s: %s %s; released for retry", row.id, exc.code, exc)
                self._release_quietly(row.id, f"{exc.code} {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - the boundary: a bug must not stop the daemon
                log.error("file %s: internal error\n%s", row.id, traceback.format_exc())
                self._fail(row.id, f"internal error {type(exc).__name__}: {exc}")
                continue
            self.summary.add(outcome)
            done += 1
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
                if not (taken or done):
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
