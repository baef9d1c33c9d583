"""The inbox's watchers on a real folder: inotify read directly (Linux) and watchdog (every other platform),
each tested alone with a stable time far longer than the test, so only the watcher's events can make a file
ready at once; and ``Inbox.ready(limit)``."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.channels import inotify
from gateway.channels.inbox import Inbox

WATCHERS = [
    pytest.param("inotify", marks=pytest.mark.skipif(not inotify.available(), reason="inotify exists on Linux only")),
    "watchdog",
]


@pytest.fixture(params=WATCHERS)
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    root = tmp_path / "inbox"
    (root / "medsupply").mkdir(parents=True)
    box = Inbox(root, stable_seconds=3600, rescan_seconds=3600, watcher=request.param)
    box.start()
    try:
        yield box
    finally:
        box.stop()


def ready_names(box: Inbox, timeout: float = 5.0) -> list[str]:
    """What becomes ready within ``timeout`` (the watchdog observer delays a rename by up to 0.5 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := box.ready():
            return [c.path.relative_to(box.root).as_posix() for c in found]
        box.wait(0.05)
    return []


def test_a_file_renamed_into_place_is_ready_at_once(inbox: Inbox) -> None:
    part = inbox.root / "medsupply" / ".order.edi.part"
    part.write_bytes(b"ISA*00*")
    os.rename(part, inbox.root / "medsupply" / "order.edi")
    assert ready_names(inbox) == ["medsupply/order.edi"]


def test_a_file_written_and_closed_is_ready_at_once_and_not_while_open(inbox: Inbox) -> None:
    path = inbox.root / "order.edi"
    with path.open("wb") as out:
        out.write(b"ISA*00*")
        out.flush()
        assert ready_names(inbox, timeout=1.0) == [], "taken while its writer still had it open"
    assert ready_names(inbox) == ["order.edi"]


def test_a_partner_folder_made_while_watching_is_watched(inbox: Inbox) -> None:
    folder = inbox.root / "newpartner"
    folder.mkdir()
    time.sleep(0.6)  # the watch on the new folder is added from the event
    part = folder / ".x.part"
    part.write_bytes(b"ISA*00*")
    os.rename(part, folder / "x.edi")
    ready = ready_names(inbox)
    assert ready == ["newpartner/x.edi"]


def test_a_folder_moved_in_with_files_already_inside_is_looked_through(inbox: Inbox, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "early.edi").write_bytes(b"ISA*00*")
    os.rename(outside, inbox.root / "latecomer")
    # No event names early.edi: it is found with the folder, then taken once nobody has it open for writing.
    assert ready_names(inbox) == ["latecomer/early.edi"]


def test_inotify_overflow_asks_for_a_rescan(tmp_path: Path) -> None:
    if not inotify.available():
        pytest.skip("inotify exists on Linux only")
    asked: list[str] = []
    watcher = inotify.InotifyWatcher(tmp_path, lambda path, closed: asked.append(path), lambda: asked.append("rescan"))
    watcher._dispatch(struct.pack("iIII", -1, 0x4000, 0, 0))  # IN_Q_OVERFLOW: events were lost
    assert asked == ["rescan"]


def test_an_overflow_makes_the_next_ready_scan(tmp_path: Path) -> None:
    box = Inbox(tmp_path, stable_seconds=0, rescan_seconds=3600)
    box.scan()
    (tmp_path / "missed.edi").write_bytes(b"ISA*00*")
    assert box.ready() == []  # no event, no scan due
    box.rescan_soon()
    assert [c.path.name for c in box.ready()] == ["missed.edi"]


def test_ready_hands_out_at_most_limit_and_keeps_the_rest(tmp_path: Path) -> None:
    box = Inbox(tmp_path, stable_seconds=0, rescan_seconds=3600)
    for i in range(10):
        (tmp_path / f"{i}.edi").write_bytes(b"ISA*00*")
    box.scan()
    first = box.ready(limit=3)
    assert len(first) == 3
    rest = box.ready()
    assert len(rest) == 7
    assert {c.path.name for c in first} | {c.path.name for c in rest} == {f"{i}.edi" for i in range(10)}


def test_an_unknown_watcher_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="watcher must be"):
        Inbox(tmp_path, watcher="poll")
