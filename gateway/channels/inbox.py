"""The watched inbox: ``inbox/<partner>/`` and ``inbox/`` itself, taking only complete files.

This is the reference module for channels. A file is a candidate when the
watcher (watchdog) reports it or a scan finds it (at start-up and every
``rescan_seconds``, for anything an event missed); it becomes *ready* once
its size and mtime have not changed for ``stable_seconds``. Dotfiles and
``*.part``/``*.tmp``-style names are never taken, so an uploader that
writes to a temporary name and renames is picked up only after the rename.
The watcher only finds files; taking them (archive, record, move) is the
runtime's job, so a file never leaves the inbox before it is safe.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


@dataclass(slots=True)
class Candidate:
    """A file seen in the inbox; ``partner`` is the subfolder name (None: the inbox itself)."""

    path: Path
    partner: str | None
    size: int = -1
    mtime_ns: int = -1
    stable_since: float = 0.0


class _Handler(FileSystemEventHandler):
    def __init__(self, notify: Callable[[str], None]) -> None:
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        dest = getattr(event, "dest_path", "")
        for path in (event.src_path, dest):
            if path:
                self.notify(os.fsdecode(path))


class Inbox:
    """Finds complete files under ``root``; ``ready()`` returns those stable long enough."""

    def __init__(
        self,
        root: Path,
        *,
        stable_seconds: float = 0.5,
        rescan_seconds: float = 5.0,
        ignore: Iterable[str] = (".*", "*.part", "*.tmp"),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.stable_seconds = stable_seconds
        self.rescan_seconds = rescan_seconds
        self.ignore = tuple(ignore)
        self.clock = clock
        self.wall = wall  # compared with file mtimes
        self.pending: dict[Path, Candidate] = {}
        self.taken: set[Path] = set()  # handed out, not yet gone from the inbox
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._last_scan = float("-inf")

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

    def notice(self, raw_path: str) -> None:
        """Record a path the watcher reported (thread-safe)."""
        path = Path(raw_path)
        place = self._place(path)
        if place is False:
            return
        with self._lock:
            if path not in self.pending and path not in self.taken:
                self.pending[path] = Candidate(path, place if isinstance(place, str) else None)
        self._wake.set()

    def scan(self) -> None:
        """Look at every file now (start-up, and periodically for missed events)."""
        self._last_scan = self.clock()
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.name.startswith(".") or self._ignored(entry.name):
                continue
            if entry.is_dir():
                for inner in entry.iterdir():
                    if inner.is_file():
                        self.notice(str(inner))
            elif entry.is_file():
                self.notice(str(entry))

    def start(self) -> None:
        """Start watching (and scan once)."""
        self.root.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(_Handler(self.notice), str(self.root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self.scan()

    def stop(self) -> None:
        """Stop the watcher thread."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        self._wake.set()

    def wait(self, timeout: float) -> None:
        """Sleep until the watcher reports something or ``timeout`` passes."""
        self._wake.wait(timeout)
        self._wake.clear()

    # --- readiness ----------------------------------------------------------------------------

    def ready(self) -> list[Candidate]:
        """Candidates whose size and mtime have been stable for ``stable_seconds`` (then handed out)."""
        now = self.clock()
        if now - self._last_scan >= self.rescan_seconds:
            self.scan()
        out: list[Candidate] = []
        with self._lock:
            items = list(self.pending.items())
        for path, cand in items:
            try:
                st = path.stat()
            except FileNotFoundError:
                with self._lock:
                    self.pending.pop(path, None)
                continue
            # Unwritten for stable_seconds: either seen unchanged that long, or its mtime is already that
            # old (a file found by a scan, or renamed into place after being written), so a file need
            # not wait for a second look when it was finished before we first saw it.
            idle = self.wall() - st.st_mtime_ns / 1e9 >= self.stable_seconds
            if (st.st_size, st.st_mtime_ns) != (cand.size, cand.mtime_ns):
                cand.size, cand.mtime_ns, cand.stable_since = st.st_size, st.st_mtime_ns, now
                if self.stable_seconds > 0 and not idle:
                    continue
            if idle or now - cand.stable_since >= self.stable_seconds:
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

    def release(self, path: Path) -> None:
        """The runtime could not take ``path`` now; look at it again later."""
        with self._lock:
            self.taken.discard(path)
        self.notice(str(path))

    def next_due(self) -> float:
        """Seconds until something may become ready (for the service loop's sleep)."""
        with self._lock:
            waiting = bool(self.pending)
        until_scan = max(0.0, self.rescan_seconds - (self.clock() - self._last_scan))
        return min(until_scan, self.stable_seconds / 2 or 0.05) if waiting else until_scan
