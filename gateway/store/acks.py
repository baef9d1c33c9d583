"""Tracking the acknowledgments we are owed: which sets we sent wait for a 997/999, until when, and
what the partner answered (``ack_expectations``); which inbound acknowledgments were matched
(``ack_receipts``).

Every status change appends an event on the outbound interchange it concerns (entity ``outbound``),
and every inbound acknowledgment's outcome one on its document (entity ``document``), in the same
transaction. Matching an acknowledgment reads the sets it may answer and records what it came to in
one transaction, the candidate rows locked (``FOR UPDATE`` on PostgreSQL; SQLite writers are serial):
two workers reading two copies of one 997 at once cannot both apply it. A receipt row per
acknowledgment document (unique) makes the matching survive restarts and never run twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.engine import Connection

from gateway.store.base import EVENT_INSERT
from gateway.store.keys import KeyOps
from gateway.store.rows import OutboundRow
from gateway.store.schema import ack_expectations, ack_receipts, deliveries, documents, files, outbound
from gateway.store.statuses import EntityKind, EventAction, ExpectedAck, OwedAckStatus
from gateway.x12.ack.match import Owed, Reconciliation
from gateway.x12.ack.sent import SentSet

__all__ = ["ACK_DOC_TYPE", "AckOps", "AckToMatch"]

ACK_DOC_TYPE = "acknowledgment"
"""The document type the runtime keeps inbound 997/999/TA1 under (:data:`gateway.planning.ACKNOWLEDGMENT`)."""

E = ack_expectations


class AckToMatch:
    """An inbound acknowledgment document not matched yet."""

    __slots__ = ("correlation_id", "data", "document_id", "file_id", "partner_id", "received_at")

    def __init__(self, row: Any) -> None:
        self.document_id = int(row["id"])
        self.file_id = row["file_id"]
        self.partner_id: str | None = row["partner_id"]
        self.data: dict[str, Any] = json.loads(row["canonical"])
        self.received_at: datetime = row["received_at"]
        self.correlation_id: str = row["correlation_id"]


def _owed(r: Any) -> Owed:
    return Owed(
        int(r["id"]),
        int(r["outbound_id"]),
        r["interchange_control"],
        r["functional_id"],
        r["group_control"],
        r["set_id"],
        r["set_control"],
        r["status"],
        r["due_at"],
        r["ta1_code"],
    )


class AckOps(KeyOps):
    """The ledger side of acknowledgment tracking (see the module docstring)."""

    # --- what we sent -------------------------------------------------------------------------

    def outbound_to_track(self, limit: int = 200) -> list[OutboundRow]:
        """Outbound interchanges recorded as expecting an acknowledgment (``expected_ack`` pending) whose
        sets are not tracked yet, oldest first."""
        tracked = exists().where(E.c.outbound_id == outbound.c.id)
        query = (
            select(outbound)
            .where(outbound.c.expected_ack == ExpectedAck.PENDING.value, ~tracked)
            .order_by(outbound.c.id)
            .limit(limit)
        )
        with self._db.read("find outbound interchanges to track") as conn:
            return [OutboundRow.from_mapping(r) for r in conn.execute(query).mappings()]

    def track_sets(
        self,
        row: OutboundRow,
        sets: Sequence[tuple[SentSet, int]],
        *,
        resent_from: int | None = None,
        reason: str | None = None,
    ) -> int:
        """Track ``sets`` of the outbound interchange ``row``, each with its deadline in seconds; none:
        nothing of it expects an answer (``expected_ack`` is cleared, with ``reason``). Idempotent (a set
        already tracked is left as it is). Returns the sets newly tracked."""
        return self.track_many([(row, sets, reason)], resent_from=resent_from)

    def track_many(
        self,
        items: Sequence[tuple[OutboundRow, Sequence[tuple[SentSet, int]], str | None]],
        *,
        resent_from: int | None = None,
    ) -> int:
        """:meth:`track_sets` for several interchanges ``(row, sets, reason)``, in one transaction."""
        now = self._now()
        with self._db.write(f"track acknowledgments owed for {len(items)} outbound interchange(s)") as conn:
            return sum(self._track_on(conn, row, sets, reason, resent_from, now) for row, sets, reason in items)

    def _track_on(
        self,
        conn: Connection,
        row: OutboundRow,
        sets: Sequence[tuple[SentSet, int]],
        reason: str | None,
        resent_from: int | None,
        now: datetime,
    ) -> int:
        if not sets:
            conn.execute(update(outbound).where(outbound.c.id == row.id).values(expected_ack=None, updated_at=now))
            self._owed_event(conn, row.id, row.correlation_id, now, "none", reason or "no set expects an answer")
            return 0
        values = [
            {
                "outbound_id": row.id,
                "partner_id": row.partner_id,
                "interchange_control": s.interchange,
                "functional_id": s.functional_id,
                "group_control": s.group_control,
                "version": s.version,
                "set_id": s.set_id,
                "set_control": s.set_control,
                "status": OwedAckStatus.WAITING.value,
                "deadline_seconds": int(seconds),
                "late": False,
                "resent_from": resent_from,
                "created_at": now,
                "updated_at": now,
            }
            for s, seconds in sets
        ]
        stmt = self._insert()(E).on_conflict_do_nothing(
            index_elements=[E.c.outbound_id, E.c.group_control, E.c.set_control]
        )
        added = len(conn.execute(stmt.returning(E.c.id), values).all())
        if added:
            names = ", ".join(f"{s.set_id} {s.group_control}/{s.set_control}" for s, _ in sets[:20])
            details = {"sets": len(sets), "resent_from": resent_from}
            self._owed_event(
                conn,
                row.id,
                row.correlation_id,
                now,
                OwedAckStatus.WAITING.value,
                reason or f"waiting for the acknowledgment of {names}",
                details,
            )
        return added

    def start_ack_clocks(self, limit: int = 500) -> int:
        """Start the deadline of tracked sets whose clock has not started: from the first delivery of their
        interchange, or from when it was recorded when nothing delivers it. Returns the sets started."""
        # Only sets still waiting need a clock (one answered before its delivery is final has its answer),
        # and only those whose interchange was delivered, or is owed to no destination, can start one.
        owed = exists().where(deliveries.c.outbound_id == E.c.outbound_id)
        delivered = exists().where(deliveries.c.outbound_id == E.c.outbound_id, deliveries.c.delivered_at.is_not(None))
        ready = (E.c.status == OwedAckStatus.WAITING.value, E.c.due_at.is_(None), or_(~owed, delivered))
        with self._db.read("find acknowledgment deadlines to start") as conn:
            if conn.execute(select(E.c.id).where(*ready).limit(1)).first() is None:
                return 0  # the usual case: a read, no write lock
        started = 0
        while True:
            with self._db.write("start acknowledgment deadlines") as conn:
                pending = (
                    conn.execute(
                        select(E.c.outbound_id, E.c.deadline_seconds, outbound.c.created_at)
                        .join(outbound, outbound.c.id == E.c.outbound_id)
                        .where(*ready)
                        .distinct()
                        .limit(limit)
                    )
                    .mappings()
                    .all()
                )
                started += self._start_clocks(conn, pending)
            if len(pending) < limit:
                return started

    def _start_clocks(self, conn: Connection, pending: Sequence[Any]) -> int:
        if not pending:
            return 0
        now = self._now()
        ids = sorted({int(r["outbound_id"]) for r in pending})
        first_delivered = dict(
            conn.execute(
                select(deliveries.c.outbound_id, func.min(deliveries.c.delivered_at))
                .where(deliveries.c.outbound_id.in_(ids))
                .group_by(deliveries.c.outbound_id)
            ).all()
        )
        started = 0
        for r in pending:
            # Delivered: from its first delivery; owed nowhere: from when it was recorded.
            start = self._aware(first_delivered.get(r["outbound_id"]) or r["created_at"])
            due = start + timedelta(seconds=int(r["deadline_seconds"]))
            result = conn.execute(
                update(E)
                .where(
                    E.c.outbound_id == r["outbound_id"],
                    E.c.deadline_seconds == r["deadline_seconds"],
                    E.c.due_at.is_(None),
                )
                .values(tracked_from=start, due_at=due, updated_at=now)
            )
            started += int(result.rowcount or 0)
            earlier = conn.execute(select(outbound.c.ack_due_at).where(outbound.c.id == r["outbound_id"])).scalar()
            if earlier is None or self._aware(earlier) > due:
                conn.execute(
                    update(outbound).where(outbound.c.id == r["outbound_id"]).values(ack_due_at=due, updated_at=now)
                )
        return started

    @staticmethod
    def _aware(value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    # --- what partners answered ---------------------------------------------------------------

    def acks_to_match(self, *, after: int = 0, limit: int = 200) -> list[AckToMatch]:
        """Inbound acknowledgment documents (id above ``after``) not matched yet, oldest first."""
        seen = exists().where(ack_receipts.c.document_id == documents.c.id)
        query = (
            select(
                documents.c.id,
                documents.c.file_id,
                documents.c.partner_id,
                documents.c.canonical,
                documents.c.correlation_id,
                files.c.received_at,
            )
            .join(files, files.c.id == documents.c.file_id)
            .where(documents.c.doc_type == ACK_DOC_TYPE, documents.c.id > after, ~seen)
            .order_by(documents.c.id)
            .limit(limit)
        )
        with self._db.read("find acknowledgments to match") as conn:
            return [AckToMatch(r) for r in conn.execute(query).mappings()]

    def match_floor(self, older_than: timedelta = timedelta(days=1)) -> int:
        """A document id below which every acknowledgment is matched already: the newest one matched
        longer than ``older_than`` ago (its elders committed long before). Keeps the periodic check cheap."""
        cutoff = self._now() - older_than
        with self._db.read("find the acknowledgment floor") as conn:
            value = conn.execute(
                select(func.max(ack_receipts.c.document_id)).where(ack_receipts.c.created_at < cutoff)
            ).scalar()
        return int(value or 0)

    def match_ack(self, ack: AckToMatch, decide: Callable[[list[Owed]], Reconciliation]) -> Reconciliation | None:
        """Match ``ack`` in one transaction: the sets it may answer are read (locked), ``decide`` (pure)
        says what it means for them, and the outcome is recorded: set statuses, a receipt, events.
        Returns None when another worker matched it first."""
        return self.match_acks([(ack, decide)])[0]

    def match_acks(
        self, items: Sequence[tuple[AckToMatch, Callable[[list[Owed]], Reconciliation]]]
    ) -> list[Reconciliation | None]:
        """:meth:`match_ack` for several acknowledgments, one after the other in one transaction."""
        now = self._now()
        with self._db.write(f"match {len(items)} acknowledgment(s)") as conn:
            return [self._match_on(conn, ack, decide, now) for ack, decide in items]

    def _match_on(
        self, conn: Connection, ack: AckToMatch, decide: Callable[[list[Owed]], Reconciliation], now: datetime
    ) -> Reconciliation | None:
        data = ack.data
        kind = "TA1" if data.get("kind") == "TA1" else str(data.get("kind", ""))
        claimed = conn.execute(
            self._insert()(ack_receipts)
            .values(
                document_id=ack.document_id,
                file_id=ack.file_id,
                partner_id=ack.partner_id,
                kind=kind[:8],
                control_number=str(data.get("control_number" if kind == "TA1" else "group_control", ""))[:32],
                outcome="unmatched",
                received_at=ack.received_at,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=[ack_receipts.c.document_id])
            .returning(ack_receipts.c.id)
        ).first()
        if claimed is None:
            return None
        query = select(E).where(E.c.partner_id == (ack.partner_id or ""))
        if kind == "TA1":
            query = query.where(E.c.interchange_control == str(data.get("control_number", "")))
        else:
            query = query.where(E.c.group_control == str(data.get("group_control", "")))
        if self.dialect == "postgresql":
            query = query.with_for_update()
        owed = [_owed(r) for r in conn.execute(query.order_by(E.c.id)).mappings()]
        rec = decide(owed)
        self._apply(conn, ack, rec, now)
        return rec

    def _apply(self, conn: Connection, ack: AckToMatch, rec: Reconciliation, now: datetime) -> None:
        first_outbound = next((s.outbound_id for s in rec.sets), None)
        conn.execute(
            update(ack_receipts)
            .where(ack_receipts.c.document_id == ack.document_id)
            .values(
                outcome=rec.outcome,
                outbound_id=first_outbound,
                summary=rec.summary[:2000],
                details=json.dumps(rec.as_dict()),
            )
        )
        self._event(
            conn,
            kind=EntityKind.DOCUMENT,
            entity_id=ack.document_id,
            file_id=ack.file_id,
            action=EventAction.STATUS,
            from_status=None,
            to_status=f"ack_{rec.outcome}",
            at=now,
            reason=rec.summary[:1000],
            details={"unmatched": rec.unmatched[:50], "outbound_ids": sorted({s.outbound_id for s in rec.sets})},
            correlation_id=ack.correlation_id,
        )
        by_outbound: dict[int, list[str]] = {}
        for s in rec.sets:
            if s.duplicate:
                by_outbound.setdefault(s.outbound_id, []).append(f"set {s.key}: duplicate acknowledgment")
                continue
            values: dict[str, Any] = {"updated_at": now, "ta1_code": s.ta1_code} if s.ta1_code else {"updated_at": now}
            if s.changes:
                values.update(
                    status=s.status,
                    group_status=s.group_status,
                    acked_at=ack.received_at,
                    late=s.late,
                    ack_document_id=ack.document_id,
                    errors=json.dumps(list(s.errors)) if s.errors else None,
                )
                by_outbound.setdefault(s.outbound_id, []).append(
                    f"set {s.key}: {s.status}{' (late)' if s.late else ''}"
                )
            else:
                by_outbound.setdefault(s.outbound_id, []).append(
                    f"set {s.key}: TA1 {s.ta1_code} noted, still {s.status}"
                )
            conn.execute(update(E).where(E.c.id == s.key), values)
        for outbound_id, lines in by_outbound.items():
            summary = self._summarize(conn, outbound_id, now)
            row = self._get(conn, outbound, outbound_id)
            self._owed_event(
                conn,
                outbound_id,
                row["correlation_id"],
                now,
                summary or "pending",
                f"{rec.kind} (document {ack.document_id}): " + "; ".join(lines)[:900],
                {"document_id": ack.document_id, "outcome": rec.outcome},
            )

    def _summarize(self, conn: Connection, outbound_id: int, now: datetime) -> str | None:
        """Bring ``outbound.expected_ack`` in line with its sets: pending or overdue while any waits;
        accepted, rejected, or accepted_with_errors (mixed or with errors) once all are answered."""
        statuses = [r[0] for r in conn.execute(select(E.c.status).where(E.c.outbound_id == outbound_id))]
        if not statuses:
            return None
        kinds = set(statuses)
        if OwedAckStatus.OVERDUE.value in kinds:
            summary = ExpectedAck.OVERDUE.value
        elif OwedAckStatus.WAITING.value in kinds:
            summary = ExpectedAck.PENDING.value
        elif len(kinds) == 1:
            summary = statuses[0]
        else:
            summary = ExpectedAck.ACCEPTED_WITH_ERRORS.value
        conn.execute(update(outbound).where(outbound.c.id == outbound_id).values(expected_ack=summary, updated_at=now))
        return summary

    def _owed_event(
        self,
        conn: Connection,
        outbound_id: int,
        correlation: str | None,
        at: datetime,
        to_status: str,
        reason: str,
        details: dict[str, Any] | None = None,
        actor: str | None = None,
        action: EventAction = EventAction.STATUS,
    ) -> None:
        self._event(
            conn,
            kind=EntityKind.OUTBOUND,
            entity_id=outbound_id,
            file_id=None,
            action=action,
            from_status=None,
            to_status=f"ack_{to_status}",
            at=at,
            reason=reason,
            details=details,
            correlation_id=correlation,
            actor=actor,
        )

    # --- deadlines ----------------------------------------------------------------------------

    def mark_overdue(self) -> list[dict[str, Any]]:
        """Sets still waiting past their deadline become ``overdue`` (one event per interchange). Returns
        them (with their interchange's correlation id), for alerts. A cheap indexed query when none is."""
        now = self._now()
        late = (E.c.status == OwedAckStatus.WAITING.value, E.c.due_at < now)
        with self._db.read("find overdue acknowledgments") as conn:
            if conn.execute(select(E.c.id).where(*late).limit(1)).first() is None:
                return []  # the usual case: a read, no write lock
        with self._db.write("mark overdue acknowledgments") as conn:
            rows = (
                conn.execute(
                    update(E).where(*late).values(status=OwedAckStatus.OVERDUE.value, updated_at=now).returning(*E.c)
                )
                .mappings()
                .all()
            )
            out = [dict(r) for r in rows]
            by_outbound: dict[int, list[dict[str, Any]]] = {}
            for r in out:
                by_outbound.setdefault(int(r["outbound_id"]), []).append(r)
            ids = sorted(by_outbound)
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                correlation = dict(
                    conn.execute(select(outbound.c.id, outbound.c.correlation_id).where(outbound.c.id.in_(chunk))).all()
                )
                # A set overdue makes its interchange overdue, whatever its other sets say (see _summarize).
                conn.execute(
                    update(outbound)
                    .where(outbound.c.id.in_(chunk))
                    .values(expected_ack=ExpectedAck.OVERDUE.value, updated_at=now)
                )
                events = []
                for outbound_id in chunk:
                    mine = by_outbound[outbound_id]
                    due = min(r["due_at"] for r in mine)
                    for r in mine:
                        r["correlation_id"] = correlation.get(outbound_id)
                    events.append(
                        self.event_row(
                            kind=EntityKind.OUTBOUND,
                            entity_id=outbound_id,
                            file_id=None,
                            action=EventAction.STATUS,
                            from_status=None,
                            to_status=f"ack_{OwedAckStatus.OVERDUE.value}",
                            at=now,
                            reason=f"no acknowledgment of {len(mine)} set(s) by {due.isoformat()}",
                            details={"sets": [r["id"] for r in mine]},
                            correlation_id=correlation.get(outbound_id),
                        )
                    )
                conn.execute(EVENT_INSERT, events)
            return out

    def link_resend(self, original: OutboundRow, resend: OutboundRow, actor: str, reason: str) -> None:
        """Record that ``resend`` sends ``original`` again: its tracked sets point back at the original
        (``resent_from``), the original's at it (``resent_as``), and a ``retransmit`` event names who, when
        and why, on both."""
        now = self._now()
        with self._db.write(f"link outbound {resend.id} to {original.id}") as conn:
            conn.execute(update(E).where(E.c.outbound_id == original.id).values(resent_as=resend.id, updated_at=now))
            conn.execute(
                update(E)
                .where(and_(E.c.outbound_id == resend.id, E.c.resent_from.is_(None)))
                .values(resent_from=original.id, updated_at=now)
            )
            details = {
                "parent_id": original.id,
                "resend_id": resend.id,
                "control_number": resend.control_number,
                "original_control_number": original.control_number,
            }
            for entity, text in ((resend, f"resend of outbound {original.id}"), (original, f"resent as {resend.id}")):
                self._owed_event(
                    conn,
                    entity.id,
                    entity.correlation_id,
                    now,
                    "resent",
                    f"{text}: {reason}",
                    details,
                    actor,
                    EventAction.RETRANSMIT,
                )
