"""The transactional outbox: deliveries owed to destinations, leased by workers, tried, recorded.

A delivery row is written in the transaction that records its document (or the acknowledgment or
850 we send), so nothing is recorded without being owed to its destinations, and nothing is owed
without being recorded (:meth:`DeliveryOps.deliveries_on`). Workers lease due rows
(:meth:`DeliveryOps.claim_deliveries`; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
workers share the queue), try them, and record what each try came to in one transaction per batch
(:meth:`DeliveryOps.record_attempts`): ``delivered``, ``pending`` again with its next time, or a
``dead_letter`` that keeps every attempt and the last response. Operators retry or discard dead
letters and retransmit documents (a new delivery, a new idempotency key, ``parent_id`` to the first);
each such action is an event naming who did it and why.

The idempotency key of a delivery is derived from what is delivered and where
(:func:`idempotency_key`), so a file redone after a crash owes the same keys again: a delivery
already attempted is kept, never a second one with another key.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.base import EVENT_INSERT, StoreBase, to_json
from gateway.store.errors import NotFoundError, StoreValueError, TransitionError
from gateway.store.schema import deliveries, delivery_attempts, documents, outbound
from gateway.store.statuses import DeliveryOutcome, DeliveryStatus, DocumentStatus, EntityKind, EventAction

__all__ = ["AttemptResult", "DeliveryOps", "DeliveryRow", "OwedDelivery", "idempotency_key"]

_NAMESPACE = uuid.UUID("6f1c2d3e-8a4b-5c6d-9e0f-a1b2c3d4e5f6")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def idempotency_key(subject: str, destination: str) -> str:
    """The key a receiver sees on every attempt of one delivery: stable for (what, where)."""
    # uuid.uuid5's own steps (SHA-1 of the namespace and the name, version 5, RFC 4122 variant), formatted
    # here: building the UUID object took most of its 5 µs, and the results transaction makes one per
    # delivery. tests/store/test_deliveries_key.py checks it against uuid.uuid5.
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{subject}\x1f{destination}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(slots=True)
class OwedDelivery:
    """A delivery to record with its document or outbound row (``document_id``/``outbound_id`` filled in
    once those are inserted). ``id`` is set once recorded; ``mine``: leased to the recording worker."""

    destination: str
    doc_type: str
    partner_id: str | None
    correlation_id: str
    subject: str  # what is delivered, for the idempotency key: the document's correlation id, or outbound:<id>
    file_id: int | None = None
    document_id: int | None = None
    outbound_id: int | None = None
    rule: str | None = None
    id: int | None = None
    mine: bool = False
    source: dict[str, Any] | None = None  # what it carries, as delivery_sources gives it (kept in memory)
    created_at: datetime | None = None

    def row(self, worker: str) -> DeliveryRow:
        """The row as recorded (a delivery just recorded by ``worker``, never tried)."""
        assert self.id is not None and self.created_at is not None
        at = self.created_at
        return DeliveryRow(
            self.id, self.file_id, self.document_id, self.outbound_id, self.partner_id, self.doc_type,
            self.destination, self.rule, idempotency_key(self.subject, self.destination), "pending", 0, at,
            worker, None, None, None, None, None, None, self.correlation_id, at, at,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as the ledger holds it."""

    id: int
    file_id: int | None
    document_id: int | None
    outbound_id: int | None
    partner_id: str | None
    doc_type: str
    destination: str
    rule: str | None
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    first_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    last_response: dict[str, Any] | None
    payload_sha256: str | None
    parent_id: int | None
    correlation_id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> DeliveryRow:
        values = {name: row[name] for name in cls.__slots__}
        raw = values["last_response"]
        values["last_response"] = json.loads(raw) if raw else None
        return cls(**values)


@dataclass(slots=True)
class AttemptResult:
    """What one try of a leased delivery came to. ``retry_at`` None with a failed outcome: a dead letter."""

    delivery_id: int
    outcome: DeliveryOutcome
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    retry_at: datetime | None = None
    payload_sha256: str | None = None


_FINAL = (DeliveryStatus.DELIVERED.value, DeliveryStatus.DISCARDED.value)

