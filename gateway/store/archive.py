"""A content-addressed archive: every byte the gateway receives or sends, kept by its sha256.

Layout: ``<root>/<sha[:2]>/<sha>``, each blob read-only and private (mode
0400, folders 0700: the archive holds partners' bytes, readable by the
gateway's user only; blobs written by older versions as 0444 stay protected
by the 0700 folders). A blob
is written to a temporary name first (in its final directory for
:meth:`Archive.put`, in ``<root>/tmp`` for streamed files), flushed and
fsynced, moved into place with :func:`os.replace` (atomic), and the directory
is fsynced, so after a crash a blob is either complete or absent, never half
written. Writing content that is already there changes nothing.

Digests are validated before they are turned into paths: anything but 64
lowercase hex characters is refused (:class:`InvalidDigestError`), so a
digest from a URL or a database row can never escape the root.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from gateway.store.durable import READ_ONLY_MODE, SyncGroup, fsync_path, sweep
from gateway.store.errors import ArchiveError, BlobCorruptError, BlobNotFoundError, InvalidDigestError

__all__ = ["CHUNK_SIZE", "Archive"]

CHUNK_SIZE = 1 << 20
"""Bytes read at a time when streaming; memory use stays bounded by this."""

_DIGEST = re.compile(r"[0-9a-f]{64}")
_TMP_DIR = "tmp"


class Archive:
    """Blobs under ``root`` named by the sha256 of their content."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r})"

    @staticmethod
    def check_digest(sha: str) -> str:
        """Return ``sha`` if it is 64 lowercase hex characters, else raise :class:`InvalidDigestError`."""
        if not isinstance(sha, str) or not _DIGEST.fullmatch(sha):
            raise InvalidDigestError(f"not a sha256 digest (64 lowercase hex characters): {sha!r}")
        return sha

    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists)."""
        self.check_digest(sha)
        return self.root / sha[:2] / sha

    def exists(self, sha: str) -> bool:
        """Whether the archive holds the blob ``sha``."""
        return self.path(sha).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex digest. Idempotent: existing content is not rewritten."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.is_file():
            return sha
        try:
            directory = self._make_dir(target.parent)
            fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{sha[:16]}.", suffix=".tmp")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                self._publish(tmp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        except OSError as exc:
            raise ArchiveError(f"cannot write blob {sha} under {self.root}: {exc}") from exc
        return sha

    def stage(self, data: bytes, group: SyncGroup) -> str:
        """Stage ``data`` in ``group`` (published at its flush, with the rest of a batch); return its sha256.

        Nothing is written when the blob is already there (the group still makes sure it is durable:
        another worker may have just renamed it into place). Until the group is
        flushed the blob is not in the archive, so record nothing that points
        at it before then.
        """
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.is_file():
            group.require(target)  # maybe another worker's, renamed but not yet durable
            return sha
        try:
            self._make_dir(target.parent, group)
            group.write(target, data, self._make_dir(self.root / _TMP_DIR), read_only=True)
        except OSError as exc:
            raise ArchiveError(f"cannot write blob {sha} under {self.root}: {exc}") from exc
        return sha

    def reserve(self, group: SyncGroup, count: int) -> None:
        """Create, now, the temporary files of up to ``count`` blobs that :meth:`stage` will write into
        ``group`` later (inside a ledger transaction: see :meth:`SyncGroup.reserve`)."""
        try:
            group.reserve(self._make_dir(self.root / _TMP_DIR), count, read_only=True)
        except OSError as exc:
            raise ArchiveError(f"cannot make temporary files under {self.root}: {exc}") from exc

    def stage_stream(self, stream: BinaryIO, group: SyncGroup) -> tuple[str, int]:
        """:meth:`stage` for what ``stream`` yields, copied and hashed a chunk at a time (a big file never
        sits in memory); returns ``(sha256, size)``."""
        try:
            tmp, sha, size = self._copy(stream, durable=False)
            try:
                os.chmod(tmp, READ_ONLY_MODE)
                target = self.path(sha)
                if target.is_file():
                    tmp.unlink()
                    group.require(target)
                else:
                    self._make_dir(target.parent, group)  # private, as :meth:`stage` makes it
                    group.adopt(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise
        except OSError as exc:
            raise ArchiveError(f"cannot stage a stream under {self.root}: {exc}") from exc
        return sha, size

    def _copy(self, stream: BinaryIO, *, durable: bool) -> tuple[Path, str, int]:
        """``stream`` copied into a temporary file of the archive and hashed as it goes (``durable``: synced);
        returns ``(the temporary file, sha256, size)``. The caller publishes or removes it."""
        digest = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=self._make_dir(self.root / _TMP_DIR), prefix=".", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                if durable:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return tmp, digest.hexdigest(), size

    def sweep(self, older_than_seconds: float, now: float) -> int:
        """Remove temporary files an interrupted write left behind; returns how many."""
        return sweep(self.root / _TMP_DIR, older_than_seconds, now)

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store everything ``stream`` yields, hashing while copying; return ``(sha256, size)``."""
        try:
            tmp, sha, size = self._copy(stream, durable=True)
            try:
                target = self.path(sha)
                if not target.is_file():
                    self._make_dir(target.parent)
                    self._publish(tmp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        except OSError as exc:
            raise ArchiveError(f"cannot archive a stream under {self.root}: {exc}") from exc
        return sha, size

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store the file at ``path`` (streamed, bounded memory); return ``(sha256, size)``."""
        try:
            with Path(path).open("rb") as stream:
                return self.put_stream(stream)
        except OSError as exc:  # opening or closing the source; put_stream raises ArchiveError itself
            raise ArchiveError(f"cannot read {path} to archive it: {exc}") from exc

    def open(self, sha: str) -> BinaryIO:
        """A binary read stream on the blob ``sha``; the caller closes it."""
        target = self.path(sha)
        try:
            return target.open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"the archive has no blob {sha}") from exc
        except OSError as exc:
            raise ArchiveError(f"cannot open blob {sha}: {exc}") from exc

    def read(self, sha: str, *, check: bool = False) -> bytes:
        """The whole content of the blob ``sha``; with ``check``, :class:`BlobCorruptError` if it no longer matches."""
        with self.open(sha) as stream:
            try:
                data = stream.read()
            except OSError as exc:
                raise ArchiveError(f"cannot read blob {sha}: {exc}") from exc
        if check and hashlib.sha256(data).hexdigest() != sha:
            raise BlobCorruptError(f"blob {sha} is corrupt: its content has another sha256")
        return data

    def verify(self, sha: str) -> bool:
        """Rehash the blob: True when its content still hashes to ``sha``."""
        digest = hashlib.sha256()
        with self.open(sha) as stream:
            try:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
            except OSError as exc:
                raise ArchiveError(f"cannot read blob {sha}: {exc}") from exc
        return digest.hexdigest() == sha

    def _make_dir(self, directory: Path, group: SyncGroup | None = None) -> Path:
        """Create ``directory`` (and ``root``) if needed, private (0700), fsyncing the parent of a new one.

        With a ``group`` syncing by filesystem (``syncfs``), the new folders are made durable by its flush
        instead, with the blobs staged into them (a fresh archive makes up to 256 folders). Its flush
        syncs the whole filesystem, so another worker's batch that stages a blob into a folder made here
        before this group is flushed makes the folder durable too; with ``each`` it would not."""
        if group is not None and group.mode == "group":
            return group.make_dir(directory, 0o700)
        if not directory.is_dir():
            missing = []
            probe = directory
            while not probe.is_dir():
                missing.append(probe)
                probe = probe.parent
            for made in reversed(missing):
                with contextlib.suppress(FileExistsError):
                    made.mkdir(mode=0o700)
                fsync_path(made.parent)
        return directory

    @staticmethod
    def _publish(tmp: Path, target: Path) -> None:
        """Make ``tmp`` read-only and move it to ``target`` atomically, durably."""
        os.chmod(tmp, READ_ONLY_MODE)
        os.replace(tmp, target)
        fsync_path(target.parent)
