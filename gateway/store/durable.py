"""Making many new files durable at once: a group sync instead of two fsyncs per file.

Writing a file durably takes an ``fsync`` of the file and, after the rename
that publishes it, an ``fsync`` of its directory. Done file by file that
is about 0.45 ms each on this project's reference machine (ext4 on a
virtual disk), which alone caps a worker at a few hundred small files a
second once archive blob, canonical JSON and acknowledgment are counted.
:class:`SyncGroup` collects the files and directories a batch wrote and
publishes them together before the batch's ledger commit:

* ``group`` (the default where the OS has it): one ``syncfs(2)`` per
  filesystem touched, which flushes every dirty inode and the journal of
  that filesystem in one go (measured: 0.07 ms per file for 64 files,
  ``bench/bench_runtime.py fsync``);
* ``each``: an ``fsync`` of every file, then of every distinct directory
  (for filesystems where ``syncfs`` is slow because other programs write a
  lot to them; 0.33 ms per file).

Either way the guarantee is the same as one-by-one: when :meth:`SyncGroup.flush`
returns, every file it published is complete and durable under its name.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import tempfile
from pathlib import Path

__all__ = ["SYNC_MODES", "SyncGroup", "fsync_path", "sweep", "syncfs_available"]

SYNC_MODES = ("group", "each")
READ_ONLY_MODE = 0o400
"""Archive blobs: read-only, and readable by the gateway's user only (partners' bytes are private)."""
MAX_RESERVED = 128
"""Temporary files :meth:`SyncGroup.reserve` holds open at most (one a batch's interchange would be up to
tens of thousands of descriptors; the writes past them make their own files)."""


def _load_syncfs() -> object | None:
    if not hasattr(os, "O_DIRECTORY"):
        return None  # not a POSIX system with syncfs
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    fn = getattr(libc, "syncfs", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_SYNCFS = _load_syncfs()


def syncfs_available() -> bool:
    """Whether ``syncfs(2)`` can be called here (Linux)."""
    return _SYNCFS is not None


def fsync_path(path: Path) -> None:
    """``fsync`` a file or a directory by path (a no-op for directories outside POSIX)."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:  # type: ignore[operator]
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(folder))
    finally:
        os.close(fd)


