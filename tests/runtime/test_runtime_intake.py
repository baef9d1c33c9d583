"""Intake safety with the real watcher: what is never taken, what is taken only once complete, what a rescan finds.

In-process (``Service`` in a thread, stopped with ``service.stopping``) on a
SQLite file: intake does not depend on the store's backend.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from runtimekit import PARTNERS, Home, case, make_home, sha256, wait_for, workspace_fixture, x12  # noqa: F401

from gateway.runtime.service import RunSummary, Service
from gateway.store import Archive, Store, StoreUnavailableError
from gateway.workspace import Workspace

INVOICE = case("medsupply", "810-invoice.edi")
INVOICE_CASE = PARTNERS / "medsupply/cases/810-invoice.edi"


def sqlite_home(tmp_path: Path, **settings: float) -> Home:
    return make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", **settings)


def files(home: Home) -> dict[str, str]:
    """File name → status, from the ledger."""
    with Store(home.store_url) as store:
        return {f.name: f.status for f in store.list_files(limit=500)}


@contextmanager
def running(service: Service) -> Iterator[Service]:
    """``run_forever`` in a thread until the block ends."""
    result: list[RunSummary] = []
    thread = threading.Thread(target=lambda: result.append(service.run_forever()), daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.inbox._observer is not None, 10, "the watcher to start")
        yield service
    finally:
        service.stopping.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "run_forever did not stop within 10 s of stopping.set()"
        assert result, "run_forever did not return its summary"
        service.store.close()


def test_partial_hidden_and_deep_names_are_never_taken(tmp_path: Path, workspace: Workspace) -> None:
    home = sqlite_home(tmp_path)
    never = [
        ("x.edi.part", "medsupply"),
        ("x.edi.tmp", "medsupply"),
        ("x.edi.filepart", None),
        ("x.partial", None),
        (".x.edi", "medsupply"),
        (".x.edi", None),
    ]
    for name, folder in never:
        home.drop(name, INVOICE, folder)
    (home.inbox / ".staging").mkdir()
    (home.inbox / ".staging" / "x.edi").write_bytes(INVOICE)
    (home.inbox / "medsupply" / "nested").mkdir()
    (home.inbox / "medsupply" / "nested" / "x.edi").write_bytes(INVOICE)
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    service = home.service(workspace)
    service.run_once()
    service.store.close()
    assert files(home) == {"810-invoice.edi": "processed"}
    left = set(home.inbox_leftovers())
    assert left == {f"{folder}/{name}" if folder else name for name, folder in never} | {
        ".staging/x.edi",
        "medsupply/nested/x.edi",
    }


def test_growing_file_is_taken_once_stable_and_complete(tmp_path: Path, workspace: Workspace) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0.5, rescan_seconds=0.2)
    data = x12(PARTNERS / "medsupply/cases/810-invoice.edi", 700, sets=20, tag="grow")
    chunks = [data[i : i + len(data) // 8 + 1] for i in range(0, len(data), len(data) // 8 + 1)]
    target = home.inbox / "medsupply" / "growing.edi"
    done = threading.Event()

    def write_slowly() -> None:
        with open(target, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                out.flush()
                time.sleep(0.2)  # shorter than stable_seconds: never looks finished while growing
        done.set()

    with running(home.service(workspace)):
        writer = threading.Thread(target=write_slowly)
        writer.start()
        wait_for(lambda: files(home).get("growing.edi") == "processed", 20, "the growing file to be processed")
        writer.join()
        assert done.is_set()
    with Store(home.store_url) as store:
        (row,) = store.list_files()
        assert (row.size, row.sha256) == (len(data), sha256(data)), "archived before it was complete"
        assert Archive(home.archive).read(row.sha256) == data
        assert len(store.file_tree(row.id).interchanges[0].groups[0].sets) == 20
    assert len(chunks) >= 8 and home.inbox_leftovers() == []


def test_files_present_at_start_up_are_taken(tmp_path: Path, workspace: Workspace) -> None:
    home = sqlite_home(tmp_path)
    for n in range(5):
        home.drop(f"inv-{n}.edi", x12(PARTNERS / "medsupply/cases/810-invoice.edi", 800 + n, tag=f"s{n}"), "medsupply")
    service = home.service(workspace)
    with running(service):
        wait_for(lambda: sorted(files(home).values()) == ["processed"] * 5, 20, "the five files to be processed")
    assert service.summary.received == 5 and service.summary.documents == 5
    assert home.inbox_leftovers() == []


def test_a_missed_event_is_found_by_the_rescan(tmp_path: Path, workspace: Workspace) -> None:
    home = sqlite_home(tmp_path, rescan_seconds=0.5)
    service = home.service(workspace)
    with running(service):
        service.inbox.stop()  # the watcher is gone: no event will report the next file
        assert service.inbox._observer is None
        home.drop("810-invoice.edi", INVOICE, "medsupply")
        started = time.monotonic()
        wait_for(lambda: files(home).get("810-invoice.edi") == "processed", 10, "the rescan to find the file")
        assert time.monotonic() - started < 5


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, as a live taker in another process does."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


def test_a_live_takers_claim_is_left_alone_a_dead_ones_is_retaken(tmp_path: Path, workspace: Workspace) -> None:
    """Claims are judged by their lock, not their age: an old file being taken right now is not stolen,
    and a dead taker's fresh claim is retaken at once (not after the lease time)."""
    home = sqlite_home(tmp_path, lease_seconds=30)
    live = home.inbox / "medsupply" / ".taking.otherhost:42.live.edi"
    live.write_bytes(INVOICE)
    old = time.time() - 3600
    os.utime(live, (old, old))  # dropped an hour ago, claimed just now by a worker still at it
    dead = home.inbox / ".taking.otherhost:43.dead.edi"
    dead.write_bytes(x12(PARTNERS / "summitmed/cases/810-contract-price.edi", 901))
    service = home.service(workspace)
    with locked(live):
        service.run_once()
        assert live.exists(), "a live taker's claim was renamed back"
        assert files(home) == {"dead.edi": "processed"}, "the dead taker's claim was not retaken"
    service.run_once()  # the live taker died without letting go: now its claim is retaken too
    service.store.close()
    assert files(home) == {"dead.edi": "processed", "live.edi": "processed"}
    assert home.inbox_leftovers() == []


