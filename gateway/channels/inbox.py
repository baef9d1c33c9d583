"""The watched inbox: ``inbox/<partner>/`` and ``inbox/`` itself, taking only complete files.

This is the reference module for channels. A file is a candidate when the
watcher reports it (on Linux inotify read directly, :mod:`gateway.channels.inotify`,
which says why; watchdog elsewhere) or a scan finds it (at start-up and every
``rescan_seconds``, for anything an event missed); it becomes *ready* once
the writer has closed it (inotify's close-after-write, or a rename into place,
where the platform reports them; for a file found by a scan, nobody has it
open for writing, as a Linux read lease tells, and it has not changed for a
second), or its size and mtime have not changed for
``stable_seconds`` (the fallback: a file found by a scan, a platform without
close events; a partner profile may set its own, see ``stable_for``). Dotfiles and
``*.part``/``*.tmp``-style names are never taken, so an uploader that
writes to a temporary name and renames is picked up only after the rename.
The watcher only finds files; taking them (archive, record, move) is the
runtime's job, so a file never leaves the inbox before it is safe.

Entries are looked at with ``lstat`` only: a FIFO, a device, a socket or a
symbolic link is handed out at once (the runtime refuses it without opening
it), never waited on. A file the runtime could not take or let go is *held*:
not handed out again until it changes or ``retry_seconds`` pass, so a
folder that cannot be written makes one report, not a hot loop.
"""

from __future__ import annotations

import fcntl
import fnmatch
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from watchdog.events import (
    FileAttribEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
    FileSystemMovedEvent,
)
from watchdog.observers import Observer

from gateway.channels import inotify
from gateway.delivery.registry import Registry

log = logging.getLogger("gateway.inbox")


@dataclass(slots=True)
class Candidate:
    """A file seen in the inbox; ``partner`` is the subfolder name (None: the inbox itself)."""

    path: Path
    partner: str | None
    size: int = -1
    mtime_ns: int = -1
    stable_since: float = 0.0
    closed: bool = False  # the writer closed it (or renamed it into place) after its last write
    special: bool = False  # not a regular file (FIFO, device, socket, symlink): handed out at once, never opened


@dataclass(slots=True)
class _Held:
    """A file the runtime could not take or let go: left alone until it changes or ``until``."""

    signature: tuple[int, int, int]
    until: float
    reason: str


class _Handler(FileSystemEventHandler):
    def __init__(self, notify: Callable[[str, bool | None], None]) -> None:
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or isinstance(event, FileOpenedEvent | FileClosedNoWriteEvent):
            return  # opening and reading (our own reads too) change nothing
        if isinstance(event, FileSystemMovedEvent):
            # Renamed into place: complete (an uploader writing to a temporary name renames when done).
            self.notify(os.fsdecode(event.dest_path), True)
            return
        if isinstance(event, FileAttribEvent):
            self.notify(os.fsdecode(event.src_path), None)  # chmod, utime after the upload: not a write
            return
        self.notify(os.fsdecode(event.src_path), isinstance(event, FileClosedEvent))


SETTLE_SECONDS = 1.0
"""A file found without a close event is taken before its stable time only when nobody has it open for
writing (a read lease can be had) and it has not changed for this long (a writer between two opens)."""


