"""Holds: what keeps a file out of a retention purge, each a named query registered in one place.

A hold is a SQL predicate over one ``files`` row (correlated with :data:`~gateway.store.schema.files`):
true while that file, or something that hangs off it, still needs its archived bytes or its ledger
detail. ``gateway archive purge`` refuses every file any hold matches and says which hold, so an
operator knows what to clear first. The holds run inside the purge's write transaction, so what they
see is what the purge deletes.

To add one (acknowledgment tracking, reconciliation exceptions...), append one line to :data:`HOLDS`::

    Hold("open_exception", "an open reconciliation exception", lambda: _exists(exceptions, ...)),
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, Table, cast, exists, literal

from gateway.store.schema import deliveries, documents, files, outbound, recon_exceptions, recon_links
from gateway.store.statuses import DeliveryStatus, DocumentStatus, ExceptionStatus, ExpectedAck, FileStatus

__all__ = ["HOLDS", "Hold", "hold_names"]


@dataclass(frozen=True, slots=True)
class Hold:
    """``clause()`` is true for a ``files`` row that must not be purged; ``why`` says so to an operator."""

    name: str
    why: str
    clause: Callable[[], ColumnElement[bool]]


def _exists(table: Table, *where: ColumnElement[bool]) -> ColumnElement[bool]:
    """Some row of ``table`` hanging off the file (its ``file_id``) matches ``where``."""
    return exists().where(table.c.file_id == files.c.id, *where)


def _open_exception() -> ColumnElement[bool]:
    """One of the file's documents is in a PO chain (``recon_links``) with an open reconciliation
    exception: the buyer or the AP clerk settling it needs the documents as they came."""
    return exists().where(
        documents.c.file_id == files.c.id,
        recon_links.c.ref == literal("document:") + cast(documents.c.id, String),
        recon_exceptions.c.partner_id == recon_links.c.partner_id,
        recon_exceptions.c.po_number == recon_links.c.po_number,
        recon_exceptions.c.status == ExceptionStatus.OPEN.value,
    )


HOLDS: tuple[Hold, ...] = (
    Hold(
        "unprocessed",
        "not processed yet (received, or a worker is on it)",
        lambda: files.c.status.in_([FileStatus.RECEIVED.value, FileStatus.PROCESSING.value]),
    ),
    Hold(
        "unresolved",
        "failed, quarantined or held: waits for an operator (requeue, release)",
        lambda: files.c.status.in_([FileStatus.FAILED.value, FileStatus.QUARANTINED.value, FileStatus.HELD.value]),
    ),
    Hold(
        "undelivered",
        "a delivery is pending (not delivered yet, or waiting for a retry)",
        lambda: _exists(deliveries, deliveries.c.status == DeliveryStatus.PENDING.value),
    ),
    Hold(
        "dead_letter",
        "a delivery is a dead letter (retry or discard it first)",
        lambda: _exists(deliveries, deliveries.c.status == DeliveryStatus.DEAD_LETTER.value),
    ),
    Hold(
        "unrouted",
        "a document matched no routing rule (an exception an operator has not settled)",
        lambda: _exists(documents, documents.c.status == DocumentStatus.UNROUTED.value),
    ),
    Hold(
        "unacknowledged",
        "something sent for it still waits for its 997/999",
        lambda: _exists(outbound, outbound.c.expected_ack.in_([ExpectedAck.PENDING.value, ExpectedAck.OVERDUE.value])),
    ),
    Hold(
        "open_exception",
        "its PO chain has an open reconciliation exception (resolve or waive it first)",
        _open_exception,
    ),
)
"""Every hold, in the order they are reported."""


def hold_names() -> list[str]:
    """The registered holds' names."""
    return [h.name for h in HOLDS]
