"""Acting in bulk: choosing deliveries to send again or files to translate again by filter, and doing it.

A :class:`Selection` (partner, document type, status, date range, destination) picks the *latest link*
of each chain: a delivery already retransmitted (another delivery's ``parent_id`` points at it) or a
file already reprocessed is left out, so the same command run twice resends the newest copy, never
every earlier one; any earlier link can still be resent by id. Pending deliveries (on their way) and
files not processed yet are never picked, nor files whose bytes a retention purge removed.

:meth:`BulkOps.retransmit_deliveries` and :meth:`BulkOps.reprocess_files` record, per item, the new
row linked to its parent and an event naming who and why, one transaction per call (the CLI calls
them in chunks to show progress). Reprocessing takes the same per-blob advisory lock as a purge on
PostgreSQL (SQLite serializes writers), so a purge never deletes bytes a reprocess is about to read.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, or_, select, text, update
from sqlalchemy.orm import aliased

from gateway.store.base import EVENT_INSERT
from gateway.store.deliveries import DeliveryRow
from gateway.store.errors import NotFoundError, StoreValueError, TransitionError
from gateway.store.files import FileOps, Intake
from gateway.store.rows import FileRow
from gateway.store.schema import deliveries, documents, files, outbound, purges, transaction_sets
from gateway.store.statuses import DeliveryStatus, EntityKind, EventAction, FileFormat, FileStatus

__all__ = ["BulkOps", "Selection", "blob_lock"]

_UNPROCESSED = (FileStatus.RECEIVED.value, FileStatus.PROCESSING.value)


@dataclass(frozen=True, slots=True)
class Selection:
    """What a bulk command acts on; None: any. ``doc_type`` is a canonical type (``invoice``) or an X12
    set id (``810``); ``status`` a delivery status for retransmit, a file status for reprocess; the dates
    bound when the delivery was created, or the file received (``since`` inclusive, ``until`` exclusive)."""

    partner: str | None = None
    doc_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    destination: str | None = None

    def is_empty(self) -> bool:
        """True when nothing narrows it (a bulk command then refuses: it would act on everything)."""
        return all(getattr(self, name) is None for name in self.__slots__)


def blob_lock(conn: Connection, sha256: str) -> None:
    """Serialize, on PostgreSQL, the transactions that read or delete the blob ``sha256`` (purge, reprocess);
    held until the transaction ends. SQLite needs none: its writers already take turns."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"blob:{sha256}".encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _purged(file_id: Any) -> ColumnElement[bool]:
    return exists().where(purges.c.file_id == file_id)


