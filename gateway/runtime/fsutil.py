"""Small file operations the runtime needs: moves that never overwrite (and work across file systems),
opening only regular files, names safe to store and print, folders for the gateway's user only.

Durable writes (temporary name, sync, rename) are :class:`gateway.store.durable.SyncGroup`'s, which
publishes a whole batch's files with one sync.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import unicodedata
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
NAME_MAX = 255
"""Bytes in one file name on the file systems the gateway runs on (ext4, xfs, tmpfs)."""
NAME_ROOM = 64
"""Bytes the gateway may add to a name when it renames the file (claim prefix, file id, ``.reason.txt``)."""
SAFE_NAME_BYTES = NAME_MAX - NAME_ROOM
"""The longest inbox file name the gateway takes as it is; longer ones are quarantined under a shorter name."""


def unique_target(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/name.N`` when taken (moves never overwrite)."""
    private_dirs(folder)
    target = folder / name
    n = 1
    while os.path.lexists(target):
        target = folder / f"{name}.{n}"
        n += 1
    return target


def private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents readable by this user only (0700)."""
    missing: list[Path] = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            made.mkdir(mode=PRIVATE_DIR)


def make_private(path: Path, mode: int) -> None:
    """``chmod`` ``path`` to ``mode`` when it is ours; a file another user owns is left as it is."""
    with contextlib.suppress(PermissionError, FileNotFoundError):
        os.chmod(path, mode, follow_symlinks=False)


# --- names ----------------------------------------------------------------------------------


def printable(name: str) -> str:
    """``name`` for a log line or a terminal: bytes that are not UTF-8 as ``\\xNN``, control characters
    (newline, tab, escape...) as ``\\n``, ``\\t``, ``\\x1b``, backslashes doubled: one line, reversible."""
    if name.isascii() and name.isprintable() and "\\" not in name:  # the usual name, as it is (3 per file)
        return name
    out = []
    for ch in os.fsencode(name).decode("utf-8", "surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def oneline(text: str) -> str:
    """``text`` (a reason, an error message naming a path) on one line: control characters and bytes that
    are not UTF-8 escaped as :func:`printable` does, backslashes left as they are (names in it are
    already escaped)."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be recorded and moved as it is (None when it can): not UTF-8 (the store keeps
    text), or too long to be renamed with a prefix. Control characters are kept (escaped when printed)."""
    raw = os.fsencode(name)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"file name is not valid UTF-8: {printable(name)}"
    if len(raw) > SAFE_NAME_BYTES:
        return (
            f"file name is {len(raw)} bytes long, more than the {SAFE_NAME_BYTES} the gateway takes: {printable(name)}"
        )
    return None


def safe_name(name: str) -> str:
    """A name for ``name`` that is UTF-8, one line, and at most :data:`SAFE_NAME_BYTES` bytes long."""
    raw = os.fsencode(name)
    text = raw.decode("utf-8", "replace")
    cleaned = "".join("_" if unicodedata.category(ch) == "Cc" or ch in "\ufffd/" else ch for ch in text) or "_"
    encoded = cleaned.encode("utf-8")
    if len(encoded) <= SAFE_NAME_BYTES:
        return cleaned
    stem = encoded[: SAFE_NAME_BYTES - 10].decode("utf-8", "ignore")
    suffix = os.path.splitext(cleaned)[1].encode("utf-8")[:9].decode("utf-8", "ignore")
    return f"{stem}~{suffix}" if suffix.startswith(".") else f"{stem}~"


# --- opening only regular files -------------------------------------------------------------


class NotRegularFile(OSError):
    """An inbox entry the gateway refuses to open: a FIFO, a device, a socket, a symbolic link, a folder,
    or a regular file with more than one hard link. ``reason`` says which."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, str(path))
        self.reason = reason


def kind_of(mode: int) -> str:
    """What an ``st_mode`` is, in words."""
    for test, word in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return word
    return "not a regular file"


def refusal(st: os.stat_result) -> str | None:
    """Why an entry with this ``lstat`` is refused (None for a regular file with one link)."""
    if not stat.S_ISREG(st.st_mode):
        return f"refused: {kind_of(st.st_mode)}, not a regular file (nothing of it was read)"
    if st.st_nlink > 1:
        return f"refused: a regular file with {st.st_nlink} hard links (nothing of it was read)"
    return None


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading only if it is a regular file with one link; never blocks, never follows
    a symbolic link. Returns the descriptor and its ``fstat``. Raises :class:`NotRegularFile` (or another
    :class:`OSError`, e.g. :class:`FileNotFoundError`)."""
    before = os.lstat(path)
    why = refusal(before)
    if why is not None:
        raise NotRegularFile(path, why)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symlink since the lstat
            raise NotRegularFile(path, "refused: a symbolic link, not a regular file (nothing of it was read)") from exc
        raise
    try:
        st = os.fstat(fd)
        why = refusal(st)
        if why is not None:
            raise NotRegularFile(path, why)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


# --- moving ---------------------------------------------------------------------------------


class MoveError(OSError):
    """A move that could not be done (the source is where it was); ``folder`` is where it was going."""

    def __init__(self, target: Path, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot move a file into {target.parent}: {cause.strerror or cause}")
        self.folder = target.parent
        self.cause = cause

    def __str__(self) -> str:
        return str(self.strerror)


def move(source: Path, target: Path, *, mode: int | None = PRIVATE_FILE) -> Path:
    """Rename ``source`` to ``target``; across file systems (``EXDEV``) copy to a temporary name beside
    ``target``, ``fsync``, rename, then unlink ``source``. ``mode`` is applied to the moved file when it is
    ours. Raises :class:`MoveError` with ``source`` left in place."""
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise MoveError(target, exc) from exc
        _copy_across(source, target)
    if mode is not None:
        make_private(target, mode)
    return target


def _copy_across(source: Path, target: Path) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".moving.", suffix=".tmp")
    except OSError as exc:
        raise MoveError(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise MoveError(target, exc) from exc
    os.unlink(source)  # the copy is durable: only now is the original let go
