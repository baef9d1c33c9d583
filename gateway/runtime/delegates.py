"""Delivery processes beside ``gateway run`` (``processing.delivery_workers``).

The deliveries a results commit records are rows of the ledger (the transactional outbox), free for any
worker to lease: processes of their own can deliver them while the service's process goes on with the
next batch, each on a core of its own (threads in one process share one interpreter lock, and delivery
costs about as much CPU as processing: docs/performance.md, "Delivery processes").

Each delegate is the same program (``gateway run --deliveries-only``, built by the composition root) with
a pipe on its standard input: a byte on it says new deliveries were recorded (it looks at once instead of
at its next poll); the service closing it, or dying (even by ``kill -9``), is its end of input. Under
``--once`` a delegate then delivers until a round finds nothing due and exits; as a service it exits
after the round in hand. One that dies while the service runs is started again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence

__all__ = ["Delegates", "delegate_name", "watch_end_of_input"]

log = logging.getLogger("gateway.run")

RESTART_AFTER_SECONDS = 5.0
"""A delegate that died is started again at most this often."""
STOP_SECONDS = 10.0
"""A service's delegates are given this long to end their round once told to stop, then terminated."""


def delegate_name(worker: str, n: int) -> str:
    """The worker name of service ``worker``'s delivery process ``n`` (from 1): what its attempts record."""
    return f"{worker}/d{n}"


class Delegates:
    """The delivery processes of one service: started, watched, told to finish, waited for."""

    def __init__(
        self, commands: Sequence[Sequence[str]], *, cwd: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.commands = [list(c) for c in commands]
        self.cwd = cwd
        self.env = None if env is None else dict(env)  # (what must not show in `ps`: the store's password)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * len(self.commands)
        self._started_at = [0.0] * len(self.commands)

    def __len__(self) -> int:
        return len(self.commands)

    def start(self) -> None:
        """Start every delegate that is not running."""
        for i in range(len(self.commands)):
            if self.procs[i] is None:
                self._start(i)

    def _start(self, i: int) -> None:
        self._started_at[i] = time.monotonic()
        proc = subprocess.Popen(  # stderr is the service's: their log lines join its own
            self.commands[i], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=self.cwd, env=self.env
        )
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)  # a nudge never waits on a delegate that is busy
        self.procs[i] = proc
        log.info("delivery process %d started (pid %d)", i + 1, proc.pid)

    def nudge(self) -> None:
        """Tell every delegate new deliveries were recorded (a byte on its pipe; never blocks: a full pipe
        already holds a wake-up)."""
        for proc in self.procs:
            if proc is None or proc.stdin is None or proc.stdin.closed:
                continue
            with contextlib.suppress(BlockingIOError, BrokenPipeError):  # (a dead one is restarted by check)
                os.write(proc.stdin.fileno(), b"\n")

    def check(self) -> None:
        """Start again a delegate that died (logged with its exit code), at most every few seconds."""
        for i, proc in enumerate(self.procs):
            if proc is None or proc.poll() is None:
                continue
            if time.monotonic() - self._started_at[i] < RESTART_AFTER_SECONDS:
                continue
            log.error("delivery process %d (pid %d) ended with exit code %s; starting it again", i + 1, proc.pid,
                      proc.returncode)  # fmt: skip
            self._close(proc)
            self._start(i)

    def finish(self, *, stopping: threading.Event | None = None, limit: float | None = None) -> list[int]:
        """Tell every delegate the service is done (end of its input) and wait for them; returns their exit
        codes. ``stopping`` set meanwhile, or ``limit`` seconds passed: the rest are terminated."""
        running = [p for p in self.procs if p is not None]
        for proc in running:
            self._close(proc)
        deadline = None if limit is None else time.monotonic() + limit
        for proc in running:
            while proc.poll() is None:
                late = deadline is not None and time.monotonic() >= deadline
                if late or (stopping is not None and stopping.is_set()):
                    _terminate(proc)
                    break
                try:
                    proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
        codes = [p.returncode for p in running]
        for i, proc in enumerate(running):
            if proc.returncode:
                log.error("delivery process %d (pid %d) ended with exit code %d", i + 1, proc.pid, proc.returncode)
        self.procs = [None] * len(self.commands)
        return codes

    def abandon(self) -> None:
        """Tell every delegate to stop now and wait for none (the service stops at once: SIGTERM while the
        store hung): the end of its input, and SIGTERM, which interrupts one hung on the store as well."""
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                self._close(proc)
                proc.terminate()
        self.procs = [None] * len(self.commands)

    @staticmethod
    def _close(proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # it died: nothing was waiting to be read
                proc.stdin.close()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (its round is cut as a crash would cut it: every delivery is leased, retried later), then
    SIGKILL if it has not ended within a few seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def watch_end_of_input(
    read: Callable[[int], bytes], ended: threading.Event, woken: threading.Event
) -> threading.Thread:
    """In a delegate: a thread that sets ``woken`` at each nudge, and ``ended`` (and ``woken``) at the end of
    its input (the service closed the pipe or died). ``read``: ``os.read`` on its standard input."""

    def watch() -> None:
        try:
            while read(4096):
                woken.set()
        except (OSError, ValueError):  # closed under us: an end all the same
            pass
        ended.set()
        woken.set()

    thread = threading.Thread(target=watch, name="end-of-input", daemon=True)
    thread.start()
    return thread