def test_a_file_another_worker_is_taking_is_skipped(tmp_path: Path, workspace: Workspace) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    path = home.drop("810-invoice.edi", INVOICE, "medsupply")
    service = home.service(workspace)
    service.inbox.scan()
    (cand,) = service.inbox.ready()
    with locked(path):
        taken = service.intake.take(cand, service.clock().date())
    assert (taken.outcome, taken.reason) == ("skipped", "being taken by another worker")
    assert path.exists() and files(home) == {}
    service.store.close()


def test_a_file_whose_intake_failed_is_put_back_and_taken_later(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is down while a file is being taken: the file goes back under its name (not left as a
    hidden claim nobody looks at until a restart), and is taken once the store is back."""
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    service = home.service(workspace)
    record_files = service.store.record_files

    def down(*args: object, **kwargs: object) -> None:
        raise StoreUnavailableError("the database is restarting")

    monkeypatch.setattr(service.store, "record_files", down)
    service.inbox.scan()
    assert service.take_ready() == 0
    assert home.inbox_leftovers() == ["medsupply/810-invoice.edi"]
    monkeypatch.setattr(service.store, "record_files", record_files)
    service.run_once()
    service.store.close()
    assert files(home) == {"810-invoice.edi": "processed"} and home.inbox_leftovers() == []


def backlog(tmp_path: Path, n: int, *, first: int, tag: str) -> Home:
    """A deployment taking 4 files a batch, with ``n`` invoices already in its inbox, older than the stable time."""
    home = sqlite_home(tmp_path, batch=4)
    for i in range(n):
        home.drop(f"810-{i:03d}.edi", x12(INVOICE_CASE, first + i, tag=f"{tag}{i}"), "medsupply")
    time.sleep(0.2)
    return home


def test_the_daemon_processes_while_a_big_inbox_is_still_being_taken_in(tmp_path: Path, workspace: Workspace) -> None:
    # Taking in every ready file before processing any made a steady drop wait in the ledger (processing got
    # one batch between two intakes); the daemon now takes a batch in and processes one, in turn.
    home = backlog(tmp_path, 40, first=900, tag="d")
    with running(home.service(workspace)):
        wait_for(lambda: list(files(home).values()).count("processed") == 40, 60, "the 40 files processed")
    with Store(home.store_url) as store:
        rows = store.list_files(limit=100)
    first_results = min(r.results_at for r in rows if r.results_at is not None)
    last_received = max(r.received_at for r in rows)
    assert first_results < last_received, "every file was taken in before the first was processed"


def test_gateway_run_once_also_processes_while_the_inbox_is_taken_in(tmp_path: Path, workspace: Workspace) -> None:
    # `--once` took every ready file in before processing any: its delivery processes idled meanwhile.
    home = backlog(tmp_path, 40, first=950, tag="o")
    service = home.service(workspace)
    summary = service.run_once()
    service.store.close()
    assert summary.received == 40 and list(files(home).values()).count("processed") == 40
    with Store(home.store_url) as store:
        rows = store.list_files(limit=100)
    first_results = min(r.results_at for r in rows if r.results_at is not None)
    assert first_results < max(r.received_at for r in rows), "every file was taken in before the first was processed"


def test_once_with_intake_failing_part_way_names_every_file_left(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Taken a batch at a time, the files past the failing batches were never tried: the last try takes every
    # ready file, so each one left in the inbox is named (exit 3), as when all were taken in first.
    home = backlog(tmp_path, 20, first=980, tag="f")
    service = home.service(workspace)
    real, calls = service.intake.take_many, []

    def failing_after_two(batch: list, today: object) -> list:
        calls.append(len(batch))
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return real(batch, today)

    monkeypatch.setattr(service.intake, "take_many", failing_after_two)
    monkeypatch.setattr(service.stopping, "wait", lambda seconds: False)  # no 1 s pauses between the tries
    summary = service.run_once()
    service.store.close()
    assert summary.received == 8
    assert len(summary.not_taken) == 12 and len(home.inbox_leftovers()) == 12
