"""The SLA timer of `gateway run`: an 855 that never comes opens `ack_late` (and its alert) once the
clock passes the SLA, with no new document; one worker takes each turn. The service runs in process on
a clock the test moves (the SLA is hours long), against SQLite and PostgreSQL, with the alert POSTed to
a REST endpoint on loopback."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from runtimekit import REPO, Home, make_home, pg_url_fixture, store_url_fixture  # noqa: F401 - fixtures
from support.httpd import Receiver
from test_runtime_acks import Clock, service
from test_runtime_recon import _drop, hooks_destination, recon_home, set_reconciliation
from test_runtime_recon_outputs import _posted

from gateway.store import Store


def _deploy(tmp_path: Path, store_url: str, hooks: Receiver, every: float) -> Home:
    home = recon_home(
        tmp_path,
        store_url,
        "hooks",
        hooks_destination(hooks),
        kinds=("recon_exception",),
        processing={"sla_check_seconds": every},
    )
    set_reconciliation(home, slas={"ack_hours": 4})
    _drop(home.path / "send" / "medsupply", "po.json", (REPO / "samples/canonical/purchase-order.json").read_bytes())
    return home


def _kinds(home: Home) -> list[str]:
    with Store(home.store_url) as store:
        return sorted(e.kind for e in store.list_exceptions(limit=100))


def _clock() -> Clock:
    clock = Clock()
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the sample order's day: nothing due but the 855
    return clock


def test_an_overdue_acknowledgment_opens_on_the_timer_once_per_turn(tmp_path: Path, store_url: str) -> None:
    with Receiver() as hooks:
        home = _deploy(tmp_path, store_url, hooks, every=3600)  # a turn an hour
        clock = _clock()
        svc, ws = service(home, clock)
        svc.run_once()  # the 850 sent at 09:00
        assert svc.check_slas() == 1 and _kinds(home) == []  # 09:00: the chain is looked at, nothing due yet
        clock.advance(hours=0.5)
        assert svc.check_slas() == 0  # not this worker's turn for another half hour

        clock.advance(hours=4.5)  # 14:00: no 855 within 4 hours, and no document came
        other, _ = service(home, clock, ws)  # a second worker on the same store
        assert other.check_slas() == 1  # its turn: the one before was five hours ago
        assert svc.check_slas() == 0, "two workers took the same turn"
        assert _kinds(home) == ["ack_late"]
        (alert,) = _posted(hooks, "recon_exception")
        assert alert["kind"] == "ack_late" and "4 hours" in alert["reason"], alert

        clock.advance(hours=1)
        assert svc.check_slas() == 1  # the next turn: the exception is open already, nothing new
        assert _kinds(home) == ["ack_late"] and len(_posted(hooks, "recon_exception")) == 1
        other.store.close()
        svc.store.close()


def test_the_daemon_runs_the_timer_without_any_new_document(tmp_path: Path, store_url: str) -> None:
    with Receiver() as hooks:
        home = _deploy(tmp_path, store_url, hooks, every=0.2)
        clock = _clock()
        first, ws = service(home, clock)
        first.run_once()  # the 850 sent (a run --once closes its clients: the daemon is a new process)
        first.store.close()
        assert _kinds(home) == []
        clock.advance(hours=5)
        svc, _ = service(home, clock, ws)
        daemon = threading.Thread(target=svc.run_forever, name="gateway run")
        daemon.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _posted(hooks, "recon_exception"):
                time.sleep(0.05)
        finally:
            svc.stopping.set()
            svc.inbox._wake.set()
            daemon.join(30)
        assert not daemon.is_alive()
        assert [a["kind"] for a in _posted(hooks, "recon_exception")] == ["ack_late"]
        assert _kinds(home) == ["ack_late"]
        svc.store.close()


def test_zero_turns_the_timer_off(tmp_path: Path, store_url: str) -> None:
    with Receiver() as hooks:
        home = _deploy(tmp_path, store_url, hooks, every=0)
        clock = _clock()
        svc, _ = service(home, clock)
        svc.run_once()
        clock.advance(hours=5)
        assert svc.check_slas() == 0 and _kinds(home) == []
        svc.store.close()
        assert hooks.received == []
