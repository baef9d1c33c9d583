"""Received files: recording them, leasing them to workers, finishing them.

A worker leases files with :meth:`FileOps.claim_files` (status
``processing``, ``lease_owner``, ``lease_expires_at``, ``attempts`` + 1),
renews the lease while it works, and ends it with
:meth:`FileOps.set_file_status` or :meth:`FileOps.release`. A worker that dies
stops renewing; once the lease has expired, the next claim takes the file
over (a ``reclaim`` event names the previous owner). Only the lease owner may
finish a leased file, so a slow worker whose file was taken over gets a
:class:`LeaseError` instead of overwriting the new owner's result.

Claims never hand one file to two workers: PostgreSQL locks the candidate
rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent claimers skip
each other's rows instead of waiting), SQLite runs the claim in a
``BEGIN IMMEDIATE`` transaction (claimers take turns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update

from gateway.store.archive import Archive
from gateway.store.base import EVENT_INSERT, StoreBase, as_enum, new_correlation_id
from gateway.store.errors import LeaseError, StoreValueError, TransitionError
from gateway.store.inserts import insert_returning
from gateway.store.rows import FileRow, Record
from gateway.store.schema import events, files
from gateway.store.statuses import FILE_TRANSITIONS, EntityKind, EventAction, FileFormat, FileStatus

__all__ = ["FileOps", "Intake"]

_INITIAL = frozenset(
    {FileStatus.RECEIVED, FileStatus.DUPLICATE, FileStatus.HELD, FileStatus.QUARANTINED, FileStatus.FAILED}
)


def _check_worker(worker: str) -> str:
    if not worker or len(worker) > 128:
        raise StoreValueError(f"worker name must be 1 to 128 characters, got {worker!r}")
    return worker


def _leased_to(file_ids: list[int], worker: str) -> ColumnElement[bool]:
    """The files among ``file_ids`` that ``worker`` holds the lease of."""
    return and_(files.c.id.in_(file_ids), files.c.status == FileStatus.PROCESSING.value, files.c.lease_owner == worker)


def _check_lease(row: Record, worker: str | None, doing: str) -> None:
    """Raise :class:`LeaseError` unless ``worker`` may change the file ``row`` (see module notes)."""
    owner = row["lease_owner"]
    leased = row["status"] == FileStatus.PROCESSING
    if leased and worker != owner:
        who = "no worker" if worker is None else f"worker {worker!r}"
        raise LeaseError(f"cannot {doing} file {row['id']}: it is leased by {owner!r}, not {who}")
    if not leased and worker is not None:
        raise LeaseError(
            f"cannot {doing} file {row['id']} as worker {worker!r}: it holds no lease (status {row['status']})"
        )


@dataclass(slots=True)
class NextBatch:
    """The next batch to claim inside a results transaction (``record_batch(..., claim=)``), as
    :meth:`FileOps.claim_files` would in one of its own: one write transaction a batch fewer, and on SQLite
    one wait fewer for the ledger's write lock. ``rows`` and ``leased_at`` (``time.monotonic()``) are set
    once that transaction has committed; a transaction that fails leaves them empty (nothing was leased)."""

    limit: int
    lease_seconds: float
    max_attempts: int | None = None
    rows: list[FileRow] = field(default_factory=list)
    leased_at: float | None = None
    error: str | None = None  # the claim failed (rolled back alone): the results were recorded all the same


@dataclass(frozen=True, slots=True)
class Intake:
    """A file to record (see :meth:`FileOps.record_files`); its bytes are already in the archive."""

    sha256: str
    size: int
    name: str
    origin: str
    partner_id: str | None
    format: str
    status: str = FileStatus.RECEIVED
    reason: str | None = None


_INSERT_FILE = files.insert().returning(*files.c)


def _find_intake_on(conn: Connection, sha256: str, origin: str) -> FileRow | None:
    query = select(files).where(files.c.sha256 == sha256, files.c.origin == origin).order_by(files.c.id).limit(1)
    row = conn.execute(query).mappings().first()
    return None if row is None else FileRow.from_mapping(row)


def _checked(item: Intake) -> tuple[FileFormat, FileStatus]:
    """The intake's format and status, or the store error that refuses it."""
    Archive.check_digest(item.sha256)
    file_format = as_enum(FileFormat, item.format, "file format")
    file_status = as_enum(FileStatus, item.status, "file status")
    if file_status not in _INITIAL:
        raise TransitionError(f"a file cannot be recorded as {file_status}: record it received, then claim it")
    if item.size < 0:
        raise StoreValueError(f"file size cannot be negative: {item.size}")
    return file_format, file_status


