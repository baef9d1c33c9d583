"""The poller's schedule without a server: a partner whose poll hangs never holds up another's, failures back
off with jitter up to a cap, and each poll's outcome lands in the status file `gateway status` reads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any

from gateway.partners.sftp_options import SftpOptions
from gateway.runtime.sftp_pull import MAX_BACKOFF_SECONDS, ChannelStates, Poller, PollResult, backoff, read_states


class FakePuller:
    def __init__(self, partner: str, *, hang: threading.Event | None = None, fail: bool = False) -> None:
        self.partner = partner
        self.options = SftpOptions(poll_seconds=0.05)
        self.hang = hang
        self.fail = fail
        self.polls = 0

    def poll(self) -> PollResult:
        self.polls += 1
        if self.hang is not None:
            self.hang.wait(10)
        if self.fail:
            return PollResult(self.partner, error="cannot connect: refused", kind="connect")
        return PollResult(self.partner, taken=[self.polls], backlog=0)


def test_a_hanging_partner_never_delays_the_others(tmp_path: Path) -> None:
    release = threading.Event()
    slow, quick = FakePuller("slow", hang=release), FakePuller("quick")
    taken: list[int] = []
    poller = Poller([slow, quick], ChannelStates(tmp_path), workers=2, on_taken=taken.extend)  # type: ignore[list-item]
    stop = threading.Event()
    runner = threading.Thread(target=poller.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while quick.polls < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert quick.polls >= 4 and slow.polls == 1  # quick polled again and again while slow hangs
    finally:
        release.set()
        stop.set()
        runner.join(5)
        poller.close()
    # The poll that took quick to 4 may still be recording its outcome on its pool thread: wait for it.
    wait(list(poller.running.values()), timeout=5)
    states = read_states(tmp_path)
    assert states["quick"]["taken"] >= 4 and "last_success" in states["quick"]
    assert taken


def test_failures_back_off_with_jitter_up_to_a_cap(tmp_path: Path) -> None:
    assert backoff(1, 5, rand=lambda: 0.5) == 5
    assert backoff(3, 5, rand=lambda: 0.5) == 20
    assert backoff(30, 5, rand=lambda: 0.5) == MAX_BACKOFF_SECONDS
    low, high = backoff(2, 5, rand=lambda: 0.0), backoff(2, 5, rand=lambda: 1.0)
    assert (round(low, 6), round(high, 6)) == (8.0, 12.0)
    failing = FakePuller("down", fail=True)
    poller = Poller([failing], ChannelStates(tmp_path))  # type: ignore[list-item]
    try:
        poller.poll_all(timeout=5)
        poller.poll_all(timeout=5)
        assert poller.failures["down"] == 2
        assert poller.due["down"] - time.monotonic() > 0.05 * 1.5  # longer than its poll interval now
    finally:
        poller.close()
    state: dict[str, Any] = read_states(tmp_path)["down"]
    assert state["error_kind"] == "connect" and "last_success" not in state
