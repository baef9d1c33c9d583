"""Reading acknowledgment tracking: the sets we wait on and what answered them, for ``gateway acks``,
dashboards and metrics (read-only; the writes are :mod:`gateway.store.acks`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from gateway.store.base import StoreBase
from gateway.store.errors import NotFoundError
from gateway.store.rows import OutboundRow
from gateway.store.schema import ack_expectations as E
from gateway.store.schema import ack_receipts, outbound
from gateway.store.statuses import OwedAckStatus

__all__ = ["AckQueryOps"]


class AckQueryOps(StoreBase):
    """Listings and counts of acknowledgment tracking."""

    def list_owed_acks(
        self,
        *,
        status: Sequence[str] | None = None,
        partner_id: str | None = None,
        outbound_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Tracked sets, newest first, with their interchange's kind and status, filtered by status(es),
        partner or interchange."""
        query = (
            select(
                E, outbound.c.kind, outbound.c.status.label("outbound_status"), outbound.c.created_at.label("sent_at")
            )
            .join(outbound, outbound.c.id == E.c.outbound_id)
            .order_by(E.c.id.desc())
            .limit(limit)
        )
        if status:
            query = query.where(E.c.status.in_([OwedAckStatus(s).value for s in status]))
        if partner_id is not None:
            query = query.where(E.c.partner_id == partner_id)
        if outbound_id is not None:
            query = query.where(E.c.outbound_id == outbound_id)
        with self._db.read("list acknowledgments owed") as conn:
            return [_plain(r) for r in conn.execute(query).mappings()]

    def owed_ack_counts(self, partner_id: str | None = None) -> dict[str, int]:
        """Tracked sets by status (``waiting``, ``overdue``...), for dashboards and metrics; one indexed query."""
        query = select(E.c.status, func.count()).group_by(E.c.status)
        if partner_id is not None:
            query = query.where(E.c.partner_id == partner_id)
        with self._db.read("count acknowledgments owed") as conn:
            return {str(status): int(n) for status, n in conn.execute(query)}

    def list_ack_receipts(
        self,
        *,
        outcome: Sequence[str] | None = None,
        partner_id: str | None = None,
        outbound_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Inbound acknowledgments matched (or not), newest first."""
        query = select(ack_receipts).order_by(ack_receipts.c.id.desc()).limit(limit)
        if outcome:
            query = query.where(ack_receipts.c.outcome.in_(list(outcome)))
        if partner_id is not None:
            query = query.where(ack_receipts.c.partner_id == partner_id)
        if outbound_id is not None:
            answered = select(E.c.ack_document_id).where(E.c.outbound_id == outbound_id)
            query = query.where((ack_receipts.c.outbound_id == outbound_id) | ack_receipts.c.document_id.in_(answered))
        with self._db.read("list acknowledgments received") as conn:
            return [_plain(r) for r in conn.execute(query).mappings()]

    def get_outbound(self, outbound_id: int) -> OutboundRow:
        """The outbound interchange ``outbound_id``; NotFoundError when there is none."""
        with self._db.read(f"read outbound {outbound_id}") as conn:
            row = conn.execute(select(outbound).where(outbound.c.id == outbound_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no outbound interchange {outbound_id}")
        return OutboundRow.from_mapping(row)


def _plain(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("errors", "details"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out
