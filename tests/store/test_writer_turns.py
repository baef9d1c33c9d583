"""SQLite writers of one ledger take turns on a lock file before SQLite's own write lock (``WriterTurns``)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.store import Store
from gateway.store import engine as engine_module


@contextmanager
def _turn_held_elsewhere(database: Path) -> Iterator[None]:
    """The writers' lock file locked by another open file (as another process of the gateway holds it)."""
    fd = os.open(f"{database}-writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_in_thread(store: Store) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def write() -> None:
        with store.database.write("a write waiting for its turn") as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS turns_probe (x INTEGER)"))
        done.set()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread, done


def test_a_writer_waits_for_its_turn_and_goes_on_as_soon_as_the_other_writer_ends(tmp_path: Path) -> None:
    database = tmp_path / "gateway.sqlite"
    with Store(f"sqlite:///{database}") as store:
        store.upgrade()
        with _turn_held_elsewhere(database):
            thread, done = _write_in_thread(store)
            assert not done.wait(0.3), "the write began while another writer held the turn"
            ended = time.monotonic()
        assert done.wait(5)
        assert time.monotonic() - ended < 0.25, "the waiting writer went on within a few milliseconds"
        thread.join(5)
        (n, waited, held) = store.database.write_totals()["a write waiting for its turn"]
        assert n == 1 and waited >= 0.3 and held < 0.25, "the wait for the turn is counted as waiting, not holding"
        assert stat_mode(Path(f"{database}-writers")) == 0o600


def test_a_turn_not_had_in_time_leaves_the_writer_to_sqlites_own_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn is a queue, not the lock: a writer stuck holding it (or a lock file left locked) costs the
    others TURN_SECONDS, and they go on; SQLite's lock still keeps the data safe."""
    monkeypatch.setattr(engine_module, "TURN_SECONDS", 0.2)
    database = tmp_path / "gateway.sqlite"
    with Store(f"sqlite:///{database}") as store:
        store.upgrade()
        with _turn_held_elsewhere(database):
            started = time.monotonic()
            thread, done = _write_in_thread(store)
            assert done.wait(5)
            assert 0.15 <= time.monotonic() - started < 5  # the turn given up after about 0.2 s
            thread.join(5)


def test_the_threads_of_one_process_take_turns_without_losing_a_write(tmp_path: Path) -> None:
    database = tmp_path / "gateway.sqlite"
    with Store(f"sqlite:///{database}") as store:
        store.upgrade()
        with store.database.write("make the counter") as conn:
            conn.execute(text("CREATE TABLE counter (n INTEGER)"))
            conn.execute(text("INSERT INTO counter VALUES (0)"))

        def bump() -> None:
            for _ in range(50):
                with store.database.write("bump the counter") as conn:
                    n = conn.execute(text("SELECT n FROM counter")).scalar_one()
                    conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

        threads = [threading.Thread(target=bump) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        with store.database.read("the counter") as conn:
            assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 200


class _Interrupted(BaseException):
    """As the service's signal handler raises (``gateway.runtime.service.Interrupted``)."""


def test_a_turn_interrupted_as_its_lock_file_was_taken_frees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal handler runs when a call returns: one raising just after the flock was taken must not leave
    it held, or every write of the other processes waits TURN_SECONDS."""
    database = tmp_path / "gateway.sqlite"
    take = engine_module.WriterTurns._lock_file

    def taken_then_interrupted(turns: engine_module.WriterTurns, deadline: float) -> bool:
        assert take(turns, deadline)
        raise _Interrupted("stopped while the store hung")

    with Store(f"sqlite:///{database}") as store:
        store.upgrade()
        monkeypatch.setattr(engine_module.WriterTurns, "_lock_file", taken_then_interrupted)
        with pytest.raises(_Interrupted), store.database.write("interrupted as it took its turn"):
            pass
        fd = os.open(f"{database}-writers", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process's turn, at once
        finally:
            os.close(fd)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_write_totals_count_each_kind_of_write_with_its_wait_and_hold(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'gateway.sqlite'}") as store:
        db = store.database
        for files, pause in ((3, 0.0), (12, 0.1)):
            with db.write(f"record {files} file(s)") as conn:
                conn.execute(text("SELECT 1"))
                time.sleep(pause)
        with pytest.raises(ZeroDivisionError), db.write("a write that fails"):
            raise ZeroDivisionError
        totals = db.write_totals()
        summary = db.write_summary() or ""
    n, waited, held = totals["record N file(s)"]
    assert n == 2 and held >= 0.1 and waited < 1
    assert totals["a write that fails"][0] == 1
    assert summary.startswith("ledger writes: 3 transaction(s), ") and "record N file(s) " in summary


def test_a_kind_of_write_keeps_no_value_so_the_kinds_stay_few() -> None:
    """Kinds are a metric's label: a key or a count in ``what`` must not make a new one per transaction."""
    assert engine_module.write_kind("record 173 delivery attempt(s)") == "record N delivery attempt(s)"
    keys = {engine_module.write_kind(f"claim dedupe key {k!r}") for k in ("PO-1:ab", "PO-2:cd", "it's")}
    assert keys == {"claim dedupe key '…'", 'claim dedupe key "…"'}
