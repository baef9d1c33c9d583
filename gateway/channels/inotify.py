"""The inbox watcher on Linux: inotify read directly, one thread, no move pairing.

Why not watchdog's inotify observer (kept for every other platform): it pairs each rename's two halves
by holding every ``IN_MOVED_FROM`` in a queue for half a second, and events behind it wait with it. A
steady drop of files renamed into place (how an uploader finishes a file, and how the intake claims
and lets go of one) kept that queue hundreds of events long: each rename searched it twice, and every
event reached the inbox up to 0.5 s late. At 300 files/s, watchdog's threads took ~2 ms of CPU a file
and the service fell behind (``docs/performance.md``, "The inbox watcher"). The inbox needs no pairs:
a file renamed into place is complete, wherever it came from.

The events kept, as the inbox reads them (``Inbox.notice``): a file closed after writing or renamed
into a watched folder is complete; one created or written to is not yet; a change of attributes says
neither. A partner folder created or renamed into the inbox is watched and looked through at once (its
files may have arrived before the watch). A lost event (the kernel's queue overflowed, a watch that
could not be added) is made good by a scan: ``rescan`` is called, and the inbox's periodic rescan stays.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["InotifyWatcher", "available"]

log = logging.getLogger("gateway.inbox")

_MODIFY, _ATTRIB, _CLOSE_WRITE = 0x2, 0x4, 0x8
_MOVED_TO, _CREATE = 0x80, 0x100
_DELETE_SELF, _MOVE_SELF = 0x400, 0x800
_Q_OVERFLOW, _IGNORED, _ISDIR = 0x4000, 0x8000, 0x40000000
_ONLYDIR, _DONT_FOLLOW = 0x1000000, 0x2000000
_MASK = _MODIFY | _ATTRIB | _CLOSE_WRITE | _MOVED_TO | _CREATE | _DELETE_SELF | _MOVE_SELF | _ONLYDIR | _DONT_FOLLOW
_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):  # not Linux, or a libc without inotify
        return None
    return lib


_LIBC = _libc()


def available() -> bool:
    """Whether this platform has inotify (Linux)."""
    return _LIBC is not None


class InotifyWatcher:
    """Watches ``root`` and its direct subfolders; ``notify(path, closed)`` as ``Inbox.notice`` takes it;
    ``rescan()`` when an event may have been lost."""

    def __init__(self, root: Path, notify: Callable[[str, bool | None], None], rescan: Callable[[], None]) -> None:
        if _LIBC is None:
            raise OSError(errno.ENOSYS, "inotify is not available on this platform")
        self.root = root
        self._notify = notify
        self._rescan = rescan
        self._folders: dict[int, bytes] = {}  # watch descriptor -> folder (bytes: names need not be UTF-8)
        self._root_wd = -1
        self._fd = -1
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the inotify instance, watch the root and its subfolders, start the reading thread."""
        assert _LIBC is not None
        fd = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self._fd = fd
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        root = os.fsencode(self.root)
        self._root_wd = self._watch(root)
        if self._root_wd < 0:
            self.stop()
            raise OSError(errno.ENOENT, f"cannot watch {self.root}")
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    self._watch(entry.path)
        self._thread = threading.Thread(target=self._run, name="inbox-inotify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the instance (its watches go with it)."""
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._wake_r = self._wake_w = -1

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _watch(self, folder: bytes) -> int:
        """Watch ``folder``; its watch descriptor, or -1 when it cannot be watched."""
        assert _LIBC is not None
        wd: int = _LIBC.inotify_add_watch(self._fd, folder, _MASK)
        if wd < 0:
            code = ctypes.get_errno()
            # ENOSPC: fs.inotify.max_user_watches reached; ENOENT/ENOTDIR: gone meanwhile. Scans still find
            # its files (every rescan_seconds), later than events would.
            if code not in (errno.ENOENT, errno.ENOTDIR):
                shown = os.fsdecode(folder)
                log.warning("cannot watch %s (%s): its files are found by the rescans only", shown, os.strerror(code))
            return -1
        self._folders[wd] = folder
        return wd

    def _run(self) -> None:
        while True:
            try:
                readable, _, _ = select.select([self._fd, self._wake_r], [], [])
            except (OSError, ValueError):  # closed under us: stopping
                return
            if self._wake_r in readable:
                return
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                log.error("reading the inbox's inotify events failed (%s): the rescans go on finding files", exc)
                return
            try:
                self._dispatch(data)
            except Exception:  # a watcher thread that dies silently would leave only the rescans
                log.exception("handling an inbox event failed; looking at the whole inbox again")
                self._rescan()

    def _dispatch(self, data: bytes) -> None:
        offset, size = 0, len(data)
        header = _HEADER
        while offset < size:
            wd, mask, _cookie, length = header.unpack_from(data, offset)
            name = data[offset + 16 : offset + 16 + length].rstrip(b"\0")
            offset += 16 + length
            if mask & _Q_OVERFLOW:
                log.warning("the inbox's inotify queue overflowed: looking at the whole inbox again")
                self._rescan()
                continue
            folder = self._folders.get(wd)
            if folder is None:
                continue
            if mask & _IGNORED:  # the watch is gone (its folder removed or unmounted)
                del self._folders[wd]
                continue
            if not name:  # the folder itself: moved or deleted
                continue
            path = folder + b"/" + name
            if mask & _ISDIR:
                if mask & (_CREATE | _MOVED_TO) and wd == self._root_wd:
                    self._new_folder(path)
                continue
            if mask & (_CLOSE_WRITE | _MOVED_TO):
                self._notify(os.fsdecode(path), True)
            elif mask & (_CREATE | _MODIFY):
                self._notify(os.fsdecode(path), False)
            elif mask & _ATTRIB:
                self._notify(os.fsdecode(path), None)

    def _new_folder(self, folder: bytes) -> None:
        """A partner folder appeared: watch it, then report what it already holds (written before the watch)."""
        self._watch(folder)
        try:
            with os.scandir(folder) as entries:
                found = [e.path for e in entries if not e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for path in found:
            self._notify(os.fsdecode(path), None)  # complete or not, no event told: the inbox looks