_ATTEMPTED = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_attempt_at"),
        first_attempt_at=bindparam("first_attempt_at"),
        delivered_at=bindparam("delivered_at"),
        last_error=bindparam("last_error"),
        last_response=bindparam("last_response"),
        payload_sha256=bindparam("payload_sha256"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("now"),
    )
)
"""A tried delivery's new state (the values come with each execution: one statement, compiled once)."""


class DeliveryOps(StoreBase):
    """Deliveries: recorded with their documents, leased, tried, acted on by operators."""

    # --- recording (inside the results transaction) ----------------------------------------------

    def deliveries_on(self, conn: Connection, owed: Sequence[OwedDelivery], worker: str, lease_seconds: float) -> None:
        """Insert ``owed`` in the caller's transaction, leased to ``worker`` (it tries them right after the
        commit; if it dies, the lease expires and any worker does). A delivery whose key is already there
        (a file redone after a crash) is kept as it is, pointed at the new document row."""
        if not owed:
            return
        now = self._now()
        rows = [
            {
                "file_id": o.file_id,
                "document_id": o.document_id,
                "outbound_id": o.outbound_id,
                "partner_id": o.partner_id,
                "doc_type": o.doc_type,
                "destination": o.destination,
                "rule": o.rule,
                "idempotency_key": idempotency_key(o.subject, o.destination),
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "lease_owner": worker,
                "lease_expires_at": now + timedelta(seconds=lease_seconds),
                "correlation_id": o.correlation_id,
                "created_at": now,
                "updated_at": now,
            }
            for o in owed
        ]
        stmt = self._statements.get("owed_upsert")
        if stmt is None:  # built once: building it and its cache key took a quarter of this call
            stmt = self._statements["owed_upsert"] = self._owed_upsert()
        # All rows in one executemany (SQLAlchemy batches them into multi-row INSERTs): the rows come back
        # matched by their unique key, not by position. A key twice in one call cannot be upserted twice in
        # one statement (PostgreSQL refuses it): then row by row, as the second is an update of the first.
        keys = [values["idempotency_key"] for values in rows]
        if len(set(keys)) == len(keys):
            answers = {r.idempotency_key: r for r in conn.execute(stmt, rows)}
        else:
            answers = {}
            for values in rows:
                r = conn.execute(stmt, values).one()
                answers[r.idempotency_key] = r
        events = []
        for o, values in zip(owed, rows, strict=True):
            r = answers[values["idempotency_key"]]
            o.id = int(r.id)
            o.created_at = now
            o.mine = r.status == DeliveryStatus.PENDING.value and r.lease_owner == worker and r.attempts == 0
            if o.mine:
                events.append(
                    self.event_row(
                        kind=EntityKind.DELIVERY,
                        entity_id=o.id,
                        file_id=o.file_id,
                        action=EventAction.CREATE,
                        from_status=None,
                        to_status=DeliveryStatus.PENDING.value,
                        at=now,
                        reason=f"to {o.destination}" + (f" (rule {o.rule})" if o.rule else ""),
                        correlation_id=o.correlation_id,
                        actor=worker,
                    )
                )
        if events:
            conn.execute(EVENT_INSERT, events)

    def _owed_upsert(self) -> Any:
        """The insert of owed deliveries: a key already there (a file redone) keeps its row, pointed at the
        new document, and is taken over only if never tried."""
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        stmt = dialect.insert(deliveries)
        untried = and_(deliveries.c.status == DeliveryStatus.PENDING.value, deliveries.c.attempts == 0)
        return stmt.on_conflict_do_update(
            index_elements=[deliveries.c.idempotency_key],
            set_={
                "document_id": stmt.excluded.document_id,
                "updated_at": stmt.excluded.updated_at,
                # Never tried (its earlier worker died first): the worker redoing the file takes it over.
                "lease_owner": case((untried, stmt.excluded.lease_owner), else_=deliveries.c.lease_owner),
                "lease_expires_at": case(
                    (untried, stmt.excluded.lease_expires_at), else_=deliveries.c.lease_expires_at
                ),
            },
        ).returning(
            deliveries.c.id,
            deliveries.c.status,
            deliveries.c.lease_owner,
            deliveries.c.attempts,
            deliveries.c.idempotency_key,
        )

    # --- the workers' side -----------------------------------------------------------------------

    def claim_deliveries(
        self,
        worker: str,
        limit: int,
        lease_seconds: float,
        *,
        ids: Sequence[int] | None = None,
        skip_destinations: Iterable[str] = (),
    ) -> list[DeliveryRow]:
        """Lease up to ``limit`` due deliveries (pending, due, no live lease), oldest due first.

        ``ids``: only those (the deliveries a worker just recorded and already holds are re-leased to it).
        ``skip_destinations``: paused ones (their circuit breaker is open) are left for later.
        """
        if limit < 1:
            return []
        now = self._now()
        free = or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now)
        if ids is not None:
            free = or_(free, deliveries.c.lease_owner == worker)
        where = [deliveries.c.status == DeliveryStatus.PENDING.value, deliveries.c.next_attempt_at <= now, free]
        if ids is not None:
            where.append(deliveries.c.id.in_(list(ids)))
        skipped = list(skip_destinations)
        if skipped:
            where.append(deliveries.c.destination.not_in(skipped))
        query = (
            select(deliveries.c.id)
            .where(and_(*where))
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._db.write("claim deliveries") as conn:
            chosen = [int(r[0]) for r in conn.execute(query)]
            if not chosen:
                return []
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(chosen))
                .values(lease_owner=worker, lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            )
        # Read after the commit, outside the write lock (SQLite's is the processing's too): leased to
        # ``worker`` now, the rows change only if the lease runs out first.
        with self._db.read(f"read {len(chosen)} claimed deliveries") as conn:
            rows = conn.execute(select(deliveries).where(deliveries.c.id.in_(chosen))).mappings()
            return sorted((DeliveryRow.of(r) for r in rows), key=lambda d: (d.next_attempt_at, d.id))

    def delivery_sources(self, rows: Sequence[DeliveryRow]) -> dict[int, dict[str, Any]]:
        """What each delivery carries: for a document its canonical JSON, type, business key, position;
        for an outbound interchange its archived bytes' sha256 and control number. Keyed by delivery id."""
        doc_ids = {r.document_id for r in rows if r.document_id is not None}
        out_ids = {r.outbound_id for r in rows if r.outbound_id is not None}
        found: dict[int, dict[str, Any]] = {}
        with self._db.read(f"read what {len(rows)} deliveries carry") as conn:
            docs = {}
            if doc_ids:
                query = select(
                    documents.c.id,
                    documents.c.canonical,
                    documents.c.business_key,
                    documents.c.position,
                    documents.c.status,
                ).where(documents.c.id.in_(doc_ids))
                docs = {int(r.id): r._mapping for r in conn.execute(query)}
            outs = {}
            if out_ids:
                query = select(outbound.c.id, outbound.c.sha256, outbound.c.control_number).where(
                    outbound.c.id.in_(out_ids)
                )
                outs = {int(r.id): r._mapping for r in conn.execute(query)}
        for r in rows:
            if r.document_id is not None and r.document_id in docs:
                found[r.id] = {"kind": "document", **docs[r.document_id]}
            elif r.outbound_id is not None and r.outbound_id in outs:
                found[r.id] = {"kind": "outbound", **outs[r.outbound_id]}
        return found

    def record_attempts(
        self, worker: str, results: Sequence[AttemptResult], claimed: Mapping[int, DeliveryRow]
    ) -> list[int]:
        """Record tries of deliveries leased to ``worker``, in one transaction; returns the ids whose lease
        was lost meanwhile (their result is not recorded: the new holder tries them again, same key).

        ``claimed``: each delivery's row as ``worker`` leased it. The rows to write are made from it before
        the transaction (which on SQLite holds the ledger's one write lock, shared with the processing):
        inside, only which leases still hold is read, as ``(owner, status, attempts)`` unchanged."""
        if not results:
            return []
        now = self._now()
        prepared = [self._attempt_rows(worker, res, claimed[res.delivery_id], now) for res in results]
        ids = [r.delivery_id for r in results]
        held = and_(
            deliveries.c.id.in_(ids),
            deliveries.c.lease_owner == worker,
            deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        # FOR UPDATE: on PostgreSQL the rows stay as read until the commit (another worker's claim skips
        # them, SKIP LOCKED), since the update below matches on id alone. (SQLite: one writer at a time.)
        query = select(deliveries.c.id, deliveries.c.attempts).where(held).with_for_update()
        with self._db.write(f"record {len(results)} delivery attempt(s)") as conn:
            current = {int(i): int(n) for i, n in conn.execute(query)}
            lost = [i for i in ids if current.get(i) != claimed[i].attempts]
            kept = [rows for res, rows in zip(results, prepared, strict=True) if res.delivery_id not in lost]
            if kept:
                conn.execute(delivery_attempts.insert(), [attempt for attempt, _, _ in kept])
                conn.execute(_ATTEMPTED, [change for _, change, _ in kept])
            events = [event for _, _, event in kept if event is not None]
            if events:
                conn.execute(EVENT_INSERT, events)
        return lost

    def _attempt_rows(
        self, worker: str, res: AttemptResult, row: DeliveryRow, now: datetime
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        """One try's attempt row, the change to its delivery and the status event (None while it stays
        pending), from the delivery as it was leased."""
        number = row.attempts + 1
        response = to_json(res.response, "delivery response") if res.response else None
        attempt = {
            "delivery_id": res.delivery_id,
            "number": number,
            "worker": worker,
            "started_at": res.started_at,
            "finished_at": res.finished_at,
            "outcome": DeliveryOutcome(res.outcome).value,
            "error": res.error,
            "response": response,
        }
        if res.outcome == DeliveryOutcome.DELIVERED:
            status, when = DeliveryStatus.DELIVERED.value, row.next_attempt_at
        elif res.retry_at is not None:
            status, when = DeliveryStatus.PENDING.value, res.retry_at
        else:
            status, when = DeliveryStatus.DEAD_LETTER.value, row.next_attempt_at
        change = {
            "b_id": res.delivery_id,
            "status": status,
            "attempts": number,
            "next_attempt_at": when,
            "first_attempt_at": row.first_attempt_at or res.started_at,
            "delivered_at": res.finished_at if status == DeliveryStatus.DELIVERED.value else None,
            "last_error": res.error,
            "last_response": response,
            "payload_sha256": res.payload_sha256 or row.payload_sha256,
            "now": now,
        }
        if status == DeliveryStatus.PENDING.value:
            return attempt, change, None
        event = self.event_row(
            kind=EntityKind.DELIVERY,
            entity_id=res.delivery_id,
            file_id=row.file_id,
            action=EventAction.STATUS,
            from_status=DeliveryStatus.PENDING.value,
            to_status=status,
            at=now,
            reason=None if status == DeliveryStatus.DELIVERED.value else (res.error or "")[:1000],
            details={"destination": row.destination, "attempt": number},
            correlation_id=row.correlation_id,
            actor=worker,
        )
        return attempt, change, event

    def adopt_deliveries(
        self, file_id: int, worker: str, lease_seconds: float, previous_owner: str | None = None
    ) -> list[int]:
        """Take over a file's pending deliveries (its earlier worker, ``previous_owner``, died after
        recording them, and ``worker`` now holds the file): leased to ``worker``, due now; returns their
        ids. A delivery another live worker holds (its lease not expired, not the dead owner's) is left
        to it: taking it would send the payload twice at once."""
        now = self._now()
        free = [
            deliveries.c.lease_owner.is_(None),
            deliveries.c.lease_expires_at.is_(None),
            deliveries.c.lease_expires_at <= now,
            deliveries.c.lease_owner == worker,
        ]
        if previous_owner is not None:
            free.append(deliveries.c.lease_owner == previous_owner)
        with self._db.write(f"adopt the deliveries of file {file_id}") as conn:
            rows = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.file_id == file_id,
                    deliveries.c.status == DeliveryStatus.PENDING.value,
                    or_(*free),
                )
                .values(lease_owner=worker, lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
                .returning(deliveries.c.id, deliveries.c.next_attempt_at)
            )
            # Those waiting for a retry keep their time: only the ones never tried are due now.
            return sorted(int(r.id) for r in rows if r.next_attempt_at <= now)

    @staticmethod
    def forget_untried_deliveries(conn: Connection, file_id: int) -> int:
        """A file redone from scratch: its documents' deliveries never tried are deleted (the rerun owes
        them again, with the same keys); those tried are kept, so a key is never sent under another row."""
        result = conn.execute(
            deliveries.delete().where(
                deliveries.c.file_id == file_id,
                deliveries.c.document_id.is_not(None),
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.attempts == 0,
            )
        )
        return int(result.rowcount)

    def make_due(self, actor: str, destination: str | None = None) -> int:
        """Every pending delivery (of ``destination``) due now, its waiting for a retry cut short (an
        operator fixed the cause); returns how many."""
        now = self._now()
        where = [deliveries.c.status == DeliveryStatus.PENDING.value, deliveries.c.next_attempt_at > now]
        if destination is not None:
            where.append(deliveries.c.destination == destination)
        with self._db.write("make pending deliveries due") as conn:
            rows = conn.execute(
                update(deliveries)
                .where(*where)
                .values(next_attempt_at=now, updated_at=now)
                .returning(deliveries.c.id, deliveries.c.file_id, deliveries.c.correlation_id)
            ).all()
            if rows:  # who cut the waits short, and when: an event per delivery
                conn.execute(
                    EVENT_INSERT,
                    [
                        self.event_row(
                            kind=EntityKind.DELIVERY,
                            entity_id=r.id,
                            file_id=r.file_id,
                            action=EventAction.RETRY,
                            from_status=DeliveryStatus.PENDING.value,
                            to_status=DeliveryStatus.PENDING.value,
                            at=now,
                            reason="made due now by an operator (gateway deliver --now)",
                            correlation_id=r.correlation_id,
                            actor=actor,
                        )
                        for r in rows
                    ],
                )
            return len(rows)

    def renew_deliveries(self, worker: str, ids: Sequence[int], lease_seconds: float) -> list[int]:
        """Extend ``worker``'s leases on pending deliveries ``ids`` in one transaction; returns the ids it
        still holds (one whose lease ran out and another worker took is not among them: not to be sent)."""
        if not ids:
            return []
        now = self._now()
        mine = and_(
            deliveries.c.id.in_(list(ids)),
            deliveries.c.lease_owner == worker,
            deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        with self._db.write(f"renew {len(ids)} delivery lease(s)") as conn:
            renewed = conn.execute(
                update(deliveries)
                .where(mine)
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
                .returning(deliveries.c.id)
            )
            return sorted(int(r[0]) for r in renewed)

    def release_deliveries(self, worker: str, ids: Sequence[int]) -> None:
        """Give back leased deliveries not tried (a worker stopping, a paused destination)."""
        if not ids:
            return
        with self._db.write(f"release {len(ids)} deliveries") as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(list(ids)), deliveries.c.lease_owner == worker)
                .values(lease_owner=None, lease_expires_at=None)
            )

    # --- reading ---------------------------------------------------------------------------------

    def get_delivery(self, delivery_id: int) -> DeliveryRow:
        """One delivery (NotFoundError when there is none)."""
        with self._db.read(f"read delivery {delivery_id}") as conn:
            return DeliveryRow.of(self._get(conn, deliveries, delivery_id))

    def delivery_attempts(self, delivery_id: int) -> list[dict[str, Any]]:
        """Every try of a delivery, oldest first (response decoded)."""
        query = (
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            .order_by(delivery_attempts.c.id)
        )
        with self._db.read(f"read the attempts of delivery {delivery_id}") as conn:
            out = []
            for r in conn.execute(query).mappings():
                item = dict(r)
                item["response"] = json.loads(r["response"]) if r["response"] else None
                out.append(item)
            return out

    def list_deliveries(
        self,
        *,
        status: str | None = None,
        destination: str | None = None,
        partner_id: str | None = None,
        document_id: int | None = None,
        file_id: int | None = None,
        outbound_id: int | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        """Deliveries, newest first, filtered."""
        query = select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(deliveries.c.status == DeliveryStatus(status).value)
        if destination is not None:
            query = query.where(deliveries.c.destination == destination)
        if partner_id is not None:
            query = query.where(deliveries.c.partner_id == partner_id)
        if document_id is not None:
            query = query.where(deliveries.c.document_id == document_id)
        if file_id is not None:
            query = query.where(deliveries.c.file_id == file_id)
        if outbound_id is not None:
            query = query.where(deliveries.c.outbound_id == outbound_id)
        with self._db.read("list deliveries") as conn:
            return [DeliveryRow.of(r) for r in conn.execute(query).mappings()]

    def delivery_statuses(self, ids: Sequence[int]) -> dict[int, str]:
        """The status of each delivery in ``ids``."""
        out: dict[int, str] = {}
        with self._db.read(f"read {len(ids)} delivery statuses") as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                query = select(deliveries.c.id, deliveries.c.status).where(deliveries.c.id.in_(chunk))
                out.update({int(i): str(st) for i, st in conn.execute(query)})
        return out

    def delivered_by_destination(self, ids: Sequence[int]) -> dict[str, int]:
        """How many of the deliveries ``ids`` are delivered, per destination."""
        out: dict[str, int] = {}
        with self._db.read(f"count {len(ids)} deliveries by destination") as conn:
            for start in range(0, len(ids), 500):
                query = (
                    select(deliveries.c.destination, func.count())
                    .where(deliveries.c.id.in_(list(ids[start : start + 500])), deliveries.c.status == "delivered")
                    .group_by(deliveries.c.destination)
                )
                for destination, n in conn.execute(query):
                    out[str(destination)] = out.get(str(destination), 0) + int(n)
        return out

    def delivered_by(self, workers: Sequence[str], since: datetime) -> dict[str, int]:
        """Per destination, how many deliveries ``workers`` (a service and its delivery processes, by name)
        delivered from ``since`` on (their delivering attempt's worker; ``delivered_at`` is indexed)."""
        mine = delivery_attempts.c.worker.in_(list(workers))
        query = (
            select(deliveries.c.destination, func.count(func.distinct(deliveries.c.id)))
            .join(delivery_attempts, delivery_attempts.c.delivery_id == deliveries.c.id)
            .where(
                deliveries.c.delivered_at >= since,
                deliveries.c.status == DeliveryStatus.DELIVERED.value,
                delivery_attempts.c.outcome == DeliveryOutcome.DELIVERED.value,
                mine,
            )
            .group_by(deliveries.c.destination)
        )
        with self._db.read(f"count what {', '.join(workers)} delivered") as conn:
            return {str(destination): int(n) for destination, n in conn.execute(query)}

    def delivery_backlog(self) -> dict[str, dict[str, int]]:
        """Per destination, how many deliveries are in each status."""
        query = select(deliveries.c.destination, deliveries.c.status, func.count()).group_by(
            deliveries.c.destination, deliveries.c.status
        )
        out: dict[str, dict[str, int]] = {}
        with self._db.read("count deliveries") as conn:
            for dest, status, count in conn.execute(query):
                out.setdefault(str(dest), {})[str(status)] = int(count)
        return out

    # --- operators -------------------------------------------------------------------------------

    def retry_deliveries(self, ids: Sequence[int], actor: str, reason: str) -> list[int]:
        """Put dead letters back in the queue, due now, with their attempts counted afresh."""
        return self._operator(
            ids, actor, reason, EventAction.RETRY, DeliveryStatus.PENDING, (DeliveryStatus.DEAD_LETTER,)
        )

    def discard_deliveries(self, ids: Sequence[int], actor: str, reason: str) -> list[int]:
        """Give up dead letters (or pending deliveries) for good, with a reason."""
        allowed = (DeliveryStatus.DEAD_LETTER, DeliveryStatus.PENDING)
        return self._operator(ids, actor, reason, EventAction.DISCARD, DeliveryStatus.DISCARDED, allowed)

    def _operator(
        self,
        ids: Sequence[int],
        actor: str,
        reason: str,
        action: EventAction,
        target: DeliveryStatus,
        allowed: tuple[DeliveryStatus, ...],
    ) -> list[int]:
        if not reason.strip():
            raise StoreValueError("a reason is required")
        now = self._now()
        with self._db.write(f"{action.value} {len(ids)} deliveries") as conn:
            rows = {
                int(r["id"]): r
                for r in conn.execute(
                    select(deliveries).where(deliveries.c.id.in_(list(ids))).with_for_update()
                ).mappings()
            }
            for i in ids:
                if i not in rows:
                    raise NotFoundError(f"no delivery {i}")
                if DeliveryStatus(rows[i]["status"]) not in allowed:
                    raise TransitionError(
                        f"delivery {i} is {rows[i]['status']}: {action.value} takes "
                        + " or ".join(s.value for s in allowed)
                    )
            values: dict[str, Any] = {"status": target.value, "updated_at": now, "lease_owner": None}
            if target is DeliveryStatus.PENDING:
                values |= {"attempts": 0, "next_attempt_at": now, "lease_expires_at": None}
            conn.execute(update(deliveries).where(deliveries.c.id.in_(list(ids))).values(**values))
            conn.execute(
                EVENT_INSERT,
                [
                    self.event_row(
                        kind=EntityKind.DELIVERY,
                        entity_id=i,
                        file_id=rows[i]["file_id"],
                        action=action,
                        from_status=rows[i]["status"],
                        to_status=target.value,
                        at=now,
                        reason=reason,
                        correlation_id=rows[i]["correlation_id"],
                        actor=actor,
                    )
                    for i in ids
                ],
            )
        return list(ids)

    def retransmit(
        self, document_id: int, actor: str, reason: str, destinations: Sequence[str] | None = None
    ) -> list[int]:
        """Deliver a document (or an outbound interchange's document row) again: one new delivery per
        destination it was delivered to (or ``destinations``), each with a new idempotency key and
        ``parent_id`` to the latest earlier one. Returns the new delivery ids."""
        if not reason.strip():
            raise StoreValueError("a reason is required")
        now = self._now()
        with self._db.write(f"retransmit document {document_id}") as conn:
            doc = self._get(conn, documents, document_id)
            earlier = (
                conn.execute(
                    select(deliveries).where(deliveries.c.document_id == document_id).order_by(deliveries.c.id)
                )
                .mappings()
                .all()
            )
            latest: dict[str, Any] = {}
            for r in earlier:
                latest[r["destination"]] = r
            targets = list(destinations) if destinations else list(latest)
            if not targets:
                raise TransitionError(
                    f"document {document_id} was never routed anywhere: name a destination (--destination)"
                )
            new_ids = []
            for dest in targets:
                parent = latest.get(dest)
                values = {
                    "file_id": doc["file_id"],
                    "document_id": document_id,
                    "outbound_id": None,
                    "partner_id": doc["partner_id"],
                    "doc_type": doc["doc_type"],
                    "destination": dest,
                    "rule": "retransmit",
                    "idempotency_key": str(uuid.uuid4()),
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "parent_id": None if parent is None else parent["id"],
                    "correlation_id": doc["correlation_id"],
                    "created_at": now,
                    "updated_at": now,
                }
                new_id = int(conn.execute(deliveries.insert().returning(deliveries.c.id), values).scalar_one())
                new_ids.append(new_id)
                self._event(
                    conn,
                    kind=EntityKind.DELIVERY,
                    entity_id=new_id,
                    file_id=doc["file_id"],
                    action=EventAction.RETRANSMIT,
                    from_status=None,
                    to_status=DeliveryStatus.PENDING.value,
                    at=now,
                    reason=reason,
                    details={"destination": dest, "parent_id": values["parent_id"], "document_id": document_id},
                    correlation_id=doc["correlation_id"],
                    actor=actor,
                )
            if doc["status"] == DocumentStatus.UNROUTED:  # an operator routed it by hand: no longer an exception
                self._route_by_hand(conn, doc, targets, actor, reason, now)
        return new_ids

    def _route_by_hand(
        self, conn: Connection, doc: Any, targets: list[str], actor: str, reason: str, now: datetime
    ) -> None:
        conn.execute(
            update(documents)
            .where(documents.c.id == doc["id"])
            .values(
                status=DocumentStatus.ROUTED.value, reason=f"routed by hand to {', '.join(targets)}", updated_at=now
            )
        )
        self._event(
            conn,
            kind=EntityKind.DOCUMENT,
            entity_id=doc["id"],
            file_id=doc["file_id"],
            action=EventAction.STATUS,
            from_status=DocumentStatus.UNROUTED.value,
            to_status=DocumentStatus.ROUTED.value,
            at=now,
            reason=reason,
            details={"destinations": targets},
            correlation_id=doc["correlation_id"],
            actor=actor,
        )
