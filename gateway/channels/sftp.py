"""An SFTP session with a hard deadline on every step, pinned host keys, and prefetching downloads (paramiko).

paramiko has no timeout on key exchange or on opening the SFTP subsystem, and a read from a peer that
stops answering waits forever. Here every step (TCP connect, banner and key exchange, authentication,
opening SFTP, each listing, each read or write) runs under a :class:`_Watchdog`: when a step overruns
its deadline the watchdog closes the socket, whatever paramiko was waiting for fails, and the step
raises :class:`SftpTimeout` naming what stalled. One watchdog thread per session.

The server's host key is checked against a pin (the channel's ``host_key``, or a ``known_hosts`` file)
before anything else is sent: an unknown or changed key raises :class:`HostKeyRefused` naming both
fingerprints. Nothing is ever added to a known_hosts file.

Downloads use paramiko's prefetch (many read requests in flight, ``max_requests``) and stream to a
local file a chunk at a time, hashing as they go; uploads write to a temporary name, check the remote
size, then rename. Remote names are never used as local paths unchecked: :func:`local_name` makes any
remote name a single safe file name.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import posixpath
import queue
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.lazy import lazy_module

if TYPE_CHECKING:
    import paramiko
    import paramiko.sftp
else:
    paramiko = lazy_module("paramiko")  # loaded by the first SFTP connection (gateway/lazy.py)

from gateway.delivery.base import SecretRef
from gateway.partners.profile import ChannelSettings
from gateway.partners.sftp_options import Secret, SftpOptions

__all__ = [
    "Endpoint",
    "HostKeyRefused",
    "RemoteFile",
    "Session",
    "SftpError",
    "SftpTimeout",
    "connect",
    "fingerprint",
    "local_name",
]

T = TypeVar("T")
R = TypeVar("R")

WINDOW = 1 << 27
"""The SSH channel window we grant the server: large, so a fast link never waits on window adjusts."""
MAX_NAME_BYTES = 200
MAX_READ = 261120
"""The largest read request OpenSSH's sftp-server answers whole (its SFTP_MAX_READ_LENGTH)."""
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


log = logging.getLogger("gateway.sftp")


class SftpError(Exception):
    """An SFTP step failed; ``kind`` says which way (connect, timeout, host_key, auth, permission, remote)."""

    def __init__(self, message: str, kind: str = "remote") -> None:
        super().__init__(message)
        self.kind = kind


