"""The inbox's watchers on a real folder: inotify read directly (Linux) and watchdog (every other platform),
each tested alone with a stable time far longer than the test, so only the watcher's events can make a file
ready at once; and ``Inbox.ready(limit)``."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def inotify_inbox(root: Path) -> Iterator[Inbox]:
    """An inbox on ``root`` watched by inotify alone (its rescans an hour apart), started, stopped at the end."""
    if not inotify.available():
        pytest.skip("inotify exists on Linux only")
    box = Inbox(root, stable_seconds=3600, rescan_seconds=3600, watcher="inotify")
    box.start()
    try:
        yield box
    finally:
        box.stop()


def rename_in(folder: Path, name: str) -> None:
    """Drop ``name`` in ``folder`` as an uploader finishes a file: written under a temporary name, renamed."""
    part = folder / f".{name}.part"
    part.write_bytes(b"ISA*00*")
    os.rename(part, folder / name)


def ready_names(box: Inbox, timeout: float = 5.0) -> list[str]:
    """What becomes ready within ``timeout`` (the watchdog observer delays a rename by up to 0.5 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := box.ready():
            return [c.path.relative_to(box.root).as_posix() for c in found]
        box.wait(0.05)
    return []


def test_a_file_renamed_into_place_is_ready_at_once(inbox: Inbox) -> None:
    rename_in(inbox.root / "medsupply", "order.edi")
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
    rename_in(folder, "x.edi")
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


def test_no_inotify_instance_left_leaves_the_rescans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if not inotify.available():
        pytest.skip("inotify exists on Linux only")
    real_init = inotify._LIBC.inotify_init1  # type: ignore[union-attr]

    def refused(self: inotify.InotifyWatcher) -> None:
        raise OSError(errno.EMFILE, "inotify_init1: Too many open files")  # max_user_instances reached

    monkeypatch.setattr(inotify.InotifyWatcher, "start", refused)
    box = Inbox(tmp_path, stable_seconds=0, rescan_seconds=0.2)
    box.start()  # the daemon still starts
    try:
        assert "files are found by the rescans only" in caplog.text
        assert box._observer is None  # not watchdog: on Linux it is inotify too, with the same limits
        (tmp_path / "x.edi").write_bytes(b"ISA*00*")
        assert ready_names(box) == ["x.edi"]  # found by a rescan
    finally:
        box.stop()
    forced = Inbox(tmp_path, watcher="inotify")
    with pytest.raises(OSError, match="Too many open files"):
        forced.start()
    assert inotify._LIBC.inotify_init1 is real_init  # type: ignore[union-attr]


def test_auto_watches_with_inotify_on_linux(tmp_path: Path) -> None:
    if not inotify.available():
        pytest.skip("inotify exists on Linux only")
    box = Inbox(tmp_path)
    box.start()
    try:
        assert isinstance(box._observer, inotify.InotifyWatcher) and box._observer.is_alive()
    finally:
        box.stop()


def test_an_inbox_that_is_a_symbolic_link_is_watched(tmp_path: Path) -> None:
    # (watchdog reports such events under the link's target, which the inbox does not take for its own)
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "inbox").symlink_to(real, target_is_directory=True)
    with inotify_inbox(tmp_path / "inbox") as box:
        rename_in(real, "x.edi")
        assert ready_names(box) == ["x.edi"]


