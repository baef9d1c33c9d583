"""Pulling partners' files over SFTP: list, take only complete files, download, archive, record, then let go.

For each partner whose profile says ``inbound: {channel: sftp}``, a :class:`Puller` lists the remote
folder (patterns, optional recursion), keeps the files its completeness rule says are whole
(:func:`complete`), and takes each: streamed to a partial file under ``folders.run/sftp/<partner>/``
(never in the inbox: an interrupted transfer never enters processing; it is fetched again on the next
poll), its size checked against the listing, copied into the archive (durable), recorded in the ledger
with origin ``sftp:<partner>:<remote path>#<size>:<mtime>`` and its sha256, and only then moved to the
remote done folder (or deleted). A crash after the ledger commit and before the remote move makes the
next poll download the same bytes again, find the recorded row (same sha256 and origin) and only move
the remote file: one ledger record, the remote file moved.

:class:`Poller` polls every SFTP partner on a bounded thread pool, each on its own schedule; a partner
whose server is down or stalls occupies one worker for at most its step deadline and is retried with
exponential backoff and jitter, so it never delays the others. What each partner's last poll did is in
``folders.run/channels-<host>.json`` (:class:`ChannelStates`), read by ``gateway status`` and
``gateway channels status``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import posixpath
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.channels.sftp import (
    RemoteFile,
    Session,
    SftpError,
    connect,
    endpoint,
    local_name,
)
from gateway.partners.profile import ChannelSettings, PartnerDirectory, Profile
from gateway.partners.sftp_options import SftpOptions
from gateway.runtime.intake import IDENTIFY_BYTES, identify
from gateway.store import Archive
from gateway.store.durable import SyncGroup
from gateway.store.files import Intake as StoreIntake
from gateway.store.store import Store

log = logging.getLogger("gateway.sftp")

MAX_BACKOFF_SECONDS = 900.0
PARALLEL = 8
"""SFTP channels one pull uses at once (on one connection): many small files' round trips overlap."""


def origin_of(partner: str, remote: RemoteFile) -> str:
    """The ledger origin of one remote drop: path, size and mtime (with the sha256 column: the pull's identity)."""
    return f"sftp:{partner}:{remote.path}#{remote.size}:{remote.mtime}"


def done_folder(channel: ChannelSettings) -> str:
    options = channel.sftp or SftpOptions()
    base = channel.remote_dir or "."
    return options.done_dir if options.done_dir.startswith("/") else posixpath.join(base, options.done_dir)


def matches(name: str, options: SftpOptions) -> bool:
    """Whether a remote file name is one the partner's patterns take (never an upload in progress, never
    a done-marker itself)."""
    if name.startswith(".") or any(name.endswith(s) for s in options.temp_suffixes):
        return False
    if options.complete == "marker" and name.endswith(options.marker_suffix):
        return False
    return any(fnmatch.fnmatch(name, p) for p in options.patterns)


@dataclass(slots=True)
class Completeness:
    """The pluggable rule, with what it remembers between polls (``stable``: sightings per file)."""

    options: SftpOptions
    seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # path -> (size, mtime, sightings)

    def complete(self, files: list[RemoteFile], now: float) -> list[RemoteFile]:
        """The files of one listing that are complete now (``files`` is the whole listing)."""
        opts = self.options
        names = {f.path for f in files}
        out = []
        current: dict[str, tuple[int, int, int]] = {}
        for f in files:
            if not matches(f.name, opts):
                continue
            if now - f.mtime < opts.min_age_seconds:
                continue
            if opts.complete == "marker":
                if f.path + opts.marker_suffix in names:
                    out.append(f)
                continue
            if opts.complete in ("age", "rename"):
                out.append(f)
                continue
            size, mtime, count = self.seen.get(f.path, (-1, -1, 0))
            count = count + 1 if (size, mtime) == (f.size, f.mtime) else 1
            current[f.path] = (f.size, f.mtime, count)
            if count >= opts.stable_polls:
                out.append(f)
        if opts.complete == "stable":
            self.seen = current
        return out


@dataclass(slots=True)
class PollResult:
    partner: str
    taken: list[int] = field(default_factory=list)  # file ids recorded
    moved: int = 0
    backlog: int = 0  # matching files left on the server (incomplete, or not taken this time)
    error: str | None = None
    kind: str | None = None