class BulkOps(FileOps):
    """Selections and the bulk retransmit and reprocess they feed."""

    def select_deliveries(self, sel: Selection, limit: int | None = None) -> list[DeliveryRow]:
        """The latest link of each delivery chain matching ``sel``, oldest first; never a pending one."""
        child = aliased(deliveries)
        where: list[ColumnElement[bool]] = [
            deliveries.c.status != DeliveryStatus.PENDING.value,
            ~exists().where(child.c.parent_id == deliveries.c.id),
            or_(deliveries.c.file_id.is_(None), ~_purged(deliveries.c.file_id)),
        ]
        if sel.partner is not None:
            where.append(deliveries.c.partner_id == sel.partner)
        if sel.doc_type is not None:
            by_set = exists().where(
                documents.c.id == deliveries.c.document_id,
                transaction_sets.c.id == documents.c.transaction_set_id,
                transaction_sets.c.set_id == sel.doc_type,
            )
            by_kind = exists().where(outbound.c.id == deliveries.c.outbound_id, outbound.c.kind == sel.doc_type)
            where.append(or_(deliveries.c.doc_type == sel.doc_type, by_set, by_kind))
        if sel.status is not None:
            where.append(deliveries.c.status == sel.status)
        if sel.destination is not None:
            where.append(deliveries.c.destination == sel.destination)
        if sel.since is not None:
            where.append(deliveries.c.created_at >= sel.since)
        if sel.until is not None:
            where.append(deliveries.c.created_at < sel.until)
        query = select(deliveries).where(and_(*where)).order_by(deliveries.c.id).limit(limit)
        with self._db.read("select deliveries") as conn:
            return [DeliveryRow.of(r) for r in conn.execute(query).mappings()]

    def select_files(self, sel: Selection, limit: int | None = None) -> list[FileRow]:
        """The latest copy of each processed file matching ``sel`` (not reprocessed yet), oldest first."""
        child = aliased(files)
        where: list[ColumnElement[bool]] = [
            files.c.status.not_in(_UNPROCESSED),
            ~exists().where(child.c.parent_id == files.c.id),
            ~_purged(files.c.id),
        ]
        if sel.partner is not None:
            where.append(files.c.partner_id == sel.partner)
        if sel.status is not None:
            where.append(files.c.status == sel.status)
        if sel.doc_type is not None:
            where.append(
                or_(
                    exists().where(documents.c.file_id == files.c.id, documents.c.doc_type == sel.doc_type),
                    exists().where(transaction_sets.c.file_id == files.c.id, transaction_sets.c.set_id == sel.doc_type),
                )
            )
        if sel.since is not None:
            where.append(files.c.received_at >= sel.since)
        if sel.until is not None:
            where.append(files.c.received_at < sel.until)
        query = select(files).where(and_(*where)).order_by(files.c.id).limit(limit)
        with self._db.read("select files") as conn:
            return [FileRow.from_mapping(r) for r in conn.execute(query).mappings()]

    def retransmit_deliveries(self, ids: Sequence[int], actor: str, reason: str) -> list[tuple[int, int]]:
        """Send each delivery ``ids`` names again: a new pending delivery, due now, to the same destination
        with the same document (or outbound interchange), a new idempotency key and ``parent_id`` to it.
        A dead letter sent again is discarded, its event naming the new delivery (it leaves the queue).
        Returns ``(parent, new)`` pairs. Refuses (nothing recorded) a pending one or a purged file's."""
        if not reason.strip():
            raise StoreValueError("a reason is required")
        now = self._now()
        done: list[tuple[int, int]] = []
        with self._db.write(f"retransmit {len(ids)} deliveries") as conn:
            rows = {
                int(r["id"]): r
                for r in conn.execute(select(deliveries).where(deliveries.c.id.in_(list(ids)))).mappings()
            }
            file_ids = sorted({int(r["file_id"]) for r in rows.values() if r["file_id"] is not None})
            # Shared locks on their files: a purge (which locks them for update) finishes first, or waits.
            conn.execute(
                select(files.c.id).where(files.c.id.in_(file_ids)).order_by(files.c.id).with_for_update(read=True)
            ).all()
            purged = set(conn.execute(select(purges.c.file_id).where(purges.c.file_id.in_(file_ids))).scalars())
            for i in ids:
                if i not in rows:
                    raise NotFoundError(f"no delivery {i}")
                row = rows[i]
                if row["status"] == DeliveryStatus.PENDING.value:
                    raise TransitionError(f"delivery {i} is pending: it is still on its way (see `gateway deliver`)")
                if row["file_id"] in purged:
                    raise TransitionError(f"delivery {i}: file {row['file_id']} was purged, nothing is left to send")
            events = []
            for i in ids:
                row = rows[i]
                values = {
                    name: row[name]
                    for name in ("file_id", "document_id", "outbound_id", "partner_id", "doc_type", "destination")
                } | {
                    "rule": "retransmit",
                    "idempotency_key": str(uuid.uuid4()),
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "parent_id": i,
                    "correlation_id": row["correlation_id"],
                    "created_at": now,
                    "updated_at": now,
                }
                new_id = int(conn.execute(deliveries.insert().returning(deliveries.c.id), values).scalar_one())
                done.append((i, new_id))
                events.append(
                    self.event_row(
                        kind=EntityKind.DELIVERY,
                        entity_id=new_id,
                        file_id=row["file_id"],
                        action=EventAction.RETRANSMIT,
                        from_status=None,
                        to_status=DeliveryStatus.PENDING.value,
                        at=now,
                        reason=reason,
                        details={"destination": row["destination"], "parent_id": i, "document_id": row["document_id"]},
                        correlation_id=row["correlation_id"],
                        actor=actor,
                    )
                )
            # A dead letter sent again is settled: it leaves the dead-letter queue, pointing at its successor.
            dead = [(i, n) for i, n in done if rows[i]["status"] == DeliveryStatus.DEAD_LETTER.value]
            for i, n in dead:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == i)
                    .values(status=DeliveryStatus.DISCARDED.value, updated_at=now, lease_owner=None)
                )
                events.append(
                    self.event_row(
                        kind=EntityKind.DELIVERY,
                        entity_id=i,
                        file_id=rows[i]["file_id"],
                        action=EventAction.DISCARD,
                        from_status=DeliveryStatus.DEAD_LETTER.value,
                        to_status=DeliveryStatus.DISCARDED.value,
                        at=now,
                        reason=f"retransmitted as delivery {n}: {reason}",
                        correlation_id=rows[i]["correlation_id"],
                        actor=actor,
                    )
                )
            if events:
                conn.execute(EVENT_INSERT, events)
        return done

    def reprocess_files(self, ids: Sequence[int], actor: str, reason: str) -> list[tuple[int, int]]:
        """For each file ``ids`` names, a new ``received`` file on the same archived bytes, ``parent_id`` to
        it (the runtime translates it again, its documents linked to the earlier ones), and a
        ``reprocess`` event on the earlier file naming who and why. Returns ``(parent, new)`` pairs.
        Refuses (nothing recorded) a file not processed yet, or one whose bytes were purged."""
        if not reason.strip():
            raise StoreValueError("a reason is required")
        now = self._now()
        done: list[tuple[int, int]] = []
        with self._db.write(f"reprocess {len(ids)} files") as conn:
            rows = {int(r["id"]): r for r in conn.execute(select(files).where(files.c.id.in_(list(ids)))).mappings()}
            for sha in sorted({r["sha256"] for r in rows.values()}):
                blob_lock(conn, sha)  # before reading the purges: a purge of these bytes finishes first
            purged = set(conn.execute(select(purges.c.file_id).where(purges.c.file_id.in_(list(rows)))).scalars())
            for i in ids:
                if i not in rows:
                    raise NotFoundError(f"no file {i}")
                if rows[i]["status"] in _UNPROCESSED:
                    raise TransitionError(f"file {i} is {rows[i]['status']}: it has not been processed yet")
                if i in purged:
                    raise TransitionError(f"file {i} was purged from the archive: its bytes are gone")
            events: list[dict[str, Any]] = []
            for i in ids:
                old = rows[i]
                item = Intake(
                    old["sha256"],
                    old["size"],
                    old["name"],
                    f"reprocess of file {i}",
                    old["partner_id"],
                    old["format"],
                    FileStatus.RECEIVED.value,
                    f"reprocess of file {i}: {reason}",
                )
                new = self._insert_file(conn, item, FileFormat(old["format"]), FileStatus.RECEIVED, None, i, events)
                done.append((i, int(new["id"])))
                events.append(
                    self.event_row(
                        kind=EntityKind.FILE,
                        entity_id=i,
                        file_id=i,
                        action=EventAction.REPROCESS,
                        from_status=old["status"],
                        to_status=old["status"],
                        at=now,
                        reason=reason,
                        details={"new_file_id": int(new["id"])},
                        correlation_id=old["correlation_id"],
                        actor=actor,
                    )
                )
            conn.execute(EVENT_INSERT, events)
        return done

    def file_purged(self, document_id: int) -> bool:
        """Whether the file of document ``document_id`` was purged (False when there is no such document)."""
        query = select(purges.c.id).join(documents, documents.c.file_id == purges.c.file_id)
        with self._db.read(f"is document {document_id} purged") as conn:
            return conn.execute(query.where(documents.c.id == document_id)).first() is not None
