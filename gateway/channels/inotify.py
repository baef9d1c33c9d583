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
_MOVED_FROM, _MOVED_TO, _CREATE = 0x40, 0x80, 0x100
_DELETE_SELF, _MOVE_SELF = 0x400, 0x800
_Q_OVERFLOW, _IGNORED, _ISDIR = 0x4000, 0x8000, 0x40000000
_ONLYDIR, _DONT_FOLLOW = 0x1000000, 0x2000000
_EVENTS = _MODIFY | _ATTRIB | _CLOSE_WRITE | _MOVED_FROM | _MOVED_TO | _CREATE | _DELETE_SELF | _MOVE_SELF
_ROOT_MASK = _EVENTS | _ONLYDIR  # the root may be a symbolic link to a folder, as scan() follows it
_FOLDER_MASK = _EVENTS | _ONLYDIR | _DONT_FOLLOW  # a link in the inbox is an entry the runtime refuses
ROOT_RETRY_MS = 1000  # how often a root that is gone is looked for again, and a watched one's device checked
_GONE = -1  # the root's watch descriptor when it has none (looked for again every ROOT_RETRY_MS)
_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # not Linux, or a libc without inotify
        return None
    return lib


_LIBC = _libc()


def _identity(folder: Path) -> tuple[int, int]:
    """(device, inode) of ``folder`` (a symbolic link followed): another file system mounted over it, a bind
    mount, or a link re-pointed, change it."""
    st = os.stat(folder)
    return st.st_dev, st.st_ino


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
        self._root_wd = _GONE
        self._root_id = (-1, -1)  # (device, inode) of the folder watched as the root: another one there is re-watched
        self._root_problem = ""  # why the root could not be watched again, logged once
        self._fd = -1
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the inotify instance, watch the root and its subfolders, start the reading thread. An
        OSError (no instance left, no watch left for the root, the root gone) leaves nothing open."""
        assert _LIBC is not None
        fd = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self._fd = fd
        try:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            root = os.fsencode(self.root)
            self._root_wd = self._add(root, _ROOT_MASK)
            self._root_id = _identity(self.root)
            self._watch_folders()
        except OSError:
            self._close()
            raise
        self._thread = threading.Thread(target=self._run, name="inbox-inotify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the instance (its watches go with it)."""
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():  # stuck in a callback: its descriptors are left to it, not reused
                log.warning("the inbox's inotify thread did not stop within 5 s")
                return
            self._thread = None
        self._close()

    def _close(self) -> None:
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._wake_r = self._wake_w = -1

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _add(self, folder: bytes, mask: int) -> int:
        """Watch ``folder``; its watch descriptor. OSError with the kernel's reason when it cannot be."""
        assert _LIBC is not None
        wd: int = _LIBC.inotify_add_watch(self._fd, folder, mask)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"cannot watch {os.fsdecode(folder)}: {os.strerror(code)}")
        self._folders[wd] = folder
        return wd

    def _watch(self, folder: bytes) -> None:
        """Watch a partner folder (again: the same folder keeps its watch). One that cannot be watched is
        logged (ENOSPC: fs.inotify.max_user_watches reached); scans still find its files, later than events
        would. One gone meanwhile is not."""
        try:
            self._add(folder, _FOLDER_MASK)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                log.warning("%s: its files are found by the rescans only", exc.strerror)
                self._rescan()

    def _watch_folders(self) -> None:
        """Watch every partner folder under the root (at start, and after an overflow, when some may have been
        made unseen)."""
        with os.scandir(self.root) as entries:
            folders = [os.fsencode(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        for folder in folders:
            self._watch(folder)

    def _forget(self, folder: bytes) -> None:
        """A partner folder left the inbox (moved away): its watch would report its files under the old name."""
        assert _LIBC is not None
        for wd, watched in list(self._folders.items()):
            if watched == folder and wd != self._root_wd:
                del self._folders[wd]
                _LIBC.inotify_rm_watch(self._fd, wd)
        self._rescan()  # what its events said of files under the old name may no longer hold

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            try:
                ready = {fd for fd, _ in poller.poll(ROOT_RETRY_MS)}
            except InterruptedError:
                continue
            if self._wake_r in ready:
                return
            if not ready:  # a second without events: the root removed or moved away, or mounted over?
                try:
                    self._check_root()
                except Exception:  # a watcher thread that dies silently would leave only the rescans
                    log.exception("checking the inbox %s failed; looking at the whole inbox again", self.root)
                    self._rescan()
                continue
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
                self._watch_folders()  # folders made meanwhile, unseen
                self._rescan()
                continue
            folder = self._folders.get(wd)
            if folder is None:
                continue
            if mask & _IGNORED:  # the watch is gone (its folder removed or unmounted)
                del self._folders[wd]
                if wd == self._root_wd:
                    self._root_wd = _GONE
                    log.warning("the inbox %s is gone: files are found by the rescans only until it is back", self.root)
                self._rescan()
                continue
            if not name:  # the folder itself
                if wd == self._root_wd and mask & _MOVE_SELF:
                    log.warning(
                        "the inbox %s was moved away: files are found by the rescans only until it is back", self.root
                    )
                    self._forget_all()
                    self._rescan()
                continue
            path = folder + b"/" + name
            if mask & _ISDIR:
                if wd == self._root_wd:
                    if mask & _MOVED_FROM:
                        self._forget(path)
                    elif mask & (_CREATE | _MOVED_TO):
                        self._new_folder(path)
                continue
            if mask & (_CLOSE_WRITE | _MOVED_TO):
                self._notify(os.fsdecode(path), True)
            elif mask & (_CREATE | _MODIFY):
                self._notify(os.fsdecode(path), False)
            elif mask & _ATTRIB:
                self._notify(os.fsdecode(path), None)

    def _check_root(self) -> None:
        """Watch the root again when it is back after being removed or moved away, or when another file system
        was mounted over it (its events would never come: the watch is on the folder underneath)."""
        if self._root_wd != _GONE:
            try:
                now = _identity(self.root)
            except OSError:
                return  # removed or unmounted: its IN_IGNORED follows
            if now == self._root_id:
                return
            log.warning("the inbox %s is another folder now (mounted over, or its link re-pointed): watching it "
                        "again", self.root)  # fmt: skip
            self._forget_all()
        self._watch_root_again()

    def _watch_root_again(self) -> None:
        """The root is back: watch it and its partner folders, and look at the whole inbox (files may have come
        while it was not watched). A root that cannot be watched yet (no watch left, its permissions) is logged
        once and tried again every second."""
        try:
            self._root_wd = self._add(os.fsencode(self.root), _ROOT_MASK)
            self._root_id = _identity(self.root)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR) and str(exc) != self._root_problem:
                self._root_problem = str(exc)
                log.warning("%s: files are found by the rescans until it can be", exc)
            return
        self._root_problem = ""
        log.warning("the inbox %s is back: its events are read again", self.root)
        try:
            self._watch_folders()
        except OSError as exc:  # gone again (its IN_IGNORED follows), or not readable
            log.warning("cannot list the partner folders of %s (%s): their files are found by the rescans", self.root,
                        exc.strerror)  # fmt: skip
        self._rescan()

    def _forget_all(self) -> None:
        assert _LIBC is not None
        for wd in list(self._folders):
            del self._folders[wd]
            _LIBC.inotify_rm_watch(self._fd, wd)
        self._root_wd = _GONE

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