class Puller:
    """Pulls one partner's files."""

    def __init__(
        self,
        profile: Profile,
        store: Store,
        archive: Archive,
        partners: PartnerDirectory,
        *,
        home: Path,
        spool: Path,
        sync: str = "group",
        connector: Callable[[Any], Session] = connect,
    ) -> None:
        if profile.inbound is None or profile.inbound.channel != "sftp":
            raise ValueError(f"partner {profile.id} has no inbound sftp channel")
        self.partner = profile.id
        self.channel = profile.inbound
        self.options = self.channel.sftp or SftpOptions()
        self.endpoint = endpoint(self.channel, home)
        self.store = store
        self.archive = archive
        self.partners = partners
        self.spool = spool / self.partner
        self.sync = sync
        self.rule = Completeness(self.options)
        self.connector = connector

    @property
    def remote_dir(self) -> str:
        return self.channel.remote_dir or "."

    def poll(self) -> PollResult:
        """One poll: connect, list, take what is complete. Errors are in the result, never raised."""
        result = PollResult(self.partner)
        try:
            with self.connector(self.endpoint) as session:
                listed = list(
                    session.walk(self.remote_dir, recursive=self.options.recursive, skip={done_folder(self.channel)})
                )
                ready = self.rule.complete(listed, time.time())
                result.backlog = sum(1 for f in listed if matches(f.name, self.options))
                ordered = sorted(ready, key=lambda f: (f.mtime, f.path))  # oldest first
                for batch in batches(ordered):
                    ids = self.take_batch(session, batch)
                    result.taken.extend(ids)
                    result.moved += len(ids)
                    result.backlog -= len(ids)
        except SftpError as exc:
            result.error, result.kind = str(exc), exc.kind
        except OSError as exc:  # the local disk (spool, archive): reported, retried at the next poll
            result.error, result.kind = f"partner {self.partner}: local file system: {exc}", "local"
        return result

    def take_batch(self, session: Session, batch: list[RemoteFile]) -> list[int]:
        """Download ``batch``, archive and record it (one durable flush, one transaction), then move (or
        delete) each remote file; the file ids recorded. A failed download ends the batch: what came
        whole before it is still recorded and let go, then the error is raised."""
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)

        def fetch(item: tuple[int, RemoteFile]) -> tuple[RemoteFile, Path, str] | SftpError:
            n, remote = item
            partial = self.spool / f".{n}.{local_name(remote.path)}.part"
            try:
                return remote, partial, session.download(remote, partial)
            except SftpError as exc:
                partial.unlink(missing_ok=True)
                return exc

        fetched = session.map(fetch, list(enumerate(batch)), PARALLEL)
        got = [f for f in fetched if not isinstance(f, SftpError)]
        failure = next((f for f in fetched if isinstance(f, SftpError)), None)
        try:
            ids = self._record(got) if got else []
        finally:
            for _, partial, _ in got:
                partial.unlink(missing_ok=True)
        if got and self.options.after == "move":
            for folder in sorted({posixpath.dirname(self.done_path(remote)) for remote, _, _ in got}):
                session.makedirs(folder)
        session.map(self._let_go_in(session), [remote for remote, _, _ in got], PARALLEL)
        if failure is not None:
            raise failure
        return ids

    def _let_go_in(self, session: Session) -> Callable[[RemoteFile], None]:
        return lambda remote: self._let_go(session, remote)

    def _record(self, got: list[tuple[RemoteFile, Path, str]]) -> list[int]:
        """Archive the downloaded files (durable together) and record them in one transaction. A file
        recorded before (same sha256 and origin: a crash before its remote move) keeps its row."""
        group = SyncGroup(self.sync)
        intakes = []
        try:
            for remote, partial, sha in got:
                with partial.open("rb") as stream:
                    staged, size = self.archive.stage_stream(stream, group)
                    stream.seek(0)
                    head = stream.read(IDENTIFY_BYTES)
                if staged != sha or size != remote.size:
                    raise SftpError(
                        f"partner {self.partner}: {remote.path}: the partial file changed under us", "local"
                    )
                fmt, partner, reason = identify(head, self.partner, self.partners)
                status = "quarantined" if reason else "received"
                origin = origin_of(self.partner, remote)
                intakes.append(StoreIntake(sha, size, local_name(remote.path), origin, partner, fmt, status, reason))
            group.flush()
        finally:
            group.discard()
        rows = self.store.record_files(intakes)
        for (remote, _, _), row in zip(got, rows, strict=True):
            log.info("partner %s: pulled %s (%d bytes) as file %s", self.partner, remote.path, remote.size, row.id)
        return [row.id for row in rows]

    def done_path(self, remote: RemoteFile) -> str:
        """Where ``remote`` goes once taken: ``done_dir`` plus its path below ``remote_dir`` (a recursive pull
        keeps its subfolders there, so two ``x.edi`` of two subfolders never replace one another)."""
        below = posixpath.relpath(remote.path, self.remote_dir)
        if below.startswith(".."):
            below = posixpath.basename(remote.path)
        return posixpath.join(done_folder(self.channel), below)

    def _let_go(self, session: Session, remote: RemoteFile) -> None:
        marker = remote.path + self.options.marker_suffix if self.options.complete == "marker" else None
        if self.options.after == "delete":
            session.remove(remote.path)
        else:  # its folder exists (made once per batch)
            session.rename(remote.path, self.done_path(remote))
        if marker is not None and session.exists(marker):
            session.remove(marker)


