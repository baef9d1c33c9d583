"""Delivery processes (``processing.delivery_workers``): ``gateway run`` leaves the deliveries it records
to processes of its own, on SQLite and PostgreSQL, with a real loopback receiver.

- ``--once``: every document reaches each destination once, the summary counts them per destination from
  the ledger, and no delivery process outlives the run;
- as a service: documents are delivered as they are recorded; a delivery process killed is started again;
  SIGTERM stops the service and its delivery processes; ``kill -9`` of the service ends them too (the end
  of their input).

PostgreSQL cases skip when the server is absent (fail under ``CI=true``, see tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    CANONICAL_FILES,
    PARTNERS,
    Home,
    Running,
    gateway,
    in_process,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    wait_for,
    workspace_fixture,
    x12,
)
from support.httpd import Receiver

from gateway.store import Store, StoreUnavailableError
from gateway.workspace import Workspace

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"


def deployment(tmp_path: Path, store_url: str, receiver: str, workers: int) -> Home:
    """Every inbound document to a REST receiver and to the canonical JSON files, by ``workers`` processes."""
    rest = {"type": "rest", "url": receiver + "/{doc_type}/{business_key}", "read_timeout_seconds": 5}
    rest["retry"] = {"delays": [0.5], "max_attempts": 100}
    return make_home(
        tmp_path,
        store_url,
        stable_seconds=0,
        batch=4,
        extra={
            "destinations": {"receiver": rest, "canonical-json": CANONICAL_FILES},
            "routes": [{"name": "everywhere", "to": ["receiver", "canonical-json"]}],
            "processing": {"delivery_workers": workers},
        },
    )


def delegates(home: Home) -> list[int]:
    """The pids of this deployment's delivery processes (``gateway run --deliveries-only``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if b"--deliveries-only" in argv and str(home.path).encode() in argv:
            pids.append(int(entry.name))
    return pids


def keys_by_document(receiver: Receiver) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in receiver.received:
        out.setdefault(r.path, set()).add(r.key or "")
    return out