class FileOps(StoreBase):
    """Recording, leasing and finishing received files."""

    def record_files(self, intakes: list[Intake]) -> list[FileRow]:
        """Record many files in one transaction (a batch taken from the inbox); one row per intake, in order.

        A drop recorded before (same bytes, same ``origin``: a retake after a
        crash between recording and moving the file away) is not recorded
        again: its existing row is returned. Statuses as in :meth:`record_file`.
        """
        checked = [(item, *_checked(item)) for item in intakes]
        new_events: list[dict[str, Any]] = []
        with self._db.write(f"record {len(intakes)} file(s)") as conn:
            shas = sorted({item.sha256 for item in intakes})
            earlier: dict[tuple[str, str], Record] = {
                (r["sha256"], r["origin"]): r
                for r in conn.execute(
                    select(files).where(files.c.sha256.in_(shas)).order_by(files.c.id.desc())
                ).mappings()
            }  # the first recording of each drop wins (ids descending: the lowest is kept)
            fresh: dict[tuple[str, str], tuple[Intake, FileFormat, FileStatus]] = {}
            for item, file_format, file_status in checked:
                if (item.sha256, item.origin) not in earlier:
                    fresh.setdefault((item.sha256, item.origin), (item, file_format, file_status))
            values = [self._file_values(item, fmt, status, None, None) for item, fmt, status in fresh.values()]
            names = tuple(c.name for c in files.c)
            rows = insert_returning(conn, files, values, ("sha256", "origin"), names)
            for (item, _, _), value, row in zip(fresh.values(), values, rows, strict=True):
                earlier[(item.sha256, item.origin)] = row
                new_events.append(self._file_event(value, int(row["id"]), item))
            out = [FileRow.from_mapping(earlier[(item.sha256, item.origin)]) for item in intakes]
            if new_events:
                conn.execute(EVENT_INSERT, new_events)
        return out

    def _file_values(
        self,
        item: Intake,
        file_format: FileFormat,
        file_status: FileStatus,
        correlation_id: str | None,
        parent_id: int | None,
    ) -> dict[str, Any]:
        """The values of the file's new row."""
        now = self._now()
        return {
            "sha256": item.sha256,
            "size": item.size,
            "name": item.name,
            "origin": item.origin,
            "partner_id": item.partner_id,
            "format": file_format.value,
            "status": file_status.value,
            "reason": item.reason,
            "correlation_id": correlation_id or new_correlation_id(),
            "parent_id": parent_id,
            "received_at": now,
            "updated_at": now,
            "attempts": 0,
            "results_at": None,
            "results": None,
            "lease_owner": None,
            "lease_expires_at": None,
        }

    def _file_event(self, values: dict[str, Any], file_id: int, item: Intake) -> dict[str, Any]:
        """The ``create`` event of the file's new row (``values``, :meth:`_file_values`)."""
        return self.event_row(
            kind=EntityKind.FILE,
            entity_id=file_id,
            file_id=file_id,
            action=EventAction.CREATE,
            from_status=None,
            to_status=values["status"],
            at=values["received_at"],
            reason=item.reason,
            details={"origin": item.origin, "sha256": item.sha256, "size": item.size, "parent_id": values["parent_id"]},
            correlation_id=values["correlation_id"],
        )

    def _insert_file(
        self,
        conn: Connection,
        item: Intake,
        file_format: FileFormat,
        file_status: FileStatus,
        correlation_id: str | None,
        parent_id: int | None,
        new_events: list[dict[str, Any]],
    ) -> Record:
        """Insert the file's row; its ``create`` event is added to ``new_events`` for the caller to insert."""
        values = self._file_values(item, file_format, file_status, correlation_id, parent_id)
        row = conn.execute(_INSERT_FILE, values).mappings().one()
        new_events.append(self._file_event(values, int(row["id"]), item))
        return row

    def record_file(
        self,
        sha256: str,
        size: int,
        name: str,
        origin: str,
        partner_id: str | None,
        format: str,
        correlation_id: str | None = None,
        parent_id: int | None = None,
        status: str = FileStatus.RECEIVED,
        reason: str | None = None,
    ) -> FileRow:
        """Record a file whose bytes are already in the archive under ``sha256``; appends a ``create`` event.

        ``status`` may be ``received`` (the usual), or ``duplicate``, ``held``,
        ``quarantined`` or ``failed`` when intake already knows; never
        ``processing``. ``parent_id`` links a reprocessed copy to its original.
        """
        item = Intake(sha256, size, name, origin, partner_id, format, status, reason)
        file_format, file_status = _checked(item)
        with self._db.write("record a file") as conn:
            if parent_id is not None:
                self._get(conn, files, parent_id)
            new_events: list[dict[str, Any]] = []
            row = self._insert_file(conn, item, file_format, file_status, correlation_id, parent_id, new_events)
            conn.execute(EVENT_INSERT, new_events)
        return FileRow.from_mapping(row)

    def get_file(self, file_id: int) -> FileRow:
        """The file ``file_id``; :class:`NotFoundError` if there is none."""
        with self._db.read("read a file") as conn:
            return FileRow.from_mapping(self._get(conn, files, file_id))

    def claim_files(
        self, worker: str, limit: int, lease_seconds: float, *, max_attempts: int | None = None
    ) -> list[FileRow]:
        """Lease up to ``limit`` files to ``worker``, oldest first; returns the leased rows.

        Takes files that are ``received``, and files still ``processing`` whose
        lease has expired (their worker died). An expired file is handed out
        alone, in a batch of one: the worker that died may have been killed by
        another file of its batch. With ``max_attempts``, an expired file whose
        worker has died that many times with it in hand is quarantined instead
        of handed out again, so a file that kills its worker cannot loop
        forever; the files of its batch are not blamed (from their next
        attempt on they are alone), releases do not count, and a file whose
        results are already committed is never quarantined (its next owner
        only writes its outputs).
        """
        if limit < 1:
            return []
        with self._db.write("claim files") as conn:
            return self.claim_files_on(conn, worker, limit, lease_seconds, max_attempts=max_attempts)

    def claim_files_on(
        self, conn: Connection, worker: str, limit: int, lease_seconds: float, *, max_attempts: int | None = None
    ) -> list[FileRow]:
        """:meth:`claim_files` inside the caller's write transaction (the results transaction claims the
        next batch, :class:`NextBatch`); the rows are leased once it commits."""
        _check_worker(worker)
        if limit < 1:
            return []
        if lease_seconds <= 0:
            raise StoreValueError(f"lease_seconds must be positive, got {lease_seconds}")
        now = self._now()
        expires = now + timedelta(seconds=lease_seconds)
        expired = and_(files.c.status == FileStatus.PROCESSING.value, files.c.lease_expires_at < now)
        candidates_query = (
            select(
                files.c.id,
                files.c.status,
                files.c.lease_owner,
                files.c.attempts,
                files.c.correlation_id,
                files.c.results_at,
            )
            .where(or_(files.c.status == FileStatus.RECEIVED.value, expired))
            .order_by(files.c.received_at, files.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        candidates = conn.execute(candidates_query).mappings().all()
        chosen: dict[int, Record] = {}
        for candidate in candidates:
            stale = candidate["status"] == FileStatus.PROCESSING
            deaths = self._deaths(conn, candidate) if stale and max_attempts is not None else 0
            if stale and max_attempts is not None and deaths >= max_attempts:
                self._quarantine_exhausted(conn, candidate, deaths, now)
            elif stale:
                # Its worker died with it in hand: retried alone, so a file that kills its worker takes
                # down only itself from now on (and only it counts attempts towards max_attempts).
                chosen = {candidate["id"]: candidate}
                break
            else:
                chosen[candidate["id"]] = candidate
        if not chosen:
            return []
        rows = (
            conn.execute(
                update(files)
                .where(files.c.id.in_(list(chosen)))
                .values(
                    status=FileStatus.PROCESSING.value,
                    lease_owner=worker,
                    lease_expires_at=expires,
                    attempts=files.c.attempts + 1,
                    updated_at=now,
                )
                .returning(*files.c)
            )
            .mappings()
            .all()
        )
        claimed = []
        for row in rows:
            before = chosen[row["id"]]
            reclaimed = before["status"] == FileStatus.PROCESSING
            claimed.append(
                self.event_row(
                    kind=EntityKind.FILE,
                    entity_id=row["id"],
                    file_id=row["id"],
                    action=EventAction.RECLAIM if reclaimed else EventAction.CLAIM,
                    from_status=before["status"],
                    to_status=FileStatus.PROCESSING.value,
                    at=now,
                    reason=f"lease of {before['lease_owner']} expired" if reclaimed else None,
                    details={"attempt": row["attempts"], "lease_expires_at": expires.isoformat()},
                    correlation_id=row["correlation_id"],
                    actor=worker,
                )
            )
        conn.execute(EVENT_INSERT, claimed)
        previous = {
            file_id: before["lease_owner"]
            for file_id, before in chosen.items()
            if before["status"] == FileStatus.PROCESSING
        }
        return sorted(
            (FileRow.from_mapping({**r, "previous_owner": previous.get(r["id"])}) for r in rows),
            key=lambda f: (f.received_at, f.id),
        )

    @staticmethod
    def _deaths(conn: Connection, candidate: Record) -> int:
        """How many times a worker died with this file in hand: the lease that just expired, plus the
        earlier takeovers (``reclaim`` events). Releases (a worker stopping, the store down) do not count,
        nor does a death after the file's results were committed (the next owner only writes its outputs)."""
        if candidate["results_at"] is not None:
            return 0
        query = select(func.count()).where(
            events.c.entity_kind == EntityKind.FILE.value,
            events.c.entity_id == candidate["id"],
            events.c.action == EventAction.RECLAIM.value,
        )
        return 1 + int(conn.execute(query).scalar_one())

    def _quarantine_exhausted(self, conn: Connection, candidate: Record, deaths: int, now: datetime) -> None:
        reason = (
            f"lease of {candidate['lease_owner']} expired: its worker died {deaths} times with it in hand "
            f"(after {candidate['attempts']} attempts): the file may crash its worker"
        )
        conn.execute(
            update(files)
            .where(files.c.id == candidate["id"])
            .values(
                status=FileStatus.QUARANTINED.value,
                reason=reason,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        self._event(
            conn,
            kind=EntityKind.FILE,
            entity_id=candidate["id"],
            file_id=candidate["id"],
            action=EventAction.STATUS,
            from_status=FileStatus.PROCESSING.value,
            to_status=FileStatus.QUARANTINED.value,
            at=now,
            reason=reason,
            correlation_id=candidate["correlation_id"],
        )

    def renew_lease(self, file_id: int, worker: str, lease_seconds: float) -> FileRow:
        """Extend ``worker``'s lease on ``file_id`` to now + ``lease_seconds``; :class:`LeaseError` if lost."""
        _check_worker(worker)
        if lease_seconds <= 0:
            raise StoreValueError(f"lease_seconds must be positive, got {lease_seconds}")
        now = self._now()
        with self._db.write("renew a lease") as conn:
            row = self._get(conn, files, file_id, lock=True)
            _check_lease(row, worker, "renew the lease on")
            updated = (
                conn.execute(
                    update(files)
                    .where(files.c.id == file_id)
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
                    .returning(*files.c)
                )
                .mappings()
                .one()
            )
        return FileRow.from_mapping(updated)

    def renew_leases(self, file_ids: list[int], worker: str, lease_seconds: float) -> list[int]:
        """Extend ``worker``'s leases on ``file_ids`` in one transaction; returns the ids still leased to it."""
        _check_worker(worker)
        if lease_seconds <= 0:
            raise StoreValueError(f"lease_seconds must be positive, got {lease_seconds}")
        if not file_ids:
            return []
        now = self._now()
        mine = _leased_to(file_ids, worker)
        with self._db.write(f"renew {len(file_ids)} lease(s)") as conn:
            renewed = conn.execute(
                update(files)
                .where(mine)
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
                .returning(files.c.id)
            )
            return sorted(int(r[0]) for r in renewed)

    def leased_to(self, file_ids: list[int], worker: str) -> list[int]:
        """The ids among ``file_ids`` that ``worker`` still holds the lease on (read only: nothing extended)."""
        _check_worker(worker)
        if not file_ids:
            return []
        mine = _leased_to(file_ids, worker)
        with self._db.read(f"check {len(file_ids)} lease(s)") as conn:
            return sorted(int(r[0]) for r in conn.execute(select(files.c.id).where(mine)))

    def release(self, file_id: int, worker: str, reason: str | None = None) -> FileRow:
        """Give a leased file back (status ``received``, lease cleared) for any worker to claim again."""
        _check_worker(worker)
        return self._change_file(file_id, FileStatus.RECEIVED, reason, worker, EventAction.RELEASE, None)

    def unclaim(self, file_ids: list[int], worker: str, reason: str) -> list[int]:
        """Give back, in one transaction, files claimed by ``worker`` and never started (the batch claimed
        with the last one's results, when the loop stops): ``received`` again, lease cleared, their
        ``reason`` kept (an operator's release still lets their duplicates through), a release event each.
        Returns the ids given back (a file no longer leased to ``worker`` is left as it is)."""
        _check_worker(worker)
        if not file_ids:
            return []
        now = self._now()
        mine = _leased_to(file_ids, worker)
        with self._db.write(f"give back {len(file_ids)} file(s)") as conn:
            rows = conn.execute(
                update(files)
                .where(mine)
                .values(status=FileStatus.RECEIVED.value, lease_owner=None, lease_expires_at=None, updated_at=now)
                .returning(files.c.id, files.c.correlation_id)
            ).all()
            if rows:
                conn.execute(
                    EVENT_INSERT,
                    [
                        self.event_row(
                            kind=EntityKind.FILE,
                            entity_id=int(r.id),
                            file_id=int(r.id),
                            action=EventAction.RELEASE,
                            from_status=FileStatus.PROCESSING.value,
                            to_status=FileStatus.RECEIVED.value,
                            at=now,
                            reason=reason,
                            correlation_id=r.correlation_id,
                            actor=worker,
                        )
                        for r in rows
                    ],
                )
        return sorted(int(r.id) for r in rows)

    def set_file_status(
        self,
        file_id: int,
        status: str,
        reason: str | None = None,
        worker: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> FileRow:
        """Move a file to ``status`` (see :data:`FILE_TRANSITIONS`), clear its lease, append an event.

        A leased (``processing``) file can only be changed by its lease owner,
        passed as ``worker``; ``worker`` must be None for files that are not
        leased (operator actions). ``processing`` is only reached by claiming.
        """
        target = as_enum(FileStatus, status, "file status")
        if target is FileStatus.PROCESSING:
            raise TransitionError(f"file {file_id}: files enter processing only through claim_files (with a lease)")
        return self._change_file(file_id, target, reason, worker, EventAction.STATUS, details)

    def _change_file(
        self,
        file_id: int,
        target: FileStatus,
        reason: str | None,
        worker: str | None,
        action: EventAction,
        details: Mapping[str, Any] | None,
        *,
        clear_results: bool = False,
        actor: str | None = None,
    ) -> FileRow:
        now = self._now()
        with self._db.write(f"set file {file_id} {target}") as conn:
            row = self._get(conn, files, file_id, lock=True)
            _check_lease(row, worker, f"move to {target}")
            current = FileStatus(row["status"])
            if target not in FILE_TRANSITIONS[current]:
                allowed = ", ".join(sorted(FILE_TRANSITIONS[current])) or "nothing (final)"
                raise TransitionError(
                    f"file {file_id}: {current} -> {target} is not allowed; from {current}: {allowed}"
                )
            updated = (
                conn.execute(
                    update(files)
                    .where(files.c.id == file_id)
                    .values(
                        status=target.value,
                        reason=reason,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                        **({"results_at": None, "results": None} if clear_results else {}),
                    )
                    .returning(*files.c)
                )
                .mappings()
                .one()
            )
            self._event(
                conn,
                kind=EntityKind.FILE,
                entity_id=file_id,
                file_id=file_id,
                action=action,
                from_status=current.value,
                to_status=target.value,
                at=now,
                reason=reason,
                details=details,
                correlation_id=row["correlation_id"],
                actor=actor or worker,
            )
        return FileRow.from_mapping(updated)

    def requeue_file(self, file_id: int, actor: str, reason: str) -> FileRow:
        """An operator puts a held, failed or quarantined file back to ``received`` to be processed again
        from its archived bytes (its earlier results are forgotten; its rows are redone on the next claim)."""
        if not reason.strip():
            raise StoreValueError("a reason is required")
        return self._change_file(
            file_id, FileStatus.RECEIVED, reason, None, EventAction.REQUEUE, None, clear_results=True, actor=actor
        )

    def reprocess_file(self, file_id: int, actor: str, reason: str) -> FileRow:
        """A new file row for a file's archived bytes (``parent_id`` to it), ``received``: the runtime
        translates it again with the current maps and profiles, its duplicates let through, its documents
        linked to the earlier ones. The earlier file gets a ``reprocess`` event naming who and why."""
        if not reason.strip():
            raise StoreValueError("a reason is required")
        old = self.get_file(file_id)
        if old.status in (FileStatus.RECEIVED, FileStatus.PROCESSING):
            raise TransitionError(f"file {file_id} is {old.status}: it has not been processed yet")
        new = self.record_file(
            old.sha256,
            old.size,
            old.name,
            f"reprocess of file {file_id}",
            old.partner_id,
            old.format,
            parent_id=file_id,
            reason=f"reprocess of file {file_id}: {reason}",
        )
        with self._db.write(f"note the reprocessing of file {file_id}") as conn:
            self._event(
                conn,
                kind=EntityKind.FILE,
                entity_id=file_id,
                file_id=file_id,
                action=EventAction.REPROCESS,
                from_status=old.status,
                to_status=old.status,
                at=self._now(),
                reason=reason,
                details={"new_file_id": new.id},
                correlation_id=old.correlation_id,
                actor=actor,
            )
        return new

    def find_intake(self, sha256: str, origin: str) -> FileRow | None:
        """The file already recorded from this drop (same bytes, same ``origin``), or None.

        Intake is at-least-once: a crash between recording a file and moving
        its source away makes the next pass take the same drop again; this
        finds the first recording so it is not recorded twice.
        """
        Archive.check_digest(sha256)
        with self._db.read("find an intake") as conn:
            return _find_intake_on(conn, sha256, origin)

    def find_file_by_sha(self, sha256: str) -> FileRow | None:
        """The first file recorded with these bytes (the original of any duplicates), or None."""
        Archive.check_digest(sha256)
        with self._db.read("find a file by digest") as conn:
            row = (
                conn.execute(select(files).where(files.c.sha256 == sha256).order_by(files.c.id).limit(1))
                .mappings()
                .first()
            )
        return None if row is None else FileRow.from_mapping(row)
