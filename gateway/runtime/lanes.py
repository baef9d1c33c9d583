"""Deliveries beside processing: the threads that let REST round trips, the staging batch and the next
batch's processing overlap, and the lease a long round keeps.

Three pieces, each small:

- :class:`LeaseKeeper`: a round leases up to ``batch`` deliveries of a destination under one lease; a
  receiver slower than ``lease / batch`` per request would outlive it, another worker would lease the
  rest and send them too (the same idempotency key, but a duplicate all the same). The keeper renews the
  leases of the deliveries about to be tried every third of the lease, and drops any another worker took.
- :class:`Threads`: a bounded pool per destination (its ``concurrency``, REST's requests in flight), plus
  one thread per destination so a round's destinations are tried side by side, not one after the other.
- :class:`DeliveryLane`: the deliveries a results commit created, tried on a thread of their own while
  the worker goes on with its next batch (at most ``depth`` batches waiting: a slow receiver slows
  processing down instead of piling leases up). ``drain`` waits for all of them.

Why threads: the work they overlap waits on sockets and on fsync, which release the GIL; the CPU-bound
parts still take turns. The ledger (BEGIN IMMEDIATE on SQLite, row locks on PostgreSQL) and the
destinations were already used from two threads (the service's delivery loop beside processing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from gateway.store.deliveries import DeliveryRow
from gateway.store.store import Store

__all__ = ["DeliveryLane", "LeaseKeeper", "Threads", "wait_all"]

log = logging.getLogger("gateway.deliveries")

T = TypeVar("T")
R = TypeVar("R")


class LeaseKeeper:
    """Keeps a round's deliveries leased until their attempts are recorded (see the module notes).

    Every row of the round is renewed, the ones already tried too: their results are recorded when the
    whole round ends, and one whose lease ran out meanwhile would be due to another worker, sent again.
    Shared by the round's destination threads."""

    def __init__(self, store: Store, worker: str, lease_seconds: float, leased_at: float, ids: Iterable[int]) -> None:
        self.store = store
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.renewed = leased_at  # time.monotonic() before the transaction that leased the rows
        self.ids = set(ids)
        self.lost: set[int] = set()
        self._lock = threading.Lock()

    def held(self, rows: Sequence[DeliveryRow]) -> tuple[list[DeliveryRow], list[DeliveryRow]]:
        """``rows`` (about to be tried) split into those still leased to this worker and those another
        worker took. Renews the round's leases (one transaction) once a third of the lease has passed."""
        with self._lock:
            if time.monotonic() - self.renewed >= self.lease_seconds / 3:
                ours = sorted(self.ids - self.lost)
                self.renewed = time.monotonic()
                self.lost |= set(ours) - set(self.store.renew_deliveries(self.worker, ours, self.lease_seconds))
            lost = [r for r in rows if r.id in self.lost]
        for row in lost:
            log.warning("delivery %s to %s: lease lost to another worker before it was tried; not sent here",
                        row.id, row.destination)  # fmt: skip
        return [r for r in rows if r.id not in self.lost], lost


class Threads:
    """The delivery threads of one worker: one per destination for a round, and each destination's pool of
    ``concurrency`` senders. Created when first used; :meth:`close` waits for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, ThreadPoolExecutor] = {}

    def _pool(self, key: str, size: int) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = ThreadPoolExecutor(size, thread_name_prefix=f"deliver-{key}")
            return pool

    def side_by_side(self, calls: dict[str, Callable[[], R]]) -> dict[str, R]:
        """Run each named call on its destination's one round thread; every result, or the first exception
        raised once all have finished (none is left running). One thread per destination: two rounds (the
        processing lane's and the delivery loop's) never use a destination at the same time."""
        futures = {name: self._pool(f"{name}:round", 1).submit(call) for name, call in calls.items()}
        return _results(futures)

    def round(self, call: Callable[[], R]) -> Future[R]:
        """Run a delivery round (``call``) on the rounds' own threads (two: one round records its attempts
        while the next is tried), returning at once."""
        return self._pool("rounds", 2).submit(call)

    def map(self, name: str, size: int, call: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``call`` over ``items``, up to ``size`` at once on ``name``'s senders; results in order."""
        if size <= 1 or len(items) <= 1:
            return [call(item) for item in items]
        pool = self._pool(f"{name}:send", size)
        return list(_results({i: pool.submit(call, item) for i, item in enumerate(items)}).values())

    def close(self) -> None:
        """Wait for every thread and end them."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True)


def wait_all(futures: Iterable[Future[R]], *, errors: bool = True) -> list[R]:
    """Every result of ``futures``, in order, once all have finished; the first exception raised is raised
    then (none is left running). ``errors=False``: only wait (the caller is already raising one; a round's
    own failure is logged by the round's caller next time, or by the store)."""
    if errors:
        return list(_results(dict(enumerate(futures))).values())
    for future in futures:
        if future.exception() is not None:
            exc = future.exception()
            log.warning("a delivery round failed too: %s: %s", type(exc).__name__, exc)
    return []


def _results(futures: dict[T, Future[R]]) -> dict[T, R]:
    error: BaseException | None = None
    out: dict[T, R] = {}
    for key, future in futures.items():
        try:
            out[key] = future.result()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, once every call has finished
            error = error or exc
    if error is not None:
        raise error
    return out


class DeliveryLane(Generic[T]):
    """Tries recorded batches' deliveries on one thread while processing goes on (module notes).

    Each submitted call is the worker's synchronous delivery of one batch; what it returns is handed to
    ``done`` on the caller's thread, when the caller next submits or drains. A batch whose
    delivery raised (the ledger unreachable) is logged with its trace and handed to ``failed`` with the
    ids it owed: they stay pending, leased until their lease runs out, and any worker's delivery loop
    tries them then.
    """

    def __init__(self, done: Callable[[T], None], failed: Callable[[Iterable[int]], None], depth: int = 2) -> None:
        self._done = done
        self._failed = failed
        self._depth = max(1, depth)
        self._pool: ThreadPoolExecutor | None = None  # started by the first batch, ended by close
        self._waiting: deque[tuple[Future[T], list[int]]] = deque()

    def submit(self, ids: list[int], deliver: Callable[[], T]) -> None:
        """Queue one batch's deliveries (``ids``: the deliveries ``deliver`` tries); waits first while
        ``depth`` batches are still being delivered."""
        while self._waiting and (len(self._waiting) >= self._depth or self._waiting[0][0].done()):
            self._collect()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="deliver-recorded")
        self._waiting.append((self._pool.submit(deliver), ids))

    def drain(self) -> None:
        """Wait for every queued batch's deliveries."""
        while self._waiting:
            self._collect()

    def close(self) -> None:
        """Drain, then end the thread. Interrupted while draining (the store hangs), the thread is left to
        its call: the process ends without it (see ``RunSummary.interrupted``)."""
        try:
            self.drain()
        except BaseException:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            raise
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _collect(self) -> None:
        future, ids = self._waiting.popleft()
        try:
            result = future.result()
        except Exception as exc:  # reported and left to the delivery loop, see the class notes
            log.error(
                "deliveries of a recorded batch (%s) failed: %s: %s; they stay pending for the delivery loop",
                len(ids), type(exc).__name__, exc, exc_info=exc,
            )  # fmt: skip
            self._failed(ids)
            return
        self._done(result)
