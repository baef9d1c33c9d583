"""Performing deliveries: lease due ones, hand each to its destination, record what happened.

The processing worker calls :meth:`Deliverer.deliver_owed` right after a batch's results commit, for
the deliveries that commit created (they are leased to it already): a document reaches its
destinations a moment after it is recorded. Everything else (retries that fall due, deliveries whose
worker died, dead letters an operator put back) is picked up by :meth:`Deliverer.run_due`, which the
service calls between batches and ``gateway deliver`` calls on its own.

Per destination, in order: its circuit breaker (:class:`~gateway.delivery.policy.Breaker`; an open
one leaves its deliveries leased to nobody and due, so other destinations go on), then the
destination's ``deliver_batch`` when it has one, else ``deliver`` one by one, the breaker checked
before each (one that opens midway, or a failed probe after a pause, leaves the rest untried). The outcome and the
destination's policy decide the next step: delivered; pending again at the policy's next time
(honouring the receiver's ``Retry-After``); or a dead letter, whose payload is archived as it was last
tried. A destination that raises is a bug or a broken component: the exception is recorded with the
attempt (outcome ``error``) and retried under the policy, never lost and never fatal to the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from gateway.delivery.base import Delivered, Destination, Outcome, Payload, Rejected, RetryLater
from gateway.delivery.policy import DEFAULT, Breaker, Policy, next_attempt
from gateway.runtime.lanes import LeaseKeeper, Threads, wait_all
from gateway.store import Archive
from gateway.store.deliveries import AttemptResult, DeliveryRow, OwedDelivery
from gateway.store.statuses import DeliveryOutcome
from gateway.store.store import Store

__all__ = ["Deliverer", "DeliveryCounts"]

log = logging.getLogger("gateway.deliveries")

EXCERPT = 2000
"""Characters of an error kept with an attempt."""

ROUNDS_IN_FLIGHT = 2
"""Rounds of :meth:`Deliverer.run_due` under way at once (see there)."""


@dataclass(slots=True)
class DeliveryCounts:
    """What a round of deliveries came to."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    paused: int = 0
    lost: int = 0
    by_destination: Counter[str] = field(default_factory=Counter)
    touched: set[int] = field(default_factory=set)  # ids of the deliveries tried

    def add(self, other: DeliveryCounts) -> None:
        """Fold ``other`` into this one."""
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.dead += other.dead
        self.paused += other.paused
        self.lost += other.lost
        self.by_destination.update(other.by_destination)
        self.touched |= other.touched

    @property
    def tried(self) -> int:
        """Deliveries tried in the round."""
        return self.delivered + self.retrying + self.dead


