"""Delivery rounds: one longer than its lease, and rounds in flight side by side.

A round longer than its lease: the worker keeps the lease of what it has yet to send.

A round leases up to 64 deliveries of a destination at once. Against a receiver slower than the lease
divided by the round's size, the lease used to run out midway: another worker's delivery loop leased
the rest and sent them while the first worker still did, a duplicate (same idempotency key) that a
receiver without key checks would act on twice.

Rounds side by side: ``Deliverer.run_due`` (the delivery processes' loop, ``gateway deliver``, the service's
delivery loop) claims the next round and starts it while the one before still waits for its slowest
destination or records its attempts; each destination still takes one round at a time, in order.

Real parts: the gateway's service in process, real HTTP receivers on loopback (one holding its answers
until the test lets them go), a second worker's delivery loop on its own store connection.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    workspace_fixture,
    x12,
)
from support.httpd import Received, Receiver, Reply

from gateway.runtime.deliver import DeliveryCounts
from gateway.runtime.service import Service
from gateway.store import Store
from gateway.workspace import Workspace

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"
LEASE = 2.0
DELAY = 0.6  # per request: eight of them, one at a time, take 4.8 s, more than two leases


def test_a_round_longer_than_its_lease_sends_each_delivery_once(
    store_url: str, tmp_path: Path, workspace: Workspace
) -> None:
    n = 8
    with Receiver(default=Reply(delay=DELAY)) as ap:
        home = make_home(
            tmp_path,
            store_url,
            lease_seconds=LEASE,
            stable_seconds=0,
            batch=n,
            extra={
                "destinations": {
                    "ap": {
                        "type": "rest",
                        "url": ap.url + "/{business_key}",
                        "concurrency": 1,
                        "retry": {"delays": [0.2], "max_attempts": 100},
                    },
                },
                "routes": [{"name": "all", "to": ["ap"]}],
            },
        )
        for i in range(n):
            home.drop(f"i{i}.edi", x12(TEMPLATE, 900 + i, tag=f"i{i}"), "medsupply")
        service = home.service(workspace, worker="w1")
        other = home.service(workspace, worker="w2")  # its own store connections and REST client
        done = threading.Event()
        stolen: list[int] = []

        def other_worker() -> None:
            # Another process's delivery loop: anything whose lease ran out is due to it.
            try:
                while not done.is_set():
                    stolen.extend(other.deliverer.run_due().touched)
                    time.sleep(0.05)
            finally:
                other.deliverer.close()
                other.store.close()

        thief = threading.Thread(target=other_worker)
        thief.start()
        started = time.monotonic()
        try:
            summary = service.run_once()
        finally:
            done.set()
            thief.join()
            service.store.close()
        keys = ap.keys()
    assert time.monotonic() - started > 2 * LEASE, "the deliveries did not outlast the lease: nothing was tested"
    assert (summary.deliveries.delivered, summary.deliveries.dead) == (2 * n, 0)  # to ap, and the 997s
    repeats = {k: c for k, c in Counter(keys).items() if c > 1}
    assert not repeats and len(keys) == n, f"sent twice: {repeats}; taken by the other worker: {stolen}"
    assert stolen == []
    with Store(home.store_url) as store:
        rows = store.list_deliveries(destination="ap", limit=100)
    assert len(rows) == n and {(d.status, d.attempts) for d in rows} == {("delivered", 1)}


FILES = 6


def test_the_next_round_goes_on_while_a_slow_destination_holds_the_first(
    store_url: str, tmp_path: Path, workspace: Workspace
) -> None:
    gate = threading.Event()

    def held(request: Received) -> Reply:
        gate.wait(30)
        return Reply()

    with Receiver(default=held) as slow, Receiver() as fast:
        home = make_home(
            tmp_path,
            store_url,
            stable_seconds=0,
            batch=FILES,
            extra={
                # Deliveries recorded free to lease, left to a delivery loop (here run_due, in process).
                "processing": {"delivery_workers": 1},
                "destinations": {
                    "slow": {"type": "rest", "url": slow.url + "/{business_key}", "concurrency": 1},
                    "fast": {"type": "rest", "url": fast.url + "/{business_key}", "concurrency": 1},
                },
                "routes": [{"name": "all", "to": ["slow", "fast"]}],
            },
        )
        for i in range(FILES):
            home.drop(f"i{i}.edi", x12(TEMPLATE, 700 + i, tag=f"r{i}"), "medsupply")
        service = home.service(workspace, worker="w1")
        with _run_due_beside(service, FILES, 2, gate) as counts:  # rounds of at most 2 of each destination
            # The first round's slow delivery is held; the second round's fast ones arrive meanwhile.
            deadline = time.monotonic() + 10
            while len(fast.received) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            seen_while_held = len(fast.received)
            held_at_slow = len(slow.received)
        assert held_at_slow == 1, "the slow destination was not holding its first delivery"
        assert seen_while_held >= 4, (
            f"only {seen_while_held} fast deliveries while the slow one held its first round: rounds run one "
            "after the other"
        )
        slow_keys, fast_keys = slow.keys(), fast.keys()
    (total,) = counts
    assert total.delivered == 3 * FILES and (total.retrying, total.dead) == (0, 0)  # slow, fast, the 997s
    for keys in (slow_keys, fast_keys):
        assert len(keys) == FILES and not [k for k, c in Counter(keys).items() if c > 1]
    with Store(home.store_url) as store:
        rows = store.list_deliveries(limit=100)
    assert len(rows) == 3 * FILES and {(d.status, d.attempts) for d in rows} == {("delivered", 1)}


def test_a_stopping_service_claims_no_further_round(store_url: str, tmp_path: Path, workspace: Workspace) -> None:
    """SIGTERM sets ``stopping``: the rounds in flight end and record their attempts, and run_due claims no
    more (a backlog behind a slow destination would otherwise keep a stopping service delivering)."""
    files = 8
    gate = threading.Event()

    def held(request: Received) -> Reply:
        gate.wait(30)
        return Reply()

    with Receiver(default=held) as slow:
        home = make_home(
            tmp_path,
            store_url,
            stable_seconds=0,
            batch=files,
            extra={
                "processing": {"delivery_workers": 1},  # deliveries left free to lease, for run_due below
                "destinations": {"slow": {"type": "rest", "url": slow.url + "/{business_key}", "concurrency": 1}},
                "routes": [{"name": "all", "to": ["slow"]}],
            },
        )
        for i in range(files):
            home.drop(f"s{i}.edi", x12(TEMPLATE, 800 + i, tag=f"s{i}"), "medsupply")
        service = home.service(workspace, worker="w1")
        with _run_due_beside(service, files, 1, gate) as counts:  # rounds of one of each (slow, partner-outbox)
            deadline = time.monotonic() + 10
            while not slow.received and time.monotonic() < deadline:
                time.sleep(0.02)
            assert slow.received, "the first round never reached the slow destination"
            service.stopping.set()  # as the signal handler does
    (total,) = counts
    with Store(home.store_url) as store:
        rows = [d for d in store.list_deliveries(limit=100) if d.destination == "slow"]
    delivered = [d for d in rows if d.status == "delivered"]
    untouched = [d for d in rows if d.status == "pending" and d.attempts == 0]
    # Two rounds at most were in flight, of two deliveries each (the oldest due, of either destination); the
    # rest were never claimed.
    assert 1 <= len(delivered) <= 4 and len(untouched) == files - len(delivered), [(d.status, d.attempts) for d in rows]
    assert total.delivered >= len(delivered) and (total.retrying, total.dead) == (0, 0)


@contextmanager
def _run_due_beside(service: Service, files: int, batch: int, gate: threading.Event) -> Iterator[list[DeliveryCounts]]:
    """The ``files`` dropped taken and processed by ``service``, then its ``run_due`` (rounds of ``batch``
    of each destination) on a thread of its own for the block, its counts in the list yielded; at the end
    ``gate`` opened, the loop joined, the service's deliverer and store closed."""
    counts: list[DeliveryCounts] = []
    try:
        assert service.take_ready() == files
        assert service.process_claimed() == files
        service.deliverer.batch = batch
        loop = threading.Thread(target=lambda: counts.append(service.deliverer.run_due()))
        loop.start()
        try:
            yield counts
        finally:
            gate.set()
            loop.join(30)
        assert not loop.is_alive()
    finally:
        service.deliverer.close()
        service.store.close()
