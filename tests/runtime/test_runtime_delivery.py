"""Deliveries with real parts: ``gateway run`` as a subprocess, real HTTP receivers on loopback, the
ERP staging loader on SQLite and on the local PostgreSQL.

- Killed with SIGKILL while deliveries are in flight, then started again: every document reaches
  each destination exactly once, as the receiver counts it (distinct ``Idempotency-Key`` values;
  a key seen twice is the at-least-once retry the key exists for) and as the staging tables hold
  it (one header per document, version 1).
- One receiver down for 30 s then back: everything reaches it in the end, retried under the
  destination's policy, while the other receiver gets each document as it is recorded.
- A 400 is a dead letter with the receiver's answer kept; an operator retries it once the receiver
  is fixed, under the same key. A 429 with ``Retry-After: 1`` is tried again about a second later.

PostgreSQL cases skip when the server is absent (fail under ``CI=true``, see tests/conftest.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    Home,
    Running,
    gateway,
    in_process,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    wait_for,
    x12,
)
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from support.httpd import Received, Receiver, Reply, closed_port

from gateway.store import Store

TEMPLATES = [PARTNERS / "medsupply/cases/810-invoice.edi", PARTNERS / "medsupply/cases/855-split-backorder.edi"]
LEASE = 2.0  # file and delivery leases: what a killed worker holds is taken over this long after


def single_documents(n: int, first_isa13: int) -> list[tuple[str, bytes]]:
    """``n`` one-document interchanges, invoices and 855s in turn, each with its own control number and
    business number (so each is a distinct staging row, and none is a duplicate of another)."""
    return [(f"d{i:03d}.edi", x12(TEMPLATES[i % 2], first_isa13 + i, tag=f"d{i}")) for i in range(n)]


def rest(url: str, **retry: Any) -> dict[str, Any]:
    """A REST destination posting to ``url``, with a short retry policy for a test."""
    policy = {"delays": [0.5, 1], "max_attempts": 1000, "breaker_failures": 5, "breaker_seconds": 1} | retry
    return {"type": "rest", "url": url + "/{doc_type}/{business_key}", "read_timeout_seconds": 5, "retry": policy}


def deployment(tmp_path: Path, store_url: str, destinations: dict[str, Any]) -> Home:
    """A deployment routing every inbound document to all of ``destinations``."""
    return make_home(
        tmp_path,
        store_url,
        lease_seconds=LEASE,
        stable_seconds=0,
        batch=5,
        extra={
            "destinations": destinations,
            "routes": [{"name": "everywhere", "to": list(destinations)}],
            "processing": {"max_attempts": 1000},  # the kills are the test's, not the files'
        },
    )


def backlog(home: Home) -> dict[str, dict[str, int]]:
    with Store(home.store_url) as store:
        return store.delivery_backlog()


def settled(home: Home, destinations: list[str], n: int) -> bool:
    """Every one of ``n`` documents delivered to each destination, and nothing else owed to them."""
    counts = backlog(home)
    return all(counts.get(d) == {"delivered": n} for d in destinations)


def ledger_keys(home: Home, destination: str) -> list[str]:
    with Store(home.store_url) as store:
        return [d.idempotency_key for d in store.list_deliveries(destination=destination, limit=10_000)]


def dead_letters(home: Home) -> dict[str, int]:
    return {d: c["dead_letter"] for d, c in backlog(home).items() if c.get("dead_letter")}


# --- 1. kill -9 while deliveries are in flight ---------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_during_deliveries_every_document_arrives_once_per_destination(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    n = 48
    if backend == "sqlite":
        store_url = f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}"
        staging_url = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    else:
        store_url = staging_url = request.getfixturevalue("pg_url")  # ledger and stg_* tables side by side
    # A receiver that takes 80 ms per request keeps deliveries in flight for a few seconds.
    with Receiver(default=Reply(delay=0.08)) as ap:
        home = deployment(
            tmp_path / "home",
            store_url,
            {
                "ap": rest(ap.url),
                "erp": {
                    "type": "sql",
                    "url": staging_url,
                    "upgrade": True,
                    "retry": {"delays": [0.5], "max_attempts": 1000},
                },
            },
        )
        for name, data in single_documents(n, 7100):
            home.drop(name, data, "medsupply")
        first = Running(home, name="killed")
        request.addfinalizer(first.kill)
        first.wait_started()

        # Kill once a quarter of the documents reached the receiver, within 30 ms of a request arriving
        # (it is answered after 80 ms): that request is in flight, the rest are still owed.
        def in_flight() -> bool:
            got = list(ap.received)
            return len({r.key for r in got}) >= n // 4 and time.time() - got[-1].at < 0.03

        wait_for(in_flight, 60, "a delivery in flight", interval=0.002)
        first.kill()
        before = list(ap.received)
        assert len({r.key for r in before}) < n, "the run finished every delivery before the kill: widen the window"

        second = Running(home, name="restarted")
        request.addfinalizer(second.kill)
        second.wait_started()
        wait_for(lambda: settled(home, ["ap", "erp"], n), 60, f"{n} documents delivered to ap and erp")
        assert second.stop() == 0, second.stderr()[-3000:]

        keys = ap.keys()
    repeats = {k: c for k, c in Counter(keys).items() if c > 1}
    print(f"\n{backend}: {len(before)} of {n} keys before the kill; {len(repeats)} sent again after it")
    # The request the kill cut off was never recorded as delivered: the restarted run sent it again.
    assert before[-1].key in repeats, "the delivery in flight at the kill was not retried"
    assert len(set(keys)) == n, f"{len(set(keys))} distinct keys for {n} documents"
    assert set(keys) == set(ledger_keys(home, "ap")), "the receiver's keys are not the ledger's"
    assert not dead_letters(home)
    with Store(home.store_url) as store:
        assert store.counts_by_status()["files"] == {"processed": n}
        statuses = Counter(d.status for d in store.list_documents())
    assert sum(statuses.values()) == n and not set(statuses) & {"duplicate", "failed", "held", "unrouted"}, statuses
    engine = create_engine(staging_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            headers = conn.execute(text("SELECT doc_key, version, idempotency_key FROM stg_document")).all()
    finally:
        engine.dispose()
    assert len(headers) == n and len({h.doc_key for h in headers}) == n
    assert {h.version for h in headers} == {1}, "a redelivery changed a staged document"
    assert {h.idempotency_key for h in headers} == set(ledger_keys(home, "erp"))


# --- 2. one destination down for 30 s ------------------------------------------------------------

OUTAGE = 30.0


def test_a_destination_down_for_30s_gets_everything_later_and_the_other_is_not_delayed(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    port = closed_port()  # A: connections refused until its receiver starts on this port
    with Receiver() as b:
        home = deployment(
            tmp_path,
            f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
            {
                "a": rest(f"http://127.0.0.1:{port}", delays=[1, 2], breaker_seconds=2),
                "b": rest(b.url, delays=[1, 2], breaker_seconds=2),
            },
        )
        files = single_documents(40, 7300)
        run = Running(home)
        request.addfinalizer(run.kill)
        run.wait_started()
        down_at = time.monotonic()
        for name, data in files:  # files keep arriving all through the outage
            home.drop(name, data, "medsupply")
            time.sleep((OUTAGE - 2) / len(files))
        time.sleep(max(0.0, down_at + OUTAGE - time.monotonic()))
        assert backlog(home)["a"].get("delivered", 0) == 0
        with Receiver(port=port) as a:
            wait_for(lambda: settled(home, ["a", "b"], len(files)), 20, "every document delivered to a and b")
            assert run.stop() == 0, run.stderr()[-3000:]
            a_received = list(a.received)
        b_received = list(b.received)

    assert len({r.key for r in a_received}) == len(files) and len({r.key for r in b_received}) == len(files)
    with Store(home.store_url) as store:
        a_rows = store.list_deliveries(destination="a", limit=1000)
        b_rows = store.list_deliveries(destination="b", limit=1000)
    # Those recorded while A's breaker was open waited untried (how many depends on the machine's
    # pace); the first ones opened it, and each pause ended with a probe that failed again.
    failed_tries = sum(d.attempts - 1 for d in a_rows)
    assert failed_tries >= 5 + OUTAGE / 2 / 2, sorted(d.attempts for d in a_rows)
    assert all(d.attempts == 1 for d in b_rows)
    # B's documents went out as they were recorded, not held behind A's retries.
    lags = sorted((d.delivered_at - d.created_at).total_seconds() for d in b_rows if d.delivered_at)
    assert len(lags) == len(files) and lags[-1] < 2.0, f"B's delivery lags (s): {lags}"
    retried = max(a_rows, key=lambda d: d.attempts)
    shown = in_process(home, "deliveries", "show", str(retried.id))
    assert shown.returncode == 0, shown.stderr
    tries = [line for line in shown.stdout.splitlines() if line.strip().startswith("attempt ")]
    assert len(tries) == retried.attempts > 2 and "retry" in tries[0] and tries[-1].split()[4] == "delivered", (
        shown.stdout
    )
    assert not dead_letters(home)


def test_a_destination_that_hangs_is_probed_one_delivery_at_a_time(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A receiver that accepts and never answers costs a timeout per try: once its breaker opens, each
    pause ends with one probe, not with the whole round's deliveries timing out one after another
    (which held processing and the other destination for that long)."""
    timeout, failures, pause = 0.5, 2, 2.0
    with Receiver(default=Reply(delay=5)) as a, Receiver() as b:
        hanging = rest(a.url, delays=[1], breaker_failures=failures, breaker_seconds=pause)
        home = deployment(
            tmp_path,
            f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
            {"a": hanging | {"read_timeout_seconds": timeout}, "b": rest(b.url)},
        )
        files = single_documents(20, 7400)
        run = Running(home)
        request.addfinalizer(run.kill)
        run.wait_started()
        started = time.monotonic()
        for name, data in files:
            home.drop(name, data, "medsupply")
        wait_for(lambda: backlog(home).get("b") == {"delivered": len(files)}, 30, "every document delivered to b")
        time.sleep(max(0.0, started + 3 * pause - time.monotonic()))
        assert run.stop() == 0, run.stderr()[-3000:]
        elapsed = time.monotonic() - started
        tries = len(a.received)
    # The first failures open the breaker, then at most one probe per pause (each a timeout long).
    allowed = failures + int(elapsed / pause) + 1
    assert tries <= allowed, f"{tries} requests to the hanging receiver in {elapsed:.1f} s (at most {allowed})"
    with Store(home.store_url) as store:
        b_rows = store.list_deliveries(destination="b", limit=1000)
    lags = sorted((d.delivered_at - d.created_at).total_seconds() for d in b_rows if d.delivered_at)
    print(f"\n{tries} tries in {elapsed:.1f} s, B lag max {lags[-1]:.2f}")
    assert lags[-1] < failures * timeout + 1.2, f"B's delivery lags (s): {lags}"