def store_url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_once_leaves_the_deliveries_to_its_processes_and_waits_for_them(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    n = 10
    with Receiver() as receiver:
        home = deployment(tmp_path, store_url_for(backend, tmp_path, request), receiver.url, workers=2)
        for i in range(n):
            home.drop(f"inv{i}.edi", x12(TEMPLATE, 700 + i, tag=f"w{i}"), "medsupply")
        run = gateway(home, "run", "--once", "-v", timeout=120)
        assert run.returncode == 0, run.stderr
        summary = "delivered    30 delivery(ies) (10 to canonical-json, 10 to partner-outbox, 10 to receiver)"
        assert summary in run.stdout, run.stdout  # the 997s go to partner-outbox
        assert run.stderr.count("delivery process") >= 2, "the delivery processes are named in the log"
        # Each process says where its ledger writes went (-v): the service and its two delivery processes.
        assert run.stderr.count("ledger writes: ") == 3 and run.stderr.count("delivery process: ledger writes") == 2
        posted = keys_by_document(receiver)
        assert len(posted) == n and all(len(k) == 1 for k in posted.values()), posted
        assert len(receiver.received) == n, "a document was posted twice"
        assert len(list((home.outbox / "canonical" / "medsupply").glob("*.json"))) == n
    assert delegates(home) == [], "a delivery process outlived the run"
    with Store(home.store_url) as store:
        assert store.delivery_backlog() == {
            d: {"delivered": n} for d in ("receiver", "canonical-json", "partner-outbox")
        }
        workers = {a["worker"] for d in store.list_deliveries(limit=100) for a in store.delivery_attempts(d.id)}
        # Reconciliation too is theirs: each invoice of an order never sent opened an exception before they ended.
        opened = store.list_exceptions(limit=100)
        actors = {e.actor for x in opened for e in store.exception_events(x.id)}
    assert workers and all("/d" in w for w in workers), f"tried by the service itself: {workers}"
    assert sum(x.kind == "invoice_unknown_order" for x in opened) == n, [(x.po_number, x.kind) for x in opened]
    assert actors and all(a and "/d" in a for a in actors), f"reconciled by the service itself: {actors}"


def service(tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver, workers: int) -> tuple[Home, Running]:
    """``gateway run`` as a service on SQLite, started, with its ``workers`` delivery processes running."""
    home = deployment(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", receiver.url, workers=workers)
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    wait_for(lambda: len(delegates(home)) == workers, 30, "the delivery processes")
    return home, run


def test_the_service_delivers_through_its_processes_restarts_one_killed_and_stops_them(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with Receiver() as receiver:
        home, run = service(tmp_path, request, receiver, workers=1)
        (first,) = delegates(home)

        def services() -> list[str]:
            status = in_process(home, "status", "--json")
            return sorted(s["worker"] for s in json.loads(status.stdout)["services"] if s["alive"])

        wait_for(lambda: len(services()) == 2, 15, "both processes in `gateway status`")
        assert services()[1] == services()[0] + "/d1", services()
        home.drop("a.edi", x12(TEMPLATE, 801, tag="a"), "medsupply")
        wait_for(lambda: len(receiver.received) == 1, 30, "the first document posted")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: delegates(home) not in ([], [first]), 30, "the delivery process started again")
        assert "ended with exit code -9; starting it again" in run.stderr()
        home.drop("b.edi", x12(TEMPLATE, 802, tag="b"), "medsupply")
        wait_for(lambda: len(receiver.received) == 2, 30, "the second document posted by the new process")
        started = time.monotonic()
        assert run.stop(timeout=30) == 0
        assert time.monotonic() - started < 15
        wait_for(lambda: delegates(home) == [], 10, "the delivery process to end with the service")
    assert len(keys_by_document(receiver)) == 2


def test_a_killed_service_takes_its_delivery_processes_with_it(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with Receiver() as receiver:
        home, run = service(tmp_path, request, receiver, workers=2)
        run.kill()  # kill -9: their input ends with the service
        wait_for(lambda: delegates(home) == [], 15, "the delivery processes to end without their service")


@pytest.mark.parametrize("once", [False, True])
def test_a_delivery_process_whose_service_ended_stops_though_the_store_is_down(
    once: bool, tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end of its input while the store cannot be reached: its round failed, it exits (with the
    store's error) instead of retrying every 5 s for as long as the store is down, its service gone."""
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")
    service = home.service(workspace, worker="test-worker/d1")

    def store_down(limit: int | None = None) -> object:
        raise StoreUnavailableError("connection refused")

    monkeypatch.setattr(service, "deliver_due", store_down)
    ended, woken = threading.Event(), threading.Event()
    ended.set()  # the service closed the pipe, or was killed
    woken.set()
    done = threading.Event()
    loop = threading.Thread(
        target=lambda: (service.run_deliveries(once=once, ended=ended, woken=woken), done.set()), daemon=True
    )
    try:
        loop.start()
        assert done.wait(10), "the delivery process outlived its service while the store was down"
        assert service.summary.store_error is not None and "connection refused" in service.summary.store_error
    finally:
        service.stopping.set()
        loop.join(10)
        service.store.close()


def test_once_checks_the_acks_after_its_delivery_processes_ended(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their first round checks the acknowledgments before anything is processed, and the next not for a
    minute: the service's own check, once they ended, matches this run's acks and starts the clocks of
    what they delivered (as the run without delivery processes does in its last round)."""
    home = make_home(
        tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", extra={"processing": {"delivery_workers": 1}}
    )
    service = home.service(workspace)
    order: list[str] = []

    class Finished:
        def finish(self, **_: object) -> list[int]:
            order.append("delivery processes ended")
            return [0]

    check = service.acks.check
    monkeypatch.setattr(service.acks, "check", lambda **kw: (order.append("acks checked"), check(**kw))[1])
    service.delegates = Finished()  # type: ignore[assignment]
    try:
        summary = service.run_once()
    finally:
        service.store.close()
    assert summary.store_error is None
    assert order == ["delivery processes ended", "acks checked"]


def test_the_store_url_is_not_on_a_delivery_process_command_line(tmp_path: Path) -> None:
    """``ps`` shows every user a process's arguments: the store's URL (its password) goes in the environment."""
    from gateway.cli.run_cli import _delegate_command

    command = _delegate_command("host:1", 1, once=False, verbose=0, log_format="text", home=tmp_path, config=None)
    assert not any("secret" in arg or arg == "--store" for arg in command), command


def test_a_delivery_process_beats_between_batches_of_a_backlog(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load its service records deliveries as fast as it delivers them: a round that took every one
    due would never end, and its loop would look dead in `gateway status` (and SIGTERM wait for the whole
    backlog). A round is one batch; the loop beats between them."""
    from gateway.runtime.deliver import DeliveryCounts

    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")
    service = home.service(workspace, worker="test-worker/d1")

    def endless_backlog(limit: int | None = None) -> DeliveryCounts:
        while limit is None and not service.stopping.wait(0.05):
            pass  # what keeps coming is delivered, round without end
        return DeliveryCounts(delivered=limit or 0)

    monkeypatch.setattr(service.deliverer, "run_due", endless_backlog)
    ended, woken = threading.Event(), threading.Event()
    loop = threading.Thread(target=service.run_deliveries, kwargs={"once": False, "ended": ended, "woken": woken})
    try:
        loop.start()
        wait_for(lambda: "loop" in service.beats, 5, "the delivery process's loop to beat")
    finally:
        service.stopping.set()
        loop.join(10)
        service.store.close()
