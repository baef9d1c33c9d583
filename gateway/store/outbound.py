"""What the gateway sends: acknowledgments now, documents later, each with the acknowledgment we expect back.

Every interchange we send a partner, whatever builds it (the runtime's 997/999/TA1, ``gateway
render``'s 850), takes its ISA13 and GS06 from one persisted sequence per partner,
:data:`INTERCHANGE_SEQUENCE`, so two of them never share a control number.

A row points at the archived bytes (``sha256``) and carries the control
numbers a returning 997/999/TA1 will quote, so the ack-tracking issue can
match acknowledgments to what we sent and flag overdue ones
(``expected_ack`` ``pending`` past ``ack_due_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from gateway.store.archive import Archive
from gateway.store.base import as_enum, aware, new_correlation_id, to_json
from gateway.store.deliveries import DeliveryOps, OwedDelivery
from gateway.store.keys import KeyOps
from gateway.store.rows import OutboundRow
from gateway.store.schema import files, outbound
from gateway.store.search import insert_keys, normalize
from gateway.store.statuses import EntityKind, EventAction, ExpectedAck, OutboundStatus

__all__ = ["INTERCHANGE_SEQUENCE", "OutboundOps"]

INTERCHANGE_SEQUENCE = "ack"
"""The per-partner sequence of outbound ISA13/GS06 numbers. Named ``ack`` because acknowledgments were
the first interchanges the gateway sent; documents draw from it too (renaming it would restart the
numbering of every deployment)."""


class OutboundOps(KeyOps, DeliveryOps):
    """Recording and listing outbound interchanges; the partner's interchange control numbers."""

    def next_interchange_number(self, partner_id: str) -> int:
        """The next ISA13 (and GS06) for an interchange we send ``partner_id``: the runtime's acks draw from
        the same persisted sequence, so a rendered 850 never repeats an ack's number, nor an ack an 850's."""
        return self.next_value(partner_id, INTERCHANGE_SEQUENCE)

    def add_outbound(
        self,
        partner_id: str,
        kind: str,
        sha256: str,
        *,
        control_number: str | None = None,
        group_control_number: str | None = None,
        file_id: int | None = None,
        status: str = OutboundStatus.CREATED,
        reason: str | None = None,
        expected_ack: str | None = None,
        ack_due_at: datetime | None = None,
        correlation_id: str | None = None,
        deliver_to: Sequence[str | tuple[str, str | None]] | None = None,
        worker: str | None = None,
        keys: Sequence[tuple[str, str]] = (),
        conn: Connection | None = None,
        route: dict[str, Any] | None = None,
    ) -> OutboundRow:
        """Record something we send to ``partner_id`` (``kind``: ``997``, ``999``, ``TA1``, ``850``...).

        ``sha256`` names its bytes in the archive; ``file_id`` is the received
        file it answers, if any (its correlation id is inherited);
        ``expected_ack`` (e.g. ``pending``) and ``ack_due_at`` say what
        acknowledgment we wait for, and until when. ``deliver_to`` names the destinations it is owed to:
        those deliveries are recorded in the same transaction (leased to ``worker`` for a minute, so it
        can try them at once; anyone may after that). ``keys`` are its business keys (``("po", "4500012345")``)
        for ``gateway find``. ``deliver_to`` items are destination names (recorded as the ``partner`` rule's)
        or ``(destination, rule)`` pairs from the outbound router; ``route`` is its decision, kept with the
        row (an ``unrouted`` decision makes the row ``unrouted``: an exception, never dropped). Given ``conn``,
        it is recorded in that transaction (a transactional outbox: the item and its deliveries commit, or
        vanish, with whatever else the caller records there).
        """
        if conn is None:
            with self._db.write("record an outbound interchange") as own:
                return self.add_outbound(
                    partner_id, kind, sha256, control_number=control_number,
                    group_control_number=group_control_number, file_id=file_id, status=status, reason=reason,
                    expected_ack=expected_ack, ack_due_at=ack_due_at, correlation_id=correlation_id,
                    deliver_to=deliver_to, worker=worker, keys=keys, conn=own, route=route,
                )  # fmt: skip
        if route is not None and route.get("unrouted"):
            status = OutboundStatus.UNROUTED
        Archive.check_digest(sha256)
        state = as_enum(OutboundStatus, status, "outbound status")
        ack = None if expected_ack is None else as_enum(ExpectedAck, expected_ack, "expected ack status")
        due = None if ack_due_at is None else aware(ack_due_at, "ack_due_at")
        now = self._now()
        correlation = correlation_id
        if file_id is not None:
            file = self._get(conn, files, file_id)
            correlation = correlation or file["correlation_id"]
        correlation = correlation or new_correlation_id()
        row = (
            conn.execute(
                insert(outbound)
                .values(
                    partner_id=partner_id,
                    kind=kind,
                    sha256=sha256,
                    control_number=control_number,
                    group_control_number=group_control_number,
                    file_id=file_id,
                    status=state.value,
                    reason=reason,
                    expected_ack=None if ack is None else ack.value,
                    ack_due_at=due,
                    correlation_id=correlation,
                    created_at=now,
                    updated_at=now,
                    route=None if route is None else to_json(route, "outbound route"),
                )
                .returning(*outbound.c)
            )
            .mappings()
            .one()
        )
        self._event(
            conn,
            kind=EntityKind.OUTBOUND,
            entity_id=row["id"],
            file_id=file_id,
            action=EventAction.CREATE,
            from_status=None,
            to_status=state.value,
            at=now,
            reason=reason,
            details={
                "kind": kind,
                "partner_id": partner_id,
                "control_number": control_number,
                "sha256": sha256,
                **({"route": route} if route is not None else {}),
            },
            correlation_id=correlation,
        )
        keyed = [{"outbound_id": row["id"], "kind": k, "value": normalize(v)} for k, v in keys]
        insert_keys(conn, [{"file_id": file_id, "document_id": None, "partner_id": partner_id, **k} for k in keyed])
        if deliver_to:
            owed = [
                OwedDelivery(
                    dest,
                    kind,
                    partner_id,
                    correlation,
                    f"outbound:{row['id']}",
                    file_id=file_id,
                    outbound_id=int(row["id"]),
                    rule=rule,
                )
                for dest, rule in ((item, "partner") if isinstance(item, str) else item for item in deliver_to)
            ]
            self.deliveries_on(conn, owed, worker or "send", 60.0)
        return OutboundRow.from_mapping(row)

    def list_outbound(
        self,
        *,
        file_id: int | None = None,
        partner_id: str | None = None,
        expected_ack: str | None = None,
        kind: str | None = None,
        reason: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[OutboundRow]:
        """Outbound rows, newest first, filtered by the file they answer, partner, expected-ack status, kind
        (``850``, ``997``...), status (``unrouted``...) or exact reason (the send folder finds what it
        already recorded by it)."""
        query = select(outbound).order_by(outbound.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(outbound.c.status == as_enum(OutboundStatus, status, "outbound status").value)
        if kind is not None:
            query = query.where(outbound.c.kind == kind)
        if reason is not None:
            query = query.where(outbound.c.reason == reason)
        if file_id is not None:
            query = query.where(outbound.c.file_id == file_id)
        if partner_id is not None:
            query = query.where(outbound.c.partner_id == partner_id)
        if expected_ack is not None:
            query = query.where(outbound.c.expected_ack == as_enum(ExpectedAck, expected_ack, "expected ack").value)
        with self._db.read("list outbound interchanges") as conn:
            return [OutboundRow.from_mapping(r) for r in conn.execute(query).mappings()]
