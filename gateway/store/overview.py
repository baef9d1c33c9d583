"""The ledger at a glance, for ``gateway status``: each partner's traffic since a time, each destination's
queue, and the business indicators an operator watches (dead-lettered invoices, overdue acknowledgments).

A handful of grouped counts over indexed columns (``files.received_at``, ``deliveries.destination``,
``outbound.expected_ack``), so the dashboard stays quick on a big ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, and_, case, cast, func, literal, null, select

from gateway.store.base import StoreBase
from gateway.store.schema import ack_expectations, deliveries, documents, files, outbound, recon_exceptions
from gateway.store.statuses import ExceptionStatus, OwedAckStatus

__all__ = ["OverviewOps"]

FAILED_FILES = ("failed", "quarantined", "partial")
FAILED_DOCUMENTS = ("failed", "dead_letter")
OPEN_DELIVERIES = ("pending", "dead_letter", "discarded")
"""The delivery statuses other than delivered: few, whatever the ledger's age."""


class OverviewOps(StoreBase):
    """``gateway status``'s counts."""

    def traffic(self, since: datetime, by_type: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Per partner, files received since ``since``: how many, in which statuses, documents, failures and
        the last receipt; partners without traffic are not listed. The documents are added up from
        :meth:`traffic_by_type` of the same ``since``: pass ``by_type`` when already read (the overview
        shows both), so the day's documents are not counted twice."""
        out: dict[str, dict[str, Any]] = {}
        with self._db.read("count traffic per partner") as conn:
            query = (
                select(files.c.partner_id, files.c.status, func.count(), func.max(files.c.received_at))
                .where(files.c.received_at >= since)
                .group_by(files.c.partner_id, files.c.status)
            )
            for partner, status, n, last in conn.execute(query):
                item = out.setdefault(
                    partner or "(unknown)",
                    {"partner": partner or "(unknown)", "files": 0, "statuses": {}, "failed_files": 0,
                     "documents": 0, "failed_documents": 0, "last_received": None},
                )  # fmt: skip
                item["files"] += int(n)
                item["statuses"][status] = int(n)
                item["failed_files"] += int(n) if status in FAILED_FILES else 0
                if last is not None and (item["last_received"] is None or last > item["last_received"]):
                    item["last_received"] = last
        for row in self.traffic_by_type(since) if by_type is None else by_type:
            seen = out.get(row["partner"])
            if seen is not None:  # else documents of a file received before ``since``
                seen["documents"] += row["documents"]
                seen["failed_documents"] += row["failed"]
        return sorted(out.values(), key=lambda x: x["partner"])

    def destinations(self, now: datetime, since: datetime | None = None) -> list[dict[str, Any]]:
        """Per destination: deliveries pending, due now, dead letters, discarded, delivered (since ``since``
        when given, else ever), and the oldest pending's age. Destinations with none of these are not listed.

        The open states are few and counted through the status index; "delivered" is nearly every delivery
        ever made, so a dashboard passes ``since`` and reads one day of ``(delivered_at, destination, status)``
        instead of counting millions of rows (migration 0010; docs/performance.md).
        """
        out: dict[str, dict[str, Any]] = {}
        due = func.sum(case((and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now), 1), else_=0))
        open_states = select(
            deliveries.c.destination, deliveries.c.status, func.count(), func.min(deliveries.c.created_at), due
        ).where(deliveries.c.status.in_(OPEN_DELIVERIES))
        # Only what the (delivered_at, destination, status) index holds: the table's rows are never read.
        delivered = select(deliveries.c.destination, deliveries.c.status, func.count(), null(), null()).where(
            deliveries.c.status == "delivered"
        )
        if since is not None:
            delivered = delivered.where(deliveries.c.delivered_at >= since)
        by = (deliveries.c.destination, deliveries.c.status)
        with self._db.read("count deliveries per destination") as conn:
            for query in (open_states, delivered):
                for dest, status, n, first, n_due in conn.execute(query.group_by(*by)):
                    item = out.setdefault(
                        dest, {"destination": dest, "pending": 0, "due": 0, "dead_letter": 0, "delivered": 0,
                               "discarded": 0, "oldest_pending_seconds": None},
                    )  # fmt: skip
                    item[status] = int(n)
                    if status == "pending":
                        item["due"] = int(n_due or 0)
                        if first is not None:
                            age = (now - first.astimezone(UTC)).total_seconds()
                            item["oldest_pending_seconds"] = round(age, 1)
        return sorted(out.values(), key=lambda x: x["destination"])

    def traffic_by_type(self, since: datetime) -> list[dict[str, Any]]:
        """Per partner and document type, documents recorded since ``since``: how many and how many failed
        or dead-lettered (acknowledgments received not counted), ordered by partner then type."""
        failed = func.sum(case((documents.c.status.in_(FAILED_DOCUMENTS), 1), else_=0))
        query = (
            select(documents.c.partner_id, documents.c.doc_type, func.count(), failed)
            .where(documents.c.created_at >= since, documents.c.doc_type != "acknowledgment")
            .group_by(documents.c.partner_id, documents.c.doc_type)
        )
        out: dict[tuple[str, str], dict[str, Any]] = {}
        with self._db.read("count documents per partner and type") as conn:
            for partner, doc_type, n, n_failed in conn.execute(query):
                key = (partner or "(unknown)", str(doc_type))
                item = out.setdefault(key, {"partner": key[0], "doc_type": key[1], "documents": 0, "failed": 0})
                item["documents"] += int(n)  # a NULL partner and "(unknown)" are one row
                item["failed"] += int(n_failed or 0)
        return [out[k] for k in sorted(out)]

    def open_exceptions_by_partner(self) -> list[dict[str, Any]]:
        """Per partner, the open reconciliation exceptions: how many and the amount at stake (their amounts
        summed exactly, as Decimal: the column is text; PostgreSQL adds it as numeric, SQLite's numbers are
        floats so Python adds there)."""
        is_open = recon_exceptions.c.status == ExceptionStatus.OPEN.value
        amount = func.coalesce(func.nullif(recon_exceptions.c.amount, ""), "0")
        if self.dialect == "postgresql":  # numeric adds exactly: one row per partner, not one per exception
            query = (
                select(recon_exceptions.c.partner_id, func.count(), func.sum(cast(amount, Numeric)))
                .where(is_open)
                .group_by(recon_exceptions.c.partner_id)
            )
        else:  # SQLite's numbers are floats: Python adds the text as Decimal
            query = select(recon_exceptions.c.partner_id, literal(1), amount).where(is_open)
        out: dict[str, dict[str, Any]] = {}
        with self._db.read("sum open reconciliation exceptions") as conn:
            for partner, n, at_stake in conn.execute(query):
                item = out.setdefault(partner, {"partner": partner, "open": 0, "at_stake": Decimal(0)})
                item["open"] += int(n)
                item["at_stake"] += Decimal(at_stake)
        return [out[k] for k in sorted(out)]

    def last_activity(self, partner_ids: Sequence[str]) -> dict[str, datetime]:
        """Each of ``partner_ids``' last file received (absent: none yet); one lookup per partner on the
        (partner, received_at) index, not a scan of every file."""
        out: dict[str, datetime] = {}
        with self._db.read("read each partner's last activity") as conn:
            for partner in partner_ids:
                last = conn.execute(select(func.max(files.c.received_at)).where(files.c.partner_id == partner))
                value = last.scalar_one()
                if value is not None:
                    out[partner] = value
        return out

    def indicators(self, now: datetime) -> dict[str, int]:
        """Business indicators: invoices whose delivery is a dead letter, documents failed or unrouted, acks
        overdue (pending past their due time, or marked overdue), interchanges we sent awaiting an ack.

        Each an indexed count, all asked in one statement: on a busy host a round trip to the database
        costs more than any of these counts (docs/performance.md)."""

        def count(*where: Any) -> Any:
            return select(func.count()).where(*where).scalar_subquery()

        def open_exceptions(*kind: str) -> Any:
            return count(recon_exceptions.c.status == ExceptionStatus.OPEN.value,
                         *(recon_exceptions.c.kind == k for k in kind))  # fmt: skip

        counts = {
            "invoices_dead_lettered": select(func.count(func.distinct(deliveries.c.document_id)))
            .where(deliveries.c.status == "dead_letter", deliveries.c.doc_type == "invoice")
            .scalar_subquery(),
            "documents_failed": count(documents.c.status == "failed"),
            "documents_unrouted": count(documents.c.status == "unrouted"),
            # Two counts of the (expected_ack, ack_due_at) index, not one OR that reads every overdue row.
            "acks_overdue": count(outbound.c.expected_ack == "overdue")
            + count(outbound.c.expected_ack == "pending", outbound.c.ack_due_at < now),
            "acks_awaited": count(outbound.c.expected_ack == "pending"),
            "acks_rejected": count(ack_expectations.c.status == OwedAckStatus.REJECTED.value),
            # Reconciliation's time-based exceptions, still open: the chain is late somewhere.
            "pos_without_855": open_exceptions("ack_late"),
            "pos_without_856": open_exceptions("ship_late"),
            "asns_without_invoice": open_exceptions("invoice_late"),
            "recon_exceptions_open": open_exceptions(),
        }
        with self._db.read("count business indicators") as conn:
            row = conn.execute(select(*(q.label(name) for name, q in counts.items()))).mappings().one()
        return {name: int(row[name]) for name in counts}
