"""Several ``gateway run`` processes on one store, one inbox and one outbox; a worker killed mid-file; SIGTERM.

Every file is taken and processed exactly once however the workers race;
a dead worker's file is finished by another once its lease expires; a
stopped worker finishes the file in hand and leaves nothing in
``processing``.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    Drop,
    Home,
    Running,
    check_outcome,
    gateway,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    wait_for,
    workload,
    workspace_fixture,
    x12,
)

from gateway.store import Store
from gateway.workspace import Workspace

SEED = 4242


def final_count(home: Home) -> int:
    with Store(home.store_url) as store:
        counts = store.counts_by_status()["files"]
    return sum(n for status, n in counts.items() if status not in ("received", "processing"))


def url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize(("backend", "workers"), [("postgresql", 3), ("sqlite", 2)], ids=["postgresql", "sqlite"])
def test_workers_share_the_work_and_do_each_file_once(
    backend: str, workers: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = make_home(tmp_path, url_for(backend, tmp_path, request), batch=2)
    drops = workload(64, SEED, max_sets=6)
    running = [Running(home, "--worker", f"w{n}", name=f"w{n}") for n in range(1, workers + 1)]
    for run in running:
        request.addfinalizer(run.kill)
    try:
        for run in running:
            run.wait_started()
        for drop in drops:  # all at once: the workers race for them at intake and at claim
            home.drop(drop.name, drop.data, drop.folder)
        wait_for(lambda: final_count(home) == len(drops), 60, f"{len(drops)} files to be final")
    finally:
        codes = [run.stop() for run in running]
    assert codes == [0] * workers, [run.stderr()[-2000:] for run in running]
    outcome = check_outcome(home, drops)
    claims = Counter()
    for file_id, events in outcome["events"].items():
        actions = [e.action for e in events if e.entity_kind == "file"]
        assert actions == ["create", "claim", "status"], f"file {file_id}: {actions}"
        claims.update(e.actor for e in events if e.action == "claim")
    assert len(claims) >= 2 and sum(claims.values()) == len(drops), f"work by worker: {dict(claims)}"
    summaries = [run.stdout() for run in running]
    processed = sum(int(s.split("processed    ")[1].split(" ")[0]) for s in summaries)
    received = sum(int(s.split("received     ")[1].split(" ")[0]) for s in summaries)
    assert processed == received == len(drops), summaries
    for partner in ("medsupply", "orthosupply", "summitmed"):
        numbers = [o.control_number for o in outcome["outbound"] if o.partner_id == partner]
        assert len(numbers) == len(set(numbers)) > 0, partner


def test_a_worker_killed_mid_file_is_taken_over_when_its_lease_expires(
    tmp_path: Path, pg_url: str, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL; on SQLite the crash test's restarts take over the killed runs' leases."""
    home = make_home(tmp_path, pg_url, lease_seconds=2, batch=1)
    # A mailbag of 12 interchanges of 100 invoices: seconds of work, acknowledged interchange by interchange.
    template = PARTNERS / "medsupply/cases/810-invoice.edi"
    data = b"".join(x12(template, 31000 + n, sets=100, tag=f"big{n}") for n in range(12))
    groups = [f"medsupply:{31000 + n}" for n in range(12)]
    big = Drop("big-810.edi", "medsupply", data, frozenset({"processed"}), 1200, groups)
    running = {name: Running(home, "--worker", name, name=name) for name in ("A", "B")}
    for run in running.values():
        request.addfinalizer(run.kill)
    for run in running.values():
        run.wait_started()
    home.drop(big.name, big.data, big.folder)
    store = Store(home.store_url)
    try:

        def mid_file() -> bool:
            rows = store.list_files(status="processing")
            return bool(rows) and len(store.file_tree(rows[0].id).interchanges) >= 2

        wait_for(mid_file, 30, "the mailbag to be partly processed", interval=0.02)
        (row,) = store.list_files(status="processing")
        owner = row.lease_owner
        assert owner in running
        running[owner].kill()
        assert store.get_file(row.id).status == "processing", "the file was finished before the kill: make it bigger"
        sent_before = {o.reason: o.control_number for o in store.list_outbound(file_id=row.id)}
        killed_at = time.monotonic()
        survivor = "B" if owner == "A" else "A"
        wait_for(lambda: store.get_file(row.id).status == "processed", 60, "the survivor to finish the file")
        assert time.monotonic() - killed_at >= 1.0, "taken over before the lease could expire"
        events = [e for e in store.events_for_file(row.id) if e.entity_kind == "file"]
    finally:
        store.close()
        codes = {name: run.stop() for name, run in running.items() if run.proc.poll() is None}
    assert list(codes.values()) == [0], codes
    assert [(e.action, e.actor) for e in events] == [
        ("create", None),
        ("claim", owner),
        ("reclaim", survivor),
        ("reset", survivor),
        ("status", survivor),
    ]
    assert events[2].reason == f"lease of {owner} expired"
    outcome = check_outcome(home, [big])
    sent_after = {o.reason: o.control_number for o in outcome["outbound"]}
    assert sent_before and sent_before.items() <= sent_after.items(), "acks of the killed worker were renumbered"
    assert len(sent_after) == 12


def test_sigterm_finishes_the_file_in_hand_and_exits_0(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", batch=4)
    drops = workload(12, SEED, max_sets=40)
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    for drop in drops:
        home.drop(drop.name, drop.data, drop.folder)
    with Store(home.store_url) as store:
        wait_for(lambda: store.list_files(status="processing"), 30, "a file to be processing")
        in_hand = {f.id for f in store.list_files(status="processing")}
        assert run.stop(timeout=30) == 0, run.stderr()[-2000:]
        statuses = {f.id: f.status for f in store.list_files(limit=100)}
        assert "processing" not in statuses.values(), statuses
        assert any(statuses[i] != "received" for i in in_hand), "the file in hand was not finished"
        assert "received" in statuses.values() or len(statuses) < len(drops), (
            "nothing was left to release: stopped too late"
        )
        releases = [e for f in statuses for e in store.events_for_file(f) if e.action == "release"]
        assert all(e.reason == "worker stopping" for e in releases)
    out = run.stdout()
    assert out.startswith("received ") and "processed " in out and "acknowledged " in out, out
    assert "signal 15: stopping after the current file" in run.stderr()
    finish = gateway(home, "run", "--once")
    assert finish.returncode in (0, 1), finish.stderr  # 1: the workload's partly rejected files
    check_outcome(home, drops)


def test_a_signal_arriving_while_the_loop_holds_an_events_lock_does_not_deadlock(
    tmp_path: Path, workspace: Workspace
) -> None:
    """The handler runs in the main thread between two bytecodes, possibly inside ``Event.wait`` while it
    holds the event's lock (not reentrant): a handler that set the event itself would wait for ever."""
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")
    service = home.service(workspace)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.install_signal_handlers()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        with service.stopping._cond, service.inbox._wake._cond:  # type: ignore[attr-defined]
            handler(signal.SIGTERM, None)  # as if delivered right there: must return
        assert service.stopping.wait(5) and service.inbox._wake.wait(5), "the stop request reached the loop"
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)
        service.store.close()