class Deliverer:
    """Tries deliveries for one worker; destinations and policies by name, built by the composition root."""

    def __init__(
        self,
        store: Store,
        archive: Archive,
        destinations: dict[str, Destination],
        *,
        worker: str,
        clock: Callable[[], datetime],
        policies: dict[str, Policy] | None = None,
        lease_seconds: float = 300.0,
        batch: int = 64,
        stopping: threading.Event | None = None,
    ) -> None:
        """``stopping``: once set (the service was told to stop), :meth:`run_due` claims no further round;
        the rounds in flight end and record their attempts."""
        self.store = store
        self.archive = archive
        self.destinations = destinations
        self.policies = policies or {}
        self.worker = worker
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.breakers = {
            name: Breaker(self.policy(name).breaker_failures, self.policy(name).breaker_seconds)
            for name in destinations
        }
        self.threads = Threads()
        self.stopping = stopping or threading.Event()  # (never set: a deliverer of a command, not a service)

    def for_worker(self, worker: str) -> Deliverer:
        """The same destinations and policies, delivering under another worker's name (its leases)."""
        return Deliverer(
            self.store, self.archive, self.destinations, worker=worker, clock=self.clock, policies=self.policies,
            lease_seconds=self.lease_seconds, batch=self.batch, stopping=self.stopping,
        )  # fmt: skip

    @property
    def round_size(self) -> int:
        """Deliveries :meth:`run_due` claims a round: up to ``batch`` of each destination, as
        :meth:`deliver_recorded`'s rounds (a round's two ledger transactions, the claim and the attempts,
        and each destination's call serve them all)."""
        return self.batch * max(1, len(self.destinations))

    def policy(self, destination: str) -> Policy:
        """The destination's policy (the documented default when it declares none)."""
        return self.policies.get(destination, DEFAULT)

    def paused(self) -> list[str]:
        """Destinations whose circuit breaker is open now."""
        now = time.monotonic()
        return [name for name, b in self.breakers.items() if not b.allows(now)]

    # --- rounds ---------------------------------------------------------------------------------

    def deliver_recorded(self, owed: Sequence[OwedDelivery], leased_at: float | None = None) -> DeliveryCounts:
        """The deliveries a results commit just created, leased to this worker in that commit (begun at
        ``leased_at``, ``time.monotonic()``; None: now): tried now from what the worker holds in memory (no
        claim, no read); a paused destination's are let go for the delivery loop."""
        leased_at = time.monotonic() if leased_at is None else leased_at
        paused = set(self.paused())
        counts = DeliveryCounts()
        later = [o.id for o in owed if o.destination in paused and o.id is not None]
        if later:
            self.store.release_deliveries(self.worker, later)
            counts.paused += len(later)
        # Rounds take up to `batch` deliveries of EACH destination, so a processing batch (32 files
        # times N destinations) is one round: one ledger transaction for its attempts and one call per
        # destination, where chunks of `batch` mixed deliveries split every destination's share in two.
        by_destination: dict[str, list[OwedDelivery]] = {}
        for o in owed:
            if o.destination not in paused:
                by_destination.setdefault(o.destination, []).append(o)
        longest = max((len(group) for group in by_destination.values()), default=0)
        for start in range(0, longest, self.batch):
            chunk = [o for group in by_destination.values() for o in group[start : start + self.batch]]
            rows = [o.row(self.worker) for o in chunk]
            sources = {r.id: o.source for r, o in zip(rows, chunk, strict=True) if o.source is not None}
            counts.add(self._round(rows, leased_at, sources))
        return counts

    def deliver_owed(self, ids: Sequence[int]) -> DeliveryCounts:
        """Deliveries this worker took over (a file whose worker died after recording it): try them now."""
        counts = DeliveryCounts()
        for start in range(0, len(ids), self.batch):
            chunk = list(ids[start : start + self.batch])
            leased_at = time.monotonic()
            rows = self.store.claim_deliveries(
                self.worker, len(chunk), self.lease_seconds, ids=chunk, skip_destinations=self.paused()
            )
            counts.add(self._round(rows, leased_at))
        return counts

    def run_due(self, limit: int | None = None) -> DeliveryCounts:
        """Try deliveries that are due now (any worker's, whose lease is free), until none is left or
        ``limit`` were claimed, or the service is stopping (``stopping`` set: no further round is claimed).

        Two rounds in flight: the next is claimed and handed to its destinations while the one before
        still waits for its slowest destination or records its attempts (a round's destinations each
        keep one thread, so a destination still takes one round at a time, in order). Without it every
        round waits for its slowest destination and for two ledger transactions, and the other
        destinations sit idle meanwhile."""
        counts = DeliveryCounts()
        in_flight: deque[Future[DeliveryCounts]] = deque()
        claimed = 0
        try:
            while (limit is None or claimed < limit) and not self.stopping.is_set():
                size = self.round_size if limit is None else min(self.round_size, limit - claimed)
                leased_at = time.monotonic()
                rows = self.store.claim_deliveries(
                    self.worker, size, self.lease_seconds, skip_destinations=self.paused()
                )
                if not rows:
                    break
                claimed += len(rows)
                in_flight.append(self.threads.round(partial(self._round, rows, leased_at)))
                while len(in_flight) >= ROUNDS_IN_FLIGHT:
                    counts.add(in_flight.popleft().result())
        except Exception:
            wait_all(in_flight, errors=False)  # the store failed or a round raised: none is left running
            raise
        # (Interrupted, a BaseException, is not waited for: the rounds in flight record their own attempts.)
        for done in wait_all(in_flight):
            counts.add(done)
        return counts

    def close(self) -> None:
        """Wait for the delivery threads, then close every destination."""
        self.threads.close()
        for destination in self.destinations.values():
            destination.close()

    # --- one round ------------------------------------------------------------------------------

    def _round(
        self, rows: list[DeliveryRow], leased_at: float, sources: dict[int, dict[str, Any]] | None = None
    ) -> DeliveryCounts:
        counts = DeliveryCounts()
        if not rows:
            return counts
        counts.touched.update(r.id for r in rows)
        if sources is None or len(sources) < len(rows):
            sources = {**self.store.delivery_sources(rows), **(sources or {})}
        results: list[AttemptResult] = []
        release: list[int] = []
        by_destination: dict[str, list[DeliveryRow]] = {}
        for row in rows:
            by_destination.setdefault(row.destination, []).append(row)
        # Destinations side by side: a REST destination's round trips overlap the staging batch.
        lease = LeaseKeeper(self.store, self.worker, self.lease_seconds, leased_at, (r.id for r in rows))
        tries = self.threads.side_by_side(
            {name: partial(self._try, name, group, sources, lease) for name, group in by_destination.items()}
        )
        taken = 0
        for tried, untried, lost_here in tries.values():
            release.extend(r.id for r in untried)
            counts.paused += len(untried)
            taken += len(lost_here)
            for row, outcome, started, payload in tried:
                results.append(self._result(row, outcome, started, payload, counts))
        lost = self.store.record_attempts(self.worker, results, {r.id: r for r in rows})
        counts.lost = len(lost) + taken
        self.store.release_deliveries(self.worker, release)
        return counts

    def _try(
        self, name: str, rows: list[DeliveryRow], sources: dict[int, dict[str, Any]], lease: LeaseKeeper
    ) -> tuple[list[_Tried], list[DeliveryRow], list[DeliveryRow]]:
        """Hand the rows to their destination; every row tried gets an outcome (missing parts are
        rejections). Returns those, the rows not tried because the destination's breaker is open, and the
        rows whose lease another worker took meanwhile (see :class:`~gateway.runtime.lanes.LeaseKeeper`).

        The breaker is checked before each send, or each group of ``concurrency`` sends in flight at once
        (REST): one that opens midway (or fails the probe after its pause) costs the other rows nothing more
        than its ``breaker_failures`` (or one) failures. While it counts failures, one send at a time."""

        destination, breaker = self.destinations.get(name), self.breakers.get(name)

        def closed() -> bool:
            return breaker is None or breaker.allows(time.monotonic())

        def count(outcome: Outcome | _Raised) -> None:
            if breaker is not None:
                breaker.record(isinstance(outcome, Delivered | Rejected), time.monotonic())

        if not closed():
            return [], list(rows), []
        started = self.clock()
        out: list[_Tried] = []
        ready: list[tuple[DeliveryRow, Payload]] = []
        for row in rows:
            if destination is None:
                out.append((row, Rejected(f"destination {name!r} is not configured (gateway.yaml destinations)"),
                            started, None))  # fmt: skip
                continue
            payload, why = self._payload(row, sources.get(row.id))
            if payload is None:
                out.append((row, Rejected(why), started, None))
            else:
                ready.append((row, payload))
        if not ready or destination is None:
            return out, [], []
        lost: list[DeliveryRow] = []
        batch_deliver = getattr(destination, "deliver_batch", None)
        if callable(batch_deliver):
            kept, lost = lease.held([r for r, _ in ready])
            ready = _only(ready, kept)
            outcomes = self._guarded(partial(batch_deliver, [p for _, p in ready]), len(ready), name)
            for (row, p), o in zip(ready, outcomes, strict=True):
                out.append((row, o, started, p))
                count(o)
            return out, [], lost
        width = max(1, int(getattr(destination, "concurrency", 1)))
        untried: list[DeliveryRow] = []
        at = 0
        while at < len(ready):
            if not closed():
                untried.extend(r for r, _ in ready[at:])
                break
            failing = breaker is not None and breaker.failing
            group = ready[at : at + (1 if failing else width)]
            at += len(group)
            kept, gone = lease.held([r for r, _ in group])
            lost.extend(gone)
            group = _only(group, kept)
            for tried in self.threads.map(name, width, partial(self._send, destination, name), group):
                out.append(tried)
                count(tried[1])
        return out, untried, lost

    def _send(self, destination: Destination, name: str, item: tuple[DeliveryRow, Payload]) -> _Tried:
        row, payload = item
        one_started = self.clock()
        (outcome,) = self._guarded(partial(_one, destination, payload), 1, name)
        return row, outcome, one_started, payload

    @staticmethod
    def _guarded(call: Callable[[], list[Outcome]], n: int, name: str) -> list[Outcome | _Raised]:
        """Run a destination; if it raises, every payload of the call gets a retry carrying the trace."""
        try:
            outcomes = call()
        except Exception as exc:  # noqa: BLE001 - a broken component must not stop deliveries elsewhere
            trace = "".join(traceback.format_exception(exc))[-EXCERPT:]
            log.error("destination %s raised %s: %s", name, type(exc).__name__, exc)
            return [_Raised(f"{type(exc).__name__}: {exc}", trace) for _ in range(n)]
        if len(outcomes) != n:
            raise RuntimeError(f"destination {name} returned {len(outcomes)} outcomes for {n} payloads")
        return list(outcomes)

    def _payload(self, row: DeliveryRow, source: dict[str, Any] | None) -> tuple[Payload | None, str]:
        if source is None:
            what = f"document {row.document_id}" if row.document_id is not None else f"outbound {row.outbound_id}"
            return None, f"{what} is no longer in the ledger"
        common: dict[str, Any] = {
            "doc_type": row.doc_type,
            "partner_id": row.partner_id,
            "correlation_id": row.correlation_id,
            "idempotency_key": row.idempotency_key,
            "delivery_id": row.id,
            "file_id": row.file_id,
            "attempt": row.attempts + 1,
        }
        if source["kind"] == "document":
            canonical = str(source["canonical"])
            return (
                Payload(
                    kind="document",
                    document_id=row.document_id,
                    position=int(source["position"]),
                    business_key=source["business_key"],
                    document=json.loads(canonical),
                    data=canonical.encode("utf-8"),
                    **common,
                ),
                "",
            )
        data = source.get("data") or self.archive.read(str(source["sha256"]))
        return (
            Payload(kind="outbound", control_number=source["control_number"], data=data, **common),
            "",
        )

    def _result(
        self,
        row: DeliveryRow,
        outcome: Outcome | _Raised,
        started: datetime,
        payload: Payload | None,
        counts: DeliveryCounts,
    ) -> AttemptResult:
        finished = self.clock()
        response = dict(outcome.response)
        if isinstance(outcome, Delivered):
            counts.delivered += 1
            counts.by_destination[row.destination] += 1
            return AttemptResult(row.id, DeliveryOutcome.DELIVERED, started, finished, None, response)
        retry_at = None
        if isinstance(outcome, RetryLater | _Raised):
            first = row.first_attempt_at or started
            wish = outcome.delay if isinstance(outcome, RetryLater) else None
            retry_at = next_attempt(self.policy(row.destination), row.attempts + 1, first, finished, wish)
        kind = (
            DeliveryOutcome.ERROR
            if isinstance(outcome, _Raised)
            else DeliveryOutcome.RETRY
            if isinstance(outcome, RetryLater)
            else DeliveryOutcome.REJECTED
        )
        if isinstance(outcome, _Raised):
            response = {"trace": outcome.trace}
        error = outcome.reason[:EXCERPT]
        sha = None
        if retry_at is None:
            counts.dead += 1
            if payload is not None and payload.data is not None:
                sha = self.archive.put(payload.data)  # a dead letter keeps its payload as last tried
            log.error("delivery %s to %s: dead letter after %s attempt(s): %s", row.id, row.destination,
                      row.attempts + 1, error, extra=_fields(row, "delivery.dead_letter"))  # fmt: skip
        else:
            counts.retrying += 1
            log.warning("delivery %s to %s: %s; retry at %s", row.id, row.destination, error, retry_at.isoformat(),
                        extra=_fields(row, "delivery.retry"))  # fmt: skip
        return AttemptResult(row.id, kind, started, finished, error, response, retry_at, sha)


@dataclass(frozen=True, slots=True)
class _Raised:
    """A destination raised instead of answering: retried under the policy, with the trace kept."""

    reason: str
    trace: str
    response: dict[str, Any] = field(default_factory=dict)


_Tried = tuple[DeliveryRow, "Outcome | _Raised", datetime, Payload | None]
"""A row tried: its outcome, when the try started, the payload sent."""


def _fields(row: DeliveryRow, event: str) -> dict[str, object]:
    """Structured fields of a delivery's log line (``--log-format json`` prints them)."""
    return {"gateway": {"event": event, "delivery_id": row.id, "destination": row.destination,
                        "document_id": row.document_id, "file_id": row.file_id, "partner": row.partner_id,
                        "correlation_id": row.correlation_id}}  # fmt: skip


def _only(ready: list[tuple[DeliveryRow, Payload]], kept: list[DeliveryRow]) -> list[tuple[DeliveryRow, Payload]]:
    ids = {r.id for r in kept}
    return [(r, p) for r, p in ready if r.id in ids]


def _one(destination: Destination, payload: Payload) -> list[Outcome]:
    return [destination.deliver(payload)]