def _no_writer(path: Path) -> bool | None:
    """Whether no process has ``path`` open for writing: Linux grants a read lease (``F_SETLEASE``) only
    then. None when this cannot be told (another OS, not the file's owner, a file system without leases)."""
    setlease = getattr(fcntl, "F_SETLEASE", None)
    if setlease is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except BlockingIOError:
        return False  # open for writing somewhere
    except OSError:
        return None
    else:
        fcntl.fcntl(fd, setlease, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


def _mtime(entry: os.DirEntry[str]) -> int:
    """An entry's mtime for ordering; 0 when it is gone meanwhile (``ready`` then drops it)."""
    try:
        return entry.stat(follow_symlinks=False).st_mtime_ns
    except OSError:
        return 0


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


class Inbox:
    """Finds complete files under ``root``; ``ready()`` returns those stable long enough."""

    def __init__(
        self,
        root: Path,
        *,
        stable_seconds: float = 30.0,
        rescan_seconds: float = 5.0,
        ignore: Iterable[str] = (".*", "*.part", "*.tmp"),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        stable_for: dict[str, float] | None = None,
        retry_seconds: float = 300.0,
        watcher: str = "auto",
    ) -> None:
        """``watcher``: ``inotify`` (Linux), ``watchdog``, or ``auto`` (inotify where there is one)."""
        if watcher not in ("auto", "inotify", "watchdog"):
            raise ValueError(f"watcher must be auto, inotify or watchdog, not {watcher!r}")
        self.watcher = watcher
        self.root = root
        self.stable_seconds = stable_seconds
        self.stable_for = dict(stable_for or {})  # partner folder -> its profile's stable_seconds
        self.retry_seconds = retry_seconds
        self.held: dict[Path, _Held] = {}
        self.rescan_seconds = rescan_seconds
        self.ignore = tuple(ignore)
        self.clock = clock
        self.wall = wall  # compared with file mtimes
        self.pending: dict[Path, Candidate] = {}
        self.taken: set[Path] = set()  # handed out, not yet gone from the inbox
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._observer: Observer | inotify.InotifyWatcher | None = None  # type: ignore[valid-type]
        self._last_scan = float("-inf")
        self._lost: object | None = None  # events were lost (rescan_soon): the next scan notices every file again

    # --- discovery ----------------------------------------------------------------------------

    def _place(self, path: Path) -> str | bool | None:
        """The partner folder name (None for the inbox itself), or False when not a candidate."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        parts = rel.parts
        if not 1 <= len(parts) <= 2 or any(self._ignored(p) for p in parts):
            return False
        return parts[0] if len(parts) == 2 else None

    def _ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.ignore)

    def stable_time(self, partner: str | None) -> float:
        """How long a file of ``partner``'s folder must stay unchanged (when no close event says it is done)."""
        return self.stable_for.get(partner, self.stable_seconds) if partner is not None else self.stable_seconds

    def notice(self, raw_path: str, closed: bool | None = False) -> None:
        """Record a path the watcher reported (thread-safe); ``closed``: its writer closed it after writing,
        or renamed it into place (None: an event that says neither, such as a chmod). Any other event about
        the path means it may still be being written."""
        path = Path(raw_path)
        place = self._place(path)
        if place is False:
            return
        with self._lock:
            if path in self.taken:
                return
            cand = self.pending.get(path)
            if cand is None:
                cand = self.pending[path] = Candidate(path, place if isinstance(place, str) else None)
            if closed is not None:
                cand.closed = closed
        self._wake.set()

    def scan(self) -> None:
        """Look at every entry now (start-up, and periodically for missed events), noticing them oldest first
        (``ready(limit)`` hands them out in the order noticed: a backlog found at start-up is taken in the
        order it arrived). Symbolic links are not followed: a link to a folder is an entry the runtime
        refuses, not a folder to look into."""
        self._last_scan = self.clock()
        if not self.root.is_dir():
            return
        # Files already pending or handed out are left as they are: a big backlog taken a batch at a time is
        # not looked at again at every rescan, and a file an event said was complete stays so. After events
        # were lost, every file is noticed again (as not known to be complete).
        with self._lock:
            lost = self._lost
            known = set() if lost else {str(p) for p in self.pending} | {str(p) for p in self.taken}
        found: list[tuple[int, str]] = []
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") or self._ignored(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                try:
                    inner_entries = list(os.scandir(entry.path))
                except OSError:
                    continue  # removed or unreadable meanwhile: the next scan looks again
                found.extend((_mtime(inner), inner.path) for inner in inner_entries
                             if inner.path not in known and not inner.is_dir(follow_symlinks=False))  # fmt: skip
            elif entry.path not in known:
                found.append((_mtime(entry), entry.path))
        found.sort()
        for _, path in found:
            self.notice(path, False if lost else None)  # None: what an event said of a file stays
        if lost:
            with self._lock:
                if self._lost is lost:  # else a rescan_soon() meanwhile asks for one more
                    self._lost = None

    def start(self) -> None:
        """Start watching (and scan once)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.watcher == "inotify" or (self.watcher == "auto" and inotify.available()):
            watcher = inotify.InotifyWatcher(self.root, self.notice, self.rescan_soon)
            try:
                watcher.start()
            except OSError as exc:  # fs.inotify.max_user_instances or max_user_watches reached, say
                if self.watcher == "inotify":
                    raise
                # watchdog's Linux observer is inotify too, with the same limits: the rescans are what is left.
                log.warning(
                    "cannot watch %s (%s): files are found by the rescans only, every %g s",
                    self.root, exc, self.rescan_seconds,
                )  # fmt: skip
            else:
                self._observer = watcher
        else:
            observer = Observer()
            observer.schedule(_Handler(self.notice), str(self.root), recursive=True)
            observer.daemon = True
            observer.start()
            self._observer = observer
        self.scan()

    def rescan_soon(self) -> None:
        """An event may have been lost: the next :meth:`ready` looks at every entry (thread-safe)."""
        with self._lock:
            self._lost = object()  # a new token: a scan under way clears only the one it started with
        self._last_scan = float("-inf")
        self._wake.set()

    def stop(self) -> None:
        """Stop the watcher thread."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if not isinstance(observer, inotify.InotifyWatcher):  # watchdog's stop() only asks its thread
                observer.join(timeout=5)
        self._wake.set()

    def wait(self, timeout: float) -> None:
        """Sleep until the watcher reports something or ``timeout`` passes."""
        self._wake.wait(timeout)
        self._wake.clear()

    # --- readiness ----------------------------------------------------------------------------

    def ready(self, limit: int | None = None) -> list[Candidate]:
        """Candidates whose size and mtime have been stable for ``stable_seconds`` (then handed out), oldest
        first. ``limit``: at most that many, looked for in the order the files were noticed (a daemon under a
        steady drop takes a batch, processes one, and so on, rather than taking in the whole inbox first);
        the others stay pending for the next call."""
        now = self.clock()
        if now - self._last_scan >= self.rescan_seconds:
            self.scan()
        out: list[Candidate] = []
        with self._lock:
            items = list(self.pending.items())
        for path, cand in items:
            if limit is not None and len(out) >= limit:
                break
            try:
                st = os.lstat(path)
            except OSError:  # gone (or its folder with it)
                with self._lock:
                    self.pending.pop(path, None)
                continue
            if stat.S_ISDIR(st.st_mode):
                with self._lock:
                    self.pending.pop(path, None)
                continue
            held = self.held.get(path)
            if held is not None and held.signature == _signature(st) and now < held.until:
                with self._lock:
                    self.pending.pop(path, None)  # found again by the rescan: still held
                continue
            cand.special = not stat.S_ISREG(st.st_mode)
            stable = self.stable_time(cand.partner)
            # Unwritten for the stable time: either seen unchanged that long, or its mtime is already that
            # old (a file found by a scan after it was finished), so it need not wait for a second look.
            idle = self.wall() - st.st_mtime_ns / 1e9 >= stable
            if (st.st_size, st.st_mtime_ns) != (cand.size, cand.mtime_ns):
                cand.size, cand.mtime_ns, cand.stable_since = st.st_size, st.st_mtime_ns, now
                if stable > 0 and not (idle or cand.closed or cand.special):
                    continue
            settled = now - cand.stable_since >= min(stable, SETTLE_SECONDS)
            if not (cand.special or cand.closed or idle) and settled and _no_writer(path) is True:
                cand.closed = True  # nobody has it open for writing (a file found by a scan, `--once`)
            if cand.special or cand.closed or idle or now - cand.stable_since >= stable:
                with self._lock:
                    self.pending.pop(path, None)
                    self.taken.add(path)
                out.append(cand)
        out.sort(key=lambda c: (c.mtime_ns, str(c.path)))
        return out

    def done(self, path: Path) -> None:
        """The runtime has moved or deleted (or quarantined) ``path``; forget it."""
        with self._lock:
            self.taken.discard(path)
        self.held.pop(path, None)

    def release(self, path: Path) -> None:
        """The runtime could not take ``path`` now; look at it again later."""
        with self._lock:
            self.taken.discard(path)
        self.notice(str(path))

    def hold(self, path: Path, reason: str, seconds: float | None = None) -> bool:
        """The runtime could not take or let go ``path`` (``reason``): leave it until it changes or
        ``seconds`` (default ``retry_seconds``) pass. Returns False when it was already held for the same
        reason (the caller then does not report it again)."""
        with self._lock:
            self.taken.discard(path)
            self.pending.pop(path, None)
        try:
            st = os.lstat(path)
        except OSError:
            return True  # gone meanwhile: nothing to hold
        before = self.held.get(path)
        until = self.clock() + (self.retry_seconds if seconds is None else seconds)
        self.held[path] = _Held(_signature(st), until, reason)
        return before is None or before.reason != reason

    def next_due(self) -> float:
        """Seconds until something may become ready (for the service loop's sleep)."""
        with self._lock:
            waiting = [self.stable_time(c.partner) for c in self.pending.values()]
        until_scan = max(0.0, self.rescan_seconds - (self.clock() - self._last_scan))
        return min(until_scan, min(waiting) / 2 or 0.05) if waiting else until_scan


class InboxConfig(BaseModel):
    """``type: inbox``: a watched folder (``intake:`` in ``gateway.yaml`` gives these values today)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "inbox"
    folder: str = "inbox"
    stable_seconds: float = Field(default=30.0, ge=0)
    rescan_seconds: float = Field(default=5.0, gt=0)
    retry_seconds: float = Field(default=300.0, gt=0)
    ignore: list[str] = Field(default_factory=lambda: [".*", "*.part", "*.tmp", "*.filepart", "*.partial"])
    stable_for: dict[str, float] = Field(default_factory=dict, description="Per partner folder (profiles).")


def build(name: str, config: InboxConfig, context: object) -> Inbox:
    """Phase two: the folder is taken from the deployment folder (``context.home``)."""
    home = Path(str(getattr(context, "home", ".")))
    folder = Path(config.folder)
    return Inbox(
        folder if folder.is_absolute() else home / folder,
        stable_seconds=config.stable_seconds,
        rescan_seconds=config.rescan_seconds,
        ignore=config.ignore,
        stable_for=config.stable_for,
        retry_seconds=config.retry_seconds,
    )


def register(registry: Registry) -> None:
    """Register ``inbox`` as a channel."""
    registry.register("channel", "inbox", InboxConfig, build, "a watched local folder")