class ChannelStates:
    """Each SFTP partner's last poll, success, error and backlog: ``folders.run/channels-<host>.json``."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"channels-{socket.gethostname()}.json"
        self.lock = threading.Lock()
        self.items: dict[str, dict[str, Any]] = {}
        try:
            self.items = dict(json.loads(self.path.read_text("utf-8")).get("channels", {}))
        except (OSError, ValueError, AttributeError):
            self.items = {}

    def update(self, result: PollResult, at: datetime) -> None:
        stamp = at.isoformat(timespec="seconds")
        with self.lock:
            item = self.items.setdefault(result.partner, {"channel": "sftp"})
            item["last_poll"] = stamp
            item["backlog"] = result.backlog
            if result.error is None:
                item["last_success"] = stamp
                item["taken"] = int(item.get("taken", 0)) + len(result.taken)
                item.pop("error", None)
                item.pop("error_kind", None)
            else:
                item["last_error"] = stamp
                item["error"] = result.error
                item["error_kind"] = result.kind
            self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps({"channels": self.items}, indent=2, ensure_ascii=False), "utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot write %s for `gateway status`: %s", self.path, exc)


def read_states(folder: Path) -> dict[str, dict[str, Any]]:
    """Every host's channel states (``gateway status``, ``gateway channels status``); reads only."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("channels-*.json")) if folder.is_dir() else []:
        try:
            out.update(json.loads(path.read_text("utf-8")).get("channels", {}))
        except (OSError, ValueError, AttributeError) as exc:
            # Said, not skipped: an operator reading status must know a host's states are missing.
            out[path.stem] = {"last_error": f"state file {path} unreadable: {exc}"}
    return out


def channel_line(state: dict[str, Any]) -> str:
    """One line for a partner's channel state: last poll, last success, backlog, last error."""
    parts = [
        f"sftp, last poll {state.get('last_poll', 'never')}",
        f"last success {state.get('last_success', 'never')}",
        f"backlog {state.get('backlog', '?')}",
        f"taken {state.get('taken', 0)}",
    ]
    if state.get("error"):
        parts.append(f"ERROR ({state.get('error_kind')}) at {state.get('last_error')}: {state['error']}")
    return ", ".join(parts)


BATCH_FILES = 200
BATCH_BYTES = 256 << 20


def batches(files: list[RemoteFile]) -> list[list[RemoteFile]]:
    """``files`` in batches of at most ``BATCH_FILES`` files and about ``BATCH_BYTES`` (a bigger file alone)."""
    out: list[list[RemoteFile]] = []
    size = 0
    for f in files:
        if not out or len(out[-1]) >= BATCH_FILES or (size + f.size > BATCH_BYTES and out[-1]):
            out.append([])
            size = 0
        out[-1].append(f)
        size += f.size
    return out