class SftpTimeout(SftpError):
    """A step overran its deadline: the connection was abandoned."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "timeout")


class HostKeyRefused(SftpError):
    """The server's host key is not the pinned one (or nothing is pinned): nothing was sent."""

    def __init__(self, message: str, offered: str, pinned: list[str]) -> None:
        super().__init__(message, "host_key")
        self.offered = offered
        self.pinned = pinned


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect (resolved from a channel or a destination's settings)."""

    host: str
    port: int = 22
    username: str = ""
    host_key: str | None = None  # "ssh-ed25519 AAAA..." (a known_hosts line's key part)
    known_hosts: Path | None = None
    key_file: Path | None = None
    passphrase: Secret | None = None
    password: Secret | None = None
    timeout: float = 30.0
    max_requests: int | None = None  # read requests in flight per download (None: see :meth:`Session.reads`)
    read_size: int | None = None  # bytes per read request (None: see :meth:`Session.reads`)

    @property
    def label(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


def endpoint(channel: ChannelSettings, home: Path) -> Endpoint:
    """The endpoint of a partner's ``channel: sftp`` settings; relative file paths are under ``home``."""
    options = channel.sftp or SftpOptions()
    return endpoint_of(
        host=channel.host or "",
        port=channel.port,
        username=channel.username or "",
        host_key=channel.host_key,
        options=options,
        home=home,
    )


def endpoint_of(
    *, host: str, port: int, username: str, host_key: str | None, options: SftpOptions, home: Path
) -> Endpoint:
    def path(value: str | None) -> Path | None:
        return None if value is None else (home / value if not os.path.isabs(value) else Path(value))

    return Endpoint(
        host=host,
        port=port,
        username=username,
        host_key=host_key,
        known_hosts=path(options.known_hosts),
        key_file=path(options.key_file),
        passphrase=options.passphrase,
        password=options.password,
        timeout=options.timeout_seconds,
        max_requests=options.max_requests,
        read_size=options.read_size,
    )


def read_secret(secret: Secret) -> str:
    """The secret's value (read now, never kept in YAML); SftpError when it cannot be read."""
    ref = SecretRef(env=secret.env, file=secret.file)
    why = ref.problem()
    if why is not None:
        raise SftpError(why, "auth")
    return ref.value()


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _parse_key(text: str) -> paramiko.PKey:
    parts = text.split()
    if len(parts) < 2:
        raise SftpError(f"host_key {text!r} is not '<type> <base64>' (a known_hosts line's key part)", "host_key")
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
    except (ValueError, paramiko.SSHException, TypeError) as exc:
        raise SftpError(f"host_key {parts[0]} ...: not a readable public key ({exc})", "host_key") from exc


def pinned_keys(ep: Endpoint) -> list[paramiko.PKey]:
    """The host keys pinned for this endpoint (empty: none pinned, every key is refused)."""
    keys = [_parse_key(ep.host_key)] if ep.host_key else []
    if ep.known_hosts is not None:
        try:
            known = paramiko.HostKeys(str(ep.known_hosts))
        except OSError as exc:
            raise SftpError(f"known_hosts {ep.known_hosts}: {exc.strerror or exc}", "host_key") from exc
        names = [ep.host] if ep.port == 22 else [f"[{ep.host}]:{ep.port}"]
        for name in names:
            entry = known.lookup(name)
            if entry is not None:
                keys.extend(entry.values())
    return keys


def check_host_key(ep: Endpoint, offered: paramiko.PKey) -> None:
    """Raise :class:`HostKeyRefused` unless ``offered`` is pinned for ``ep``."""
    pinned = pinned_keys(ep)
    got = f"{offered.get_name()} {fingerprint(offered)}"
    if any(k.get_name() == offered.get_name() and k.asbytes() == offered.asbytes() for k in pinned):
        return
    if not pinned:
        where = f"known_hosts {ep.known_hosts}" if ep.known_hosts else "the profile (host_key)"
        raise HostKeyRefused(
            f"{ep.label}: unknown host key {got}; nothing is pinned for this host in {where}: "
            "verify the fingerprint with the partner and pin it (never added automatically)",
            got,
            [],
        )
    want = [f"{k.get_name()} {fingerprint(k)}" for k in pinned]
    raise HostKeyRefused(
        f"{ep.label}: HOST KEY CHANGED: the server offered {got} but {', '.join(want)} is pinned; "
        "connection refused, nothing transferred (a new server key, or someone in between)",
        got,
        want,
    )


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def local_name(remote: str) -> str:
    """A single safe local file name for a remote path: its last part, control characters and separators
    replaced, never ``.``/``..`` or hidden, at most ``MAX_NAME_BYTES`` bytes (a long one keeps a hash)."""
    base = posixpath.basename(remote.rstrip("/")) or "unnamed"
    name = _UNSAFE.sub("_", base).lstrip(".") or "unnamed"
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_NAME_BYTES:
        digest = hashlib.sha256(encoded).hexdigest()[:12]
        stem = encoded[: MAX_NAME_BYTES - 13].decode("utf-8", "ignore")
        name = f"{stem}-{digest}"
    return name


def remote_join(folder: str, name: str) -> str:
    """``folder/name``, refusing names that would leave ``folder`` (``..``, ``/``, control characters)."""
    if not name or name in (".", "..") or "/" in name or _UNSAFE.search(name):
        raise SftpError(f"remote name {name!r} is not a plain file name", "name")
    return posixpath.join(folder, name)


class _Watchdog:
    """Closes the session's socket when a step overruns its deadline (one armed step per thread)."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, str]] = {}  # thread id -> (deadline, what)
        self.fired: str | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="sftp-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while not self._stop and self.fired is None:
                if not self._armed:
                    self._cond.wait()
                    continue
                deadline, what = min(self._armed.values())
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self.fired = what
                self._armed.clear()
                break
        if self.fired is not None:
            self._close()

    def expire(self, what: str) -> None:
        """``what`` ran out of time by the channel's own timeout (set to the same deadline), before this
        watchdog noticed: the connection is abandoned all the same (closed, nothing more sent on it)."""
        with self._cond:
            if self.fired is None:
                self.fired = what
                self._armed.clear()
                self._cond.notify()

    def arm(self, seconds: float, what: str) -> None:
        with self._cond:
            if self.fired is None:
                self._armed[threading.get_ident()] = (time.monotonic() + seconds, what)
                self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._armed.pop(threading.get_ident(), None)

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()


class _Step:
    """``with session.step("list /in"):`` the step runs under the deadline; an overrun raises SftpTimeout."""

    def __init__(self, dog: _Watchdog, seconds: float, what: str, label: str) -> None:
        self.dog, self.seconds, self.what, self.label = dog, seconds, what, label

    def __enter__(self) -> None:
        if self.dog.fired is not None:
            raise SftpTimeout(f"{self.label}: connection abandoned after {self.dog.fired} stalled")
        self.dog.arm(self.seconds, self.what)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.dog.disarm()
        if isinstance(exc, TimeoutError):  # the channel's timeout (the same deadline) ran out first
            self.dog.expire(self.what)
        if self.dog.fired is not None:
            raise SftpTimeout(
                f"{self.label}: {self.dog.fired} got no answer within {self.seconds:g} s; connection abandoned"
            ) from exc


class _Pipelined:
    """A file's bytes in order, with up to ``window`` read requests in flight (requested and not yet
    handed out), in the caller's thread: memory stays within ``window x size`` however slow the caller.

    paramiko's own ``prefetch(max_concurrent_requests=...)`` declares itself done whenever every
    request sent so far is answered (which a reader keeping up makes happen between two batches of
    its prefetch thread), then falls back to one synchronous request at a time while that thread goes
    on fetching into a buffer nobody reads: slow, and memory grows with the file. So the requests are
    sent here with ``SFTPClient._async_request`` and their answers, read with ``_read_response``, come
    back to :meth:`_async_response` (paramiko's own protocol for asynchronous requests). A short
    answer (a server reading less than asked) gets its gap asked for at once. One extra request past
    the listed size tells whether the file has grown since it was listed.
    """

    def __init__(self, client: paramiko.SFTPClient, handle: bytes, size: int, read_size: int, window: int) -> None:
        self.client, self.handle, self.size, self.read_size, self.window = client, handle, size, read_size, window
        self.pending: dict[int, tuple[int, int]] = {}  # request number -> (offset, length)
        self.answers: dict[int, bytes] = {}  # offset -> bytes
        self.eof: set[int] = set()  # offsets answered "end of file"
        self.error: BaseException | None = None
        self.sent = 0  # the next offset to ask for
        self.want = 0  # the next offset to hand out
        self.probed = False
        self.grew = False

    def _ask(self, offset: int, length: int) -> None:
        num = self.client._async_request(
            self, paramiko.sftp.CMD_READ, self.handle, paramiko.sftp.int64(offset), int(length)
        )
        self.pending[num] = (offset, length)

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        offset, _ = self.pending.pop(num)
        if t == paramiko.sftp.CMD_DATA:
            self.answers[offset] = msg.get_string()
            return
        try:
            self.client._convert_status(msg)  # raises the server's error (EOFError: end of file)
            self.error = SftpError(f"unexpected answer {t} to a read")
        except EOFError:
            self.eof.add(offset)
        except (OSError, paramiko.SSHException) as exc:
            self.error = exc

    def _fill(self) -> None:
        while len(self.pending) + len(self.answers) < self.window and self.sent < self.size:
            length = min(self.read_size, self.size - self.sent)
            self._ask(self.sent, length)
            self.sent += length
        if self.sent >= self.size and not self.probed:
            self._ask(self.size, 1)  # past the listed end: EOF unless the file grew
            self.probed = True

    def next(self) -> bytes | None:
        """The next piece of the file, or None at the listed size."""
        while True:
            if self.error is not None:
                raise self.error
            if self.want >= self.size:
                return None
            self._fill()
            data = self.answers.pop(self.want, None)
            if data is not None:
                if not data:
                    raise EOFError(f"empty answer at byte {self.want}")
                end = self.want + len(data)
                if end < self.size and end not in self.answers and not self._asked(end):
                    self._ask(end, min(self.read_size, self.size - end))  # a short answer: ask for the gap
                self.want = end
                return data
            if self.want in self.eof:
                raise EOFError(f"end of file at byte {self.want} of {self.size}: it shrank since it was listed")
            self.client._read_response()  # one answer, dispatched to _async_response

    def _asked(self, offset: int) -> bool:
        return any(start == offset for start, _ in self.pending.values())

    def drain(self) -> None:
        """Read the answers still due (the probe past the end among them) so the channel stays in step."""
        while self.pending:
            self.client._read_response()
        self.grew = any(offset >= self.size for offset in self.answers)
        if self.error is not None and not isinstance(self.error, EOFError):
            raise self.error


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A regular file in a listing: its path, size and mtime (seconds)."""

    path: str
    size: int
    mtime: int

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


class Session:
    """A connected, authenticated SFTP session; use as a context manager (closing it closes the socket)."""

    def __init__(self, ep: Endpoint, sock: socket.socket) -> None:
        self.ep = ep
        self.sock = sock
        self.transport: paramiko.Transport | None = None
        self.sftp: paramiko.SFTPClient | None = None
        self.offered: paramiko.PKey | None = None
        self.dog = _Watchdog(self._abandon)
        self.extra: list[paramiko.SFTPClient] = []  # more SFTP channels on the same connection (:meth:`map`)
        self._local = threading.local()

    def _abandon(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        if self.transport is not None:
            self.transport.close()

    def step(self, what: str, seconds: float | None = None) -> _Step:
        return _Step(self.dog, self.ep.timeout if seconds is None else seconds, what, self.ep.label)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.dog.stop()
        for client in [*self.extra, self.sftp]:
            try:
                if client is not None:
                    client.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass
        if self.transport is not None:
            self.transport.close()
        self.sock.close()

    @property
    def client(self) -> paramiko.SFTPClient:
        """This thread's SFTP channel (the session's own, or one :meth:`map` lent it)."""
        lent: paramiko.SFTPClient | None = getattr(self._local, "client", None)
        if lent is not None:
            return lent
        if self.sftp is None:
            raise SftpError(f"{self.ep.label}: not connected")
        return self.sftp

    def map(self, fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
        """``fn`` over ``items`` on up to ``workers`` SFTP channels of this connection at once (many small
        files: their round trips overlap); results in order. Each call still runs under its deadlines."""
        count = min(workers, len(items))
        if count <= 1:
            return [fn(item) for item in items]
        transport = self.transport
        assert transport is not None
        while len(self.extra) < count - 1:
            with self.step("open another sftp channel"):
                try:
                    channel = transport.open_session(timeout=self.ep.timeout)
                    channel.settimeout(self.ep.timeout)
                    channel.invoke_subsystem("sftp")
                    self.extra.append(paramiko.SFTPClient(channel))
                except (OSError, EOFError, paramiko.SSHException):
                    if self.dog.fired is not None:
                        raise
                    if not self.extra:
                        return [fn(item) for item in items]  # the server allows one channel: one at a time
                    break
        free: queue.SimpleQueue[paramiko.SFTPClient] = queue.SimpleQueue()
        for client in [self.client, *self.extra][:count]:
            free.put(client)

        def run(item: T) -> R:
            client = free.get()
            self._local.client = client
            try:
                return fn(item)
            finally:
                self._local.client = None
                free.put(client)

        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="sftp-io") as pool:
            return list(pool.map(run, items))

    # --- remote operations -----------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        with self.step(what):
            try:
                return fn()
            except PermissionError as exc:
                raise SftpError(f"{self.ep.label}: {what}: permission denied", "permission") from exc
            except FileNotFoundError as exc:
                raise SftpError(f"{self.ep.label}: {what}: no such file or folder", "missing") from exc
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if self.dog.fired is not None:
                    raise  # the step's __exit__ reports the timeout
                raise SftpError(f"{self.ep.label}: {what}: {exc}", "remote") from exc

    def listdir(self, folder: str) -> list[paramiko.SFTPAttributes]:
        return list(self._call(f"list {folder}", lambda: self.client.listdir_attr(folder)))

    def walk(self, folder: str, *, recursive: bool, skip: set[str] | None = None) -> Iterator[RemoteFile]:
        """Regular files in ``folder`` (and below when ``recursive``; folders in ``skip`` are not entered)."""
        for attr in self.listdir(folder):
            name = attr.filename
            if name in (".", ".."):
                continue
            path = posixpath.join(folder, name)
            mode = attr.st_mode or 0
            if stat.S_ISDIR(mode):
                if recursive and path not in (skip or set()):
                    yield from self.walk(path, recursive=True, skip=skip)
                continue
            if stat.S_ISREG(mode):
                yield RemoteFile(path, int(attr.st_size or 0), int(attr.st_mtime or 0))

    def reads(self) -> tuple[int, int]:
        """``(bytes per read request, requests in flight)`` for downloads. The endpoint's when set; else
        255 KiB x 16 from an OpenSSH 9 or later server (its sftp-server answers reads up to 255 KiB; eight
        times fewer packets and responses than 32 KiB ones, which is most of paramiko's CPU), and 32 KiB x
        128 from any other (every server answers 32 KiB; one answering less would end the prefetch)."""
        version = re.match(r"SSH-2\.0-OpenSSH_(\d+)", self.transport.remote_version if self.transport else "")
        big = version is not None and int(version[1]) >= 9
        size = self.ep.read_size or (MAX_READ if big else 32768)
        return size, self.ep.max_requests or max(4, (4 << 20) // size if big else 128)

    def stat(self, path: str) -> paramiko.SFTPAttributes:
        return self._call(f"stat {path}", lambda: self.client.stat(path))

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except SftpError as exc:
            if exc.kind == "missing":
                return False
            raise
        return True

    def rename(self, old: str, new: str) -> None:
        self._call(f"rename {old} to {new}", lambda: self.client.posix_rename(old, new))

    def remove(self, path: str) -> None:
        self._call(f"remove {path}", lambda: self.client.remove(path))

    def makedirs(self, folder: str) -> None:
        """Create ``folder`` and its parents where missing."""
        if folder in ("", "/", ".") or self.exists(folder):
            return
        self.makedirs(posixpath.dirname(folder.rstrip("/")))
        self._call(f"mkdir {folder}", lambda: self.client.mkdir(folder))

    def download(self, remote: RemoteFile, target: Path) -> str:
        """Stream ``remote`` into ``target`` (created, truncated) with prefetch; returns its sha256. Raises
        SftpError when fewer or more bytes than listed arrive, SftpTimeout when a read stalls."""
        sha = hashlib.sha256()
        got = 0
        with self.step(f"open {remote.path}"):
            try:
                handle = self.client.open(remote.path, "rb")
            except PermissionError as exc:
                raise SftpError(f"{self.ep.label}: read {remote.path}: permission denied", "permission") from exc
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise SftpError(f"{self.ep.label}: open {remote.path}: {exc}", "remote") from exc
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    read_size, requests = self.reads()
                    reads = _Pipelined(self.client, handle.handle, remote.size, read_size, requests)
                    while True:
                        with self.step(f"read {remote.path} at byte {got}"):
                            try:
                                chunk = reads.next()
                            except (OSError, EOFError, paramiko.SSHException) as exc:
                                if self.dog.fired is not None or isinstance(exc, TimeoutError):
                                    raise  # a stall: the step reports it as SftpTimeout
                                raise SftpError(f"{self.ep.label}: read {remote.path} at byte {got}: {exc}") from exc
                        if chunk is None:
                            break
                        out.write(chunk)
                        sha.update(chunk)
                        got += len(chunk)
                    reads.drain()
            except BaseException:
                # The error in flight is the one to report (a stalled read's timeout, say): closing the remote
                # handle of an abandoned connection fails too, and must not replace it.
                self._close_after_failure(handle, remote.path)
                raise
            with self.step(f"close {remote.path}"):
                try:
                    handle.close()
                except (EOFError, paramiko.SSHException) as exc:
                    raise SftpError(f"{self.ep.label}: close {remote.path}: {exc}") from exc
        except OSError as exc:
            if isinstance(exc, SftpError):
                raise
            raise SftpError(f"{self.ep.label}: read {remote.path}: {exc}") from exc
        if reads.grew:
            raise SftpError(f"{self.ep.label}: {remote.path}: longer than the {remote.size} bytes listed (it changed)")
        if got != remote.size:
            raise SftpError(f"{self.ep.label}: {remote.path}: read {got} bytes, listed {remote.size} (it changed)")
        return sha.hexdigest()

    def _close_after_failure(self, handle: paramiko.SFTPFile, path: str) -> None:
        """Close a remote file whose transfer already failed. The caller reports that failure, so a close
        that fails as well is logged, not raised over it; on a connection the watchdog abandoned, nothing is
        sent at all (the transport is closed)."""
        if self.dog.fired is not None:
            return
        try:
            with self.step(f"close {path} after a failed transfer"):
                handle.close()
        except (OSError, EOFError, paramiko.SSHException, SftpError) as exc:
            log.debug("%s: closing %s after a failed transfer: %s", self.ep.label, path, exc)

    def _write(self, path: str, data: bytes) -> None:
        def write() -> None:
            with self.client.open(path, "wb") as out:
                out.set_pipelined(True)
                view = memoryview(data)
                for start in range(0, len(data), 32768):
                    out.write(view[start : start + 32768])

        self._call(f"write {path}", write)
        size = self.stat(path).st_size
        if size != len(data):
            raise SftpError(f"{self.ep.label}: {path}: the server holds {size} bytes, {len(data)} were written")

    def upload_in_place(self, data: bytes, folder: str, name: str) -> int:
        """Write ``data`` to ``folder/name`` directly and check its remote size (no rename)."""
        self._write(remote_join(folder, name), data)
        return len(data)

    def upload(self, data: bytes, folder: str, name: str, temp: str) -> int:
        """Write ``data`` to ``folder/temp``, check its remote size, rename it to ``folder/name``; its size.
        A file already there under ``name`` is replaced (a retry after an unanswered rename)."""
        final = remote_join(folder, name)
        part = remote_join(folder, temp)
        self._write(part, data)
        self.rename(part, final)
        return len(data)


def connect(ep: Endpoint) -> Session:
    """Connect, check the host key, authenticate and open SFTP, each under ``ep.timeout``."""
    try:
        sock = socket.create_connection((ep.host, ep.port), timeout=ep.timeout)
    except TimeoutError as exc:
        raise SftpTimeout(f"{ep.label}: TCP connect got no answer within {ep.timeout:g} s") from exc
    except OSError as exc:
        raise SftpError(f"{ep.label}: cannot connect: {exc.strerror or exc}", "connect") from exc
    session = Session(ep, sock)
    try:
        _open(session)
    except BaseException:
        session.close()
        raise
    return session


def _open(session: Session) -> None:
    ep = session.ep
    with session.step("banner and key exchange"):
        try:
            transport = paramiko.Transport(
                session.sock, default_window_size=WINDOW, default_max_packet_size=MAX_READ + 1024
            )
            session.transport = transport
            options = transport.get_security_options()
            # AES-GCM first: an AEAD cipher needs no separate MAC, whose check paramiko does byte by byte in
            # Python (a third of a download's CPU with aes128-ctr + hmac-sha2-256). Servers without it
            # negotiate the next one.
            options.ciphers = PREFERRED_CIPHERS + tuple(c for c in options.ciphers if c not in PREFERRED_CIPHERS)
            transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = ep.timeout
            transport.start_client(timeout=ep.timeout)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if session.dog.fired is not None:
                raise
            raise SftpError(f"{ep.label}: SSH handshake failed: {exc}", "connect") from exc
    session.offered = transport.get_remote_server_key()
    check_host_key(ep, session.offered)
    with session.step("authentication"):
        _authenticate(session, transport)
    with session.step("open sftp"):
        try:
            channel = transport.open_session(timeout=ep.timeout)
            channel.settimeout(ep.timeout)
            channel.invoke_subsystem("sftp")
            session.sftp = paramiko.SFTPClient(channel)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if session.dog.fired is not None:
                raise
            raise SftpError(f"{ep.label}: cannot open SFTP: {exc}", "remote") from exc


def _authenticate(session: Session, transport: paramiko.Transport) -> None:
    ep = session.ep
    attempts: list[tuple[str, Callable[[], object]]] = []
    if ep.key_file is not None:
        passphrase = read_secret(ep.passphrase) if ep.passphrase is not None else None
        try:
            key = paramiko.PKey.from_path(str(ep.key_file), passphrase.encode() if passphrase else None)
        except (OSError, paramiko.SSHException, ValueError, TypeError) as exc:
            raise SftpError(f"{ep.label}: cannot read key {ep.key_file}: {exc}", "auth") from exc
        attempts.append(
            (f"key {ep.key_file.name} ({key.get_name()})", lambda: transport.auth_publickey(ep.username, key))
        )
    if ep.password is not None:
        password = read_secret(ep.password)
        attempts.append(("password", lambda: transport.auth_password(ep.username, password)))
    if not attempts:
        raise SftpError(f"{ep.label}: no key_file or password configured", "auth")
    tried: list[str] = []
    for label, attempt in attempts:
        try:
            attempt()
            return
        except paramiko.AuthenticationException as exc:
            tried.append(f"{label}: {exc}")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if session.dog.fired is not None:
                raise
            raise SftpError(f"{ep.label}: authentication failed: {exc}", "auth") from exc
    raise SftpError(f"{ep.label}: authentication refused ({'; '.join(tried)})", "auth")
