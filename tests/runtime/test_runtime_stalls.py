"""A worker that lost its lease between its results commit and its publication, and a database that stops
answering (a TCP proxy in front of PostgreSQL that stalls): nothing is published twice, a stalled store is
logged, cut after its timeout, and SIGTERM is honoured at once.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 - fixtures
    GATEWAY,
    PARTNERS,
    Home,
    Running,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
    workspace_fixture,
    x12,
)
from sqlalchemy.engine import make_url

from gateway.runtime.process import Processor
from gateway.runtime.service import Interrupted
from gateway.store import LeaseError, Store, StoreError
from gateway.workspace import Workspace

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"


def _outputs(home: Home) -> dict[str, int]:
    """Every published output (acks and canonical JSON) → its inode (a rewrite changes it)."""
    return {
        p.relative_to(home.outbox).as_posix(): p.stat().st_ino
        for p in home.outbox.rglob("*")
        if p.is_file() and not p.name.startswith(".") and ".tmp" not in p.parts
    }


def test_a_worker_that_lost_its_lease_after_its_commit_publishes_nothing(
    store_url: str, tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """w1 commits its results, is stopped (SIGSTOP) before publishing, w2 takes the file over and writes
    the outputs; w1 resumes: it must not write the 997 and the invoice JSON a second time."""
    home = make_home(tmp_path, store_url, stable_seconds=0)
    svc = home.service(workspace, worker="w1")
    try:
        for n in range(3):
            home.drop(f"inv{n}.edi", x12(TEMPLATE, 800 + n, tag=f"l{n}"), "medsupply")
        svc.inbox.scan()
        assert svc.take_ready() == 3

        def worker(name: str) -> Processor:
            return Processor(
                svc.store,
                svc.archive,
                svc.processor.translator,
                outbox=home.outbox,
                worker=name,
                clock=lambda: datetime.now(UTC),
                lease_seconds=30,
                deliverer=svc.deliverer.for_worker(name),
            )

        rows = svc.store.claim_files("w1", 5, 0.3)
        w1 = worker("w1")
        real_record = w1._record
        taken_over: dict[str, int] = {}

        def record_then_stall(plans: list[object], works: list[object], claim: object = None) -> None:
            real_record(plans, works, claim)  # type: ignore[arg-type]
            time.sleep(0.4)  # stopped here; meanwhile its leases expire and w2 takes the files over
            for _ in rows:
                (row,) = svc.store.claim_files("w2", 1, 30)
                assert worker("w2").process(row).status == "processed"
            taken_over.update(_outputs(home))

        monkeypatch.setattr(w1, "_record", record_then_stall)
        results = w1.process_batch(rows)
        assert all(isinstance(r, LeaseError) for r in results), results
        assert taken_over and _outputs(home) == taken_over, "the stale worker wrote outputs again"
        with Store(home.store_url) as store:
            assert {f.status for f in store.list_files()} == {"processed"}
            assert len(store.list_outbound(limit=100)) == 3, "one ack per file, numbers not drawn twice"
    finally:
        svc.store.close()


# --- a database that stops answering -----------------------------------------------------------


class StallingProxy:
    """A TCP proxy on loopback in front of PostgreSQL that can stop forwarding (connections stay open)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stalled = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.server, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        while not self.done.is_set():
            for key, _ in sel.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self.server:
                    client, _ = self.server.accept()
                    try:
                        upstream = socket.create_connection(self.target, timeout=5)
                    except OSError:
                        client.close()
                        continue
                    peers[client], peers[upstream] = upstream, client
                    sel.register(client, selectors.EVENT_READ)
                    sel.register(upstream, selectors.EVENT_READ)
                    continue
                if self.stalled.is_set():
                    continue  # read nothing, answer nothing: the peer waits
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                other = peers.get(sock)
                if not data or other is None:
                    for s in (sock, other):
                        if s is not None:
                            with contextlib.suppress(KeyError, ValueError):
                                sel.unregister(s)
                            s.close()
                            peers.pop(s, None)
                    continue
                with contextlib.suppress(OSError):
                    other.sendall(data)
            if self.stalled.is_set():
                time.sleep(0.05)
        for s in peers:
            s.close()
        self.server.close()

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)