def backoff(failures: int, poll: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next try after ``failures`` failed polls in a row: doubling, capped, +-20 % jitter."""
    base = min(MAX_BACKOFF_SECONDS, max(1.0, poll) * (2 ** min(failures - 1, 10)) if failures else poll)
    return base * (0.8 + 0.4 * rand())


class Poller:
    """Polls every SFTP partner on a bounded pool; a slow or dead server delays only itself."""

    def __init__(
        self,
        pullers: list[Puller],
        states: ChannelStates,
        *,
        workers: int = 8,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_taken: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.pullers = {p.partner: p for p in pullers}
        self.states = states
        self.clock = clock
        self.on_taken = on_taken
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(pullers))), thread_name_prefix="sftp")
        self.due = dict.fromkeys(self.pullers, 0.0)
        self.failures = dict.fromkeys(self.pullers, 0)
        self.running: dict[str, Future[PollResult]] = {}
        self.lock = threading.Lock()

    def _finish(self, partner: str, result: PollResult) -> None:
        puller = self.pullers[partner]
        if result.error is None:
            self.failures[partner] = 0
            delay = puller.options.poll_seconds
        else:
            self.failures[partner] += 1
            delay = backoff(self.failures[partner], min(puller.options.poll_seconds, 5.0))
            level = logging.ERROR
            if result.kind == "host_key":
                log.log(level, "partner %s: host key refused, nothing transferred: %s", partner, result.error)
            else:
                log.log(level, "partner %s: poll failed (%s), next try in %.0f s", partner, result.error, delay)
        self.due[partner] = time.monotonic() + delay
        self.states.update(result, self.clock())
        if result.taken and self.on_taken is not None:
            self.on_taken(result.taken)

    def _run(self, partner: str) -> PollResult:
        try:
            result = self.pullers[partner].poll()
        except Exception as exc:  # a bug or a store failure: reported, the partner retried, the poller lives
            log.exception("partner %s: poll failed", partner)
            result = PollResult(partner, error=f"{type(exc).__name__}: {exc}", kind="internal")
        self._finish(partner, result)
        return result

    def tick(self) -> int:
        """Start the polls that are due and not running; returns how many were started."""
        now = time.monotonic()
        started = 0
        with self.lock:
            for partner, due in self.due.items():
                running = self.running.get(partner)
                if running is not None and not running.done():
                    continue
                if due <= now:
                    self.due[partner] = float("inf")  # before the submit: a quick poll sets its next due time
                    self.running[partner] = self.pool.submit(self._run, partner)
                    started += 1
        return started

    def poll_all(self, timeout: float | None = None) -> list[PollResult]:
        """Poll every partner once now, concurrently; wait for all (``gateway run --once``)."""
        futures = [self.pool.submit(self._run, p) for p in self.pullers]
        return [f.result(timeout) for f in futures]

    def next_wait(self) -> float:
        pending = [d for d in self.due.values() if d != float("inf")]
        return max(0.05, min(pending) - time.monotonic()) if pending else 1.0

    def run(self, stopping: threading.Event) -> None:
        """Poll until ``stopping`` is set (a daemon thread of ``gateway run``)."""
        while not stopping.is_set():
            self.tick()
            stopping.wait(min(1.0, self.next_wait()))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def make_poller(
    partners: PartnerDirectory,
    store: Store,
    archive: Archive,
    *,
    home: Path,
    run_folder: Path,
    sync: str = "group",
    only: str | None = None,
) -> Poller | None:
    """The poller for every partner with ``inbound: {channel: sftp}`` (None when there is none)."""
    pullers = [
        Puller(p, store, archive, partners, home=home, spool=run_folder / "sftp", sync=sync)
        for p in partners.profiles.values()
        if p.inbound is not None and p.inbound.channel == "sftp" and (only is None or p.id == only)
    ]
    if not pullers:
        return None
    return Poller(pullers, ChannelStates(run_folder))


__all__ = [
    "ChannelStates",
    "Completeness",
    "PollResult",
    "Poller",
    "Puller",
    "backoff",
    "channel_line",
    "make_poller",
    "origin_of",
    "read_states",
]