@pytest.mark.parametrize("how", ["removed", "moved away"])
def test_an_inbox_gone_and_made_again_is_watched_again(
    how: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, a root that was removed (or moved away) and made again was found by the rescans only until
    the daemon restarted: here the rescans are an hour apart, so only its events make the file ready."""
    caplog.set_level("WARNING", "gateway.inbox")
    root = tmp_path / "inbox"
    (root / "medsupply").mkdir(parents=True)
    with inotify_inbox(root) as box:
        if how == "removed":
            shutil.rmtree(root)
        else:
            os.rename(root, tmp_path / "attic")
        wait_for(lambda: f"the inbox {root} is gone" in caplog.text or f"the inbox {root} was moved" in caplog.text)
        (root / "medsupply").mkdir(parents=True)
        wait_for(lambda: f"the inbox {root} is back" in caplog.text)
        rename_in(root / "medsupply", "after.edi")
        assert ready_names(box) == ["medsupply/after.edi"]
        (root / "newpartner").mkdir()
        time.sleep(0.3)  # the watch on the new folder is added from the root's event
        rename_in(root / "newpartner", "x.edi")
        assert ready_names(box) == ["newpartner/x.edi"]


@pytest.mark.parametrize("how", ["tmpfs", "bind"])
def test_a_file_system_mounted_over_the_inbox_is_watched(
    how: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The watch is on the folder underneath a mount: events of the mounted file system never reach it."""
    root = tmp_path / "inbox"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"  # a bind mount from the same file system: the same device, another inode
    elsewhere.mkdir()
    command = (
        ["mount", "-t", "tmpfs", "tmpfs", str(root)]
        if how == "tmpfs"
        else ["mount", "--bind", str(elsewhere), str(root)]
    )
    with inotify_inbox(root) as box:
        mounted = subprocess.run(command, capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount here (not root, or no CAP_SYS_ADMIN): {mounted.stderr.strip()}")
        try:
            wait_for(lambda: "is another folder now (mounted over" in caplog.text)
            wait_for(lambda: f"the inbox {root} is back" in caplog.text)
            rename_in(root, "x.edi")
            assert ready_names(box) == ["x.edi"]
        finally:
            subprocess.run(["umount", str(root)], check=False)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def test_a_partner_folder_moved_away_no_longer_speaks_for_its_old_name(inbox: Inbox, tmp_path: Path) -> None:
    # The watch follows the folder, not its name: left in place, a file closed in the moved folder would mark
    # the same name in a new folder of the old name complete while its own writer still has it open.
    attic = tmp_path / "attic"
    attic.mkdir()
    os.rename(inbox.root / "medsupply", attic / "medsupply")
    time.sleep(0.2)
    (inbox.root / "medsupply").mkdir()
    time.sleep(0.2)
    with (inbox.root / "medsupply" / "big.edi").open("wb") as writing:
        writing.write(b"ISA*00*")
        writing.flush()
        (attic / "medsupply" / "big.edi").write_bytes(b"somewhere else")
        assert ready_names(inbox, timeout=1.5) == [], "handed out while its writer still had it open"
    assert ready_names(inbox) == ["medsupply/big.edi"]


def test_a_backlog_found_by_a_scan_is_handed_out_oldest_first(tmp_path: Path) -> None:
    box = Inbox(tmp_path, stable_seconds=0, rescan_seconds=3600)
    for folder in ("b", "a"):
        (tmp_path / folder).mkdir()
    base = time.time() - 100
    for i in range(20):
        path = tmp_path / ("a" if i % 2 else "b") / f"f{i:02d}.edi"
        path.write_bytes(b"ISA*00*")
        os.utime(path, (base + i, base + i))
    box.scan()
    batches = [[c.path.name for c in box.ready(limit=4)] for _ in range(5)]
    assert batches == [[f"f{i:02d}.edi" for i in range(b, b + 4)] for b in range(0, 20, 4)]
    assert box.ready() == [] and not box.pending


def test_the_inotify_thread_reads_a_descriptor_past_1024(tmp_path: Path) -> None:
    # select() refuses descriptors from FD_SETSIZE (1024) on; a busy service may hold that many.
    if not inotify.available():
        pytest.skip("inotify exists on Linux only")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    try:
        while len(held) < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        box = Inbox(tmp_path, stable_seconds=3600, rescan_seconds=3600, watcher="inotify")
        box.start()
        try:
            assert isinstance(box._observer, inotify.InotifyWatcher) and box._observer._fd >= 1024
            rename_in(tmp_path, "x.edi")
            assert ready_names(box) == ["x.edi"]
        finally:
            box.stop()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_rescan_leaves_pending_files_as_their_events_said_unless_events_were_lost(tmp_path: Path) -> None:
    box = Inbox(tmp_path, stable_seconds=3600, rescan_seconds=3600)
    path = tmp_path / "renamed-in.edi"
    path.write_bytes(b"ISA*00*")
    box.notice(str(path), True)  # a rename into place said it is complete
    box.scan()
    assert box.pending[path].closed, "a periodic rescan forgot what the event said"
    box.rescan_soon()  # events were lost: what they said may be out of date
    box.scan()
    assert not box.pending[path].closed


def test_lost_events_are_still_made_good_after_a_scan_that_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Inbox(tmp_path, stable_seconds=3600, rescan_seconds=3600)
    path = tmp_path / "renamed-in.edi"
    path.write_bytes(b"ISA*00*")
    box.notice(str(path), True)
    box.rescan_soon()
    real = os.scandir

    def refused(where: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("gateway.channels.inbox.os.scandir", refused)
    with pytest.raises(PermissionError):
        box.scan()
    monkeypatch.setattr("gateway.channels.inbox.os.scandir", real)
    box.scan()
    assert not box.pending[path].closed, "the full rescan the lost events asked for never happened"