class SyncGroup:
    """New files of one batch, written to temporary names and published durably together by :meth:`flush`.

    :meth:`write` puts the bytes under a temporary name in ``tmp_dir`` (a
    folder on the same filesystem as the target); nothing is visible at the
    target yet. :meth:`flush` then (1) makes every temporary file's content
    durable, (2) renames each to its target (atomic: a reader sees the whole
    file or none), (3) makes the renames durable. A crash before (3) leaves
    targets either complete or absent, never half written, plus temporary
    files that :func:`sweep` removes later.
    """

    def __init__(self, mode: str = "group") -> None:
        if mode not in SYNC_MODES:
            raise ValueError(f"sync mode must be one of {', '.join(SYNC_MODES)}, got {mode!r}")
        self.mode = mode if (mode == "each" or syncfs_available()) else "each"
        self._staged: list[tuple[Path, Path]] = []
        self._required: list[Path] = []
        self._created: list[Path] = []  # folders made for what is staged, outermost first
        self._spare: dict[tuple[Path, bool], list[tuple[int, str]]] = {}  # (tmp_dir, read_only) → files made ahead

    def __len__(self) -> int:
        return len(self._staged) + len(self._required)

    def make_dir(self, folder: Path, mode: int = 0o777) -> Path:
        """Create ``folder`` and its missing parents now (with ``mode``), for files staged into it: their
        entries are made durable by :meth:`flush` with the rest (not an ``fsync`` per new folder)."""
        self._created.extend(_make_dirs(folder, mode))
        return folder

    def require(self, path: Path) -> None:
        """A file already in place (published by another worker, maybe not yet durable) that what this
        batch commits will point at: :meth:`flush` makes sure it is durable too."""
        self._required.append(path)

    def reserve(self, tmp_dir: Path, count: int, *, read_only: bool = False) -> None:
        """Create up to ``count`` temporary files in ``tmp_dir`` now, for :meth:`write` to fill later.

        Creating a file waits for the filesystem's journal while other processes sync theirs (0.5 ms and
        more on ext4 beside a busy SQLite ledger); a caller about to write inside a short critical section
        (a ledger transaction holding the write lock) creates them before it. What :meth:`write` does not
        use is removed by :meth:`discard`. At most :data:`MAX_RESERVED` are held open. Raises :class:`OSError`.
        """
        spare = self._spare.setdefault((tmp_dir, read_only), [])
        for _ in range(min(count, MAX_RESERVED) - len(spare)):
            fd, name = _temporary(tmp_dir)
            spare.append((fd, name))
            if read_only:
                os.fchmod(fd, READ_ONLY_MODE)  # the open descriptor still writes

    def write(self, target: Path, data: bytes, tmp_dir: Path, *, read_only: bool = False) -> None:
        """Stage ``data`` for ``target``; it appears there at :meth:`flush`. Raises :class:`OSError`.
        ``read_only``: the file is published with :data:`READ_ONLY_MODE` (0400)."""
        spare = self._spare.get((tmp_dir, read_only))
        made_ahead = bool(spare)
        fd, name = spare.pop() if spare else _temporary(tmp_dir)
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            if read_only and not made_ahead:
                os.chmod(name, READ_ONLY_MODE)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        self._staged.append((Path(name), target))

    def adopt(self, tmp: Path, target: Path) -> None:
        """Stage a temporary file already written in a folder on ``target``'s filesystem (a big blob copied
        from a stream); it is renamed to ``target`` at :meth:`flush`, like what :meth:`write` stages."""
        self._staged.append((tmp, target))

    def flush(self) -> list[Path]:
        """Publish everything staged, durably; returns the targets. Raises :class:`OSError` when the OS cannot."""
        if not (self._staged or self._required):
            return []
        staged, self._staged = self._staged, []
        required, self._required = self._required, []
        made_before, self._created = self._created, []
        try:
            folders = {target.parent: None for _, target in staged}
            created = made_before + [made for folder in folders for made in _make_dirs(folder)]
            if self.mode == "group":
                roots = _by_device(
                    [tmp.parent for tmp, _ in staged] + list(folders) + [p.parent for p in required + created]
                )
                for root in roots:
                    _syncfs(root)
                for tmp, target in staged:
                    os.replace(tmp, target)
                if staged:
                    for root in roots:
                        _syncfs(root)
            else:
                for path in [tmp for tmp, _ in staged] + required:
                    fsync_path(path)
                for tmp, target in staged:
                    os.replace(tmp, target)
                # New folders' entries in their parents (outermost first), then the renames.
                for folder in [made.parent for made in created] + list(folders) + [p.parent for p in required]:
                    fsync_path(folder)
        except BaseException:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise
        return [target for _, target in staged]

    def discard(self) -> None:
        """Drop what was staged (the batch failed before its commit) and the reserved files not used."""
        spares, self._spare = self._spare, {}
        for fd, name in [made for spare in spares.values() for made in spare]:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        staged, self._staged = self._staged, []
        self._required = []  # folders made stay (empty, reused), and are made durable by the next flush
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of ``data`` to ``fd`` with ``os.write`` (a file object's buffer and its wrapping cost ~10 µs
    a file, more than the write; a regular file takes the bytes in one call, but may take fewer)."""
    done = os.write(fd, data)
    while done < len(data):
        done += os.write(fd, memoryview(data)[done:])


def _temporary(tmp_dir: Path) -> tuple[int, str]:
    """A new temporary file in ``tmp_dir`` (made when missing), open for writing: ``(fd, name)``."""
    try:
        return tempfile.mkstemp(dir=tmp_dir, prefix=".", suffix=".tmp")
    except FileNotFoundError:  # made when missing, not tried for every file
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=tmp_dir, prefix=".", suffix=".tmp")


def _make_dirs(folder: Path, mode: int = 0o777) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the ones created, outermost first."""
    missing: list[Path] = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    for made in reversed(missing):
        made.mkdir(mode=mode, exist_ok=True)
    return list(reversed(missing))


def _by_device(folders: list[Path]) -> list[Path]:
    """One folder per filesystem among ``folders``."""
    devices: dict[int, Path] = {}
    for folder in folders:
        devices.setdefault(os.stat(folder).st_dev, folder)
    return list(devices.values())


def sweep(tmp_dir: Path, older_than_seconds: float, now: float) -> int:
    """Remove temporary files a crashed batch left in ``tmp_dir``; returns how many."""
    count = 0
    try:
        entries = list(os.scandir(tmp_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
            continue
        try:
            if now - entry.stat().st_mtime >= older_than_seconds:
                os.unlink(entry.path)
                count += 1
        except FileNotFoundError:
            continue
    return count
