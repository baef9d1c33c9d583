"""Functions run in spawned processes by the concurrency tests (importable without pytest)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from gateway.store import Store


def claim_until_empty(url: str, worker: str, batch: int, barrier: Barrier, results: Queue[object]) -> None:
    """Claim and finish files until none is left; report the ids this worker claimed.

    All workers make their first claim at the same moment, and wait for each
    other before going on, so every worker gets work however the scheduler
    (or SQLite's busy handler) favours one of them afterwards.
    """
    claimed: list[int] = []
    with Store(url) as store:
        barrier.wait()
        rows = store.claim_files(worker, batch, lease_seconds=300)
        barrier.wait()
        while rows:
            for row in rows:
                claimed.append(row.id)
                store.set_file_status(row.id, "processed", worker=worker)
            rows = store.claim_files(worker, batch, lease_seconds=300)
    results.put((worker, claimed))


def take_values(url: str, count: int, barrier: Barrier, results: Queue[object]) -> None:
    """Take ``count`` values of one sequence; report them."""
    with Store(url) as store:
        barrier.wait()
        values = [store.next_value("acme", "isa13") for _ in range(count)]
    results.put(values)


def claim_keys(url: str, worker: int, keys: int, barrier: Barrier, results: Queue[object]) -> None:
    """Try to claim the same ``keys`` business keys as the other workers; report the ones won."""
    won: list[str] = []
    with Store(url) as store:
        barrier.wait()
        for n in range(keys):
            key = f"INV-{n}"
            if store.claim_key("business", "acme", key, "document", worker * 100_000 + n) is None:
                won.append(key)
    results.put(won)