@pytest.fixture(name="proxied")
def proxied_fixture(pg_url: str, tmp_path: Path) -> Iterator[tuple[Home, StallingProxy]]:
    url = make_url(pg_url)
    proxy = StallingProxy((url.host or "127.0.0.1", url.port or 5432))
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    home = make_home(
        tmp_path,
        through,
        stable_seconds=0,
        extra={"processing": {"store_stall_seconds": 1, "store_timeout_seconds": 4}},
    )
    yield home, proxy
    proxy.close()


def _wait_stderr(run: Running, text: str, timeout: float) -> None:
    wait_for(lambda: text in run.stderr() or run.proc.poll() is not None, timeout, repr(text))
    assert text in run.stderr(), run.stderr()[-3000:]


def test_a_stalled_store_is_logged_cut_and_the_service_recovers(
    proxied: tuple[Home, StallingProxy], request: pytest.FixtureRequest
) -> None:
    home, proxy = proxied
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    proxy.stalled.set()
    home.drop("inv.edi", x12(TEMPLATE, 950, tag="s"), "medsupply")
    _wait_stderr(run, "store stalled:", 15)
    _wait_stderr(run, "cut after", 15)
    proxy.stalled.clear()
    with Store(home.store_url.replace(f":{proxy.port}/", ":5432/")) as store:
        wait_for(lambda: [f.status for f in store.list_files()] == ["processed"], 60, "the file once the store answers")
    assert run.stop(timeout=20) == 0


def _never_cut(home: Home, request: pytest.FixtureRequest, *, delivery_workers: int = 0) -> Running:
    """``gateway run`` started on ``home`` with no store call cut (its timeout 600 s): SIGTERM alone ends it."""
    path = home.path / "gateway.yaml"
    settings = '"store_timeout_seconds": 600, "delivery_workers": ' + str(delivery_workers)
    path.write_text(path.read_text("utf-8").replace('"store_timeout_seconds": 4', settings), "utf-8")
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    return run


def test_sigterm_is_honoured_while_the_store_hangs(
    proxied: tuple[Home, StallingProxy], request: pytest.FixtureRequest
) -> None:
    home, proxy = proxied
    run = _never_cut(home, request)
    proxy.stalled.set()
    home.drop("inv.edi", x12(TEMPLATE, 951, tag="t"), "medsupply")
    _wait_stderr(run, "store stalled:", 15)
    assert run.stderr().count("store stalled:") == 1, "a stall is logged once, not at every watchdog tick"
    run.proc.send_signal(signal.SIGUSR1)  # an operator asks where it waits: every thread's stack, no exit
    _wait_stderr(run, "most recent call first", 10)
    assert run.proc.poll() is None and "_deliver_forever" in run.stderr()
    started = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    run.proc.wait(timeout=15)
    assert time.monotonic() - started < 5, "SIGTERM waited for the database"
    assert "stopped while the store hung" in run.stderr()
    proxy.stalled.clear()
    assert os.path.exists(home.inbox / "medsupply" / "inv.edi") or list(home.archive.glob("??/*"))


def test_sigterm_while_the_store_hangs_stops_the_service_and_its_delivery_processes_at_once(
    proxied: tuple[Home, StallingProxy], request: pytest.FixtureRequest
) -> None:
    """``processing.delivery_workers``: the service interrupted does not wait for its delivery processes
    (hung on the same store); it tells them to stop (SIGTERM, which interrupts their hung call too)."""
    home, proxy = proxied
    run = _never_cut(home, request, delivery_workers=1)
    wait_for(lambda: "delivery process 1 started" in run.stderr(), 30, "the delivery process")
    proxy.stalled.set()
    home.drop("inv.edi", x12(TEMPLATE, 953, tag="d"), "medsupply")
    _wait_stderr(run, "store stalled:", 15)
    time.sleep(2)  # the delivery process's own round hangs past the interruption's 2 s too
    started = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    run.proc.wait(timeout=30)
    assert time.monotonic() - started < 5, "SIGTERM waited for the delivery processes"
    wait_for(lambda: _delegate_argvs(home) == [], 15, "the delivery process to end with its service")
    proxy.stalled.clear()