# --- 3. rejections and Retry-After ---------------------------------------------------------------


def test_a_400_is_a_dead_letter_retried_by_an_operator_under_the_same_key(tmp_path: Path) -> None:
    with Receiver() as ap:
        ap.script(Reply(400, {"Content-Type": "application/json"}, b'{"error": "unknown vendor MEDSUPPLY-77"}'))
        home = deployment(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", {"ap": rest(ap.url)})
        ((name, data),) = single_documents(1, 7500)
        home.drop(name, data, "medsupply")
        run = gateway(home, "run", "--once")
        assert run.returncode == 6, run.stdout + run.stderr
        with Store(home.store_url) as store:
            (dead,) = store.list_deliveries(destination="ap")
        assert dead.status == "dead_letter" and dead.attempts == 1
        shown = in_process(home, "deliveries", "show", str(dead.id))
        assert "HTTP 400" in shown.stdout and "unknown vendor MEDSUPPLY-77" in shown.stdout, shown.stdout

        # The receiver's vendor table is fixed (its next answer is a 200): the operator retries.
        retried = in_process(home, "deadletters", "retry", str(dead.id), "--reason", "vendor added in AP")
        assert retried.returncode == 0, retried.stdout + retried.stderr
        deliver = in_process(home, "deliver")
        assert deliver.returncode == 0, deliver.stdout + deliver.stderr
        keys = ap.keys()
    with Store(home.store_url) as store:
        after = store.get_delivery(dead.id)
        events = store.events_for("delivery", dead.id)
    assert after.status == "delivered" and after.attempts == 1  # attempts counted afresh by the retry
    assert keys == [dead.idempotency_key, dead.idempotency_key]
    assert [(e.action, e.reason) for e in events if e.action == "retry"] == [("retry", "vendor added in AP")]


def test_a_429_with_retry_after_is_tried_again_a_second_later(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with Receiver() as ap:
        ap.script(Reply(429, {"Retry-After": "1"}, b"slow down"))
        # The policy alone would retry after 0.1 s: the wait is the receiver's.
        home = deployment(
            tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", {"ap": rest(ap.url, delays=[0.1])}
        )
        ((name, data),) = single_documents(1, 7600)
        run = Running(home)
        request.addfinalizer(run.kill)
        run.wait_started()
        home.drop(name, data, "medsupply")
        wait_for(lambda: settled(home, ["ap"], 1), 20, "the delivery after the 429")
        assert run.stop() == 0, run.stderr()[-3000:]
        got: list[Received] = list(ap.received)
    assert [r.key for r in got] == [got[0].key] * 2
    gap = got[1].at - got[0].at
    # At least the second asked for; at most that plus the delivery loop's idle poll (0.5 s) and slack.
    assert 1.0 <= gap < 2.5, f"retried {gap:.2f} s after the 429"
    with Store(home.store_url) as store:
        (d,) = store.list_deliveries(destination="ap")
        attempts = store.delivery_attempts(d.id)
    assert [a["outcome"] for a in attempts] == ["retry", "delivered"]
    assert json.dumps(attempts[0]["response"]).find("429") >= 0