def _delegate_argvs(home: Home) -> list[bytes]:
    """The command lines of this deployment's delivery processes still running."""
    out = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
            if b"--deliveries-only" in argv and str(home.path).encode() in argv:
                out.append(argv)
    return out


def test_an_interruption_its_call_turns_into_a_store_error_still_stops_at_once(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while the store hangs raises inside the hung call; that call's clean-up (the connection's
    reset on its dead socket) can fail and let its own error out in place of the interruption. The loop
    must still stop as interrupted, and wait for no delivery (a CI run waited 5 s on one)."""
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")
    service = home.service(workspace)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    waited: list[object] = []
    try:
        service.install_signal_handlers()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        monkeypatch.setattr(service.store.database, "stalled", lambda: ("record 1 file(s)", 3.0))

        def hung_intake(limit: int | None = None) -> int:
            try:
                handler(signal.SIGTERM, None)  # delivered inside the hung call
            except Interrupted as exc:
                raise StoreError("can't change 'autocommit' now: connection in transaction status ACTIVE") from exc
            raise AssertionError("the handler did not interrupt a call hung past its limit")

        monkeypatch.setattr(service, "take_ready", hung_intake)
        monkeypatch.setattr(service, "_finish_deliveries", waited.append)
        caplog.set_level("ERROR", "gateway.run")
        summary = service.run_forever()
        assert summary.interrupted, "the process would join its threads, one of them hung on the store"
        assert waited == [], "the deliveries in flight were waited for"
        assert "stopped while the store hung (record 1 file(s), 3 s)" in caplog.text
        assert "retrying in 5 s" not in caplog.text
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)
        service.store.close()


def test_a_loop_still_not_ended_after_its_interruption_is_ended_with_the_process(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The last resort: interrupted while the store hung, a loop that still has not ended (a clean-up
    waiting on the dead socket, out of the handler's reach) is ended by the watchdog with the process."""
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")
    service = home.service(workspace)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    ended = threading.Event()
    codes: list[int] = []

    def exit_now(code: int) -> None:  # os._exit, recorded; the hung clean-up then lets the loop go
        codes.append(code)
        ended.set()

    try:
        service.install_signal_handlers()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        monkeypatch.setattr(service.store.database, "stalled", lambda: ("record 1 file(s)", 3.0))
        monkeypatch.setattr("gateway.runtime.service.os._exit", exit_now)
        monkeypatch.setattr("gateway.runtime.service.logging.shutdown", lambda: None)
        interrupted_at: list[float] = []

        def hung_intake(limit: int | None = None) -> int:
            try:
                handler(signal.SIGTERM, None)
            except Interrupted:
                interrupted_at.append(time.monotonic())
                service.interruptible = False  # the clean-up now waits where no signal reaches it
                assert ended.wait(30), "the watchdog never ended the process"
                raise StoreError("the clean-up's own error, once the socket is closed") from None
            raise AssertionError("the handler did not interrupt a call hung past its limit")

        monkeypatch.setattr(service, "take_ready", hung_intake)
        caplog.set_level("ERROR", "gateway.run")
        summary = service.run_once()
        waited = time.monotonic() - interrupted_at[0]
        assert codes and codes[0] == 4, "run --once cut: the store's exit code"
        assert 3 <= waited < 10, waited
        assert "the loop did not end within 4 s; the process ends now" in caplog.text
        assert summary.interrupted
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)
        service.store.close()


def test_once_exits_4_when_the_store_hangs_from_the_start(proxied: tuple[Home, StallingProxy]) -> None:
    home, proxy = proxied
    home.drop("inv.edi", x12(TEMPLATE, 952, tag="u"), "medsupply")
    proxy.stalled.set()
    started = time.monotonic()
    run = subprocess.run(
        [*GATEWAY, "run", "--once", "--home", str(home.path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 4, run.stderr
    assert time.monotonic() - started < 30
    assert "store stalled:" in run.stderr and "cut after" in run.stderr
    assert home.inbox_leftovers() == ["medsupply/inv.edi"]
