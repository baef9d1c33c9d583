"""Statuses and kinds the ledger stores, as enums, and the file state machine.

Values are stored as strings (and guarded by CHECK constraints), so adding
one is a migration. Only files have a strict state machine
(:data:`FILE_TRANSITIONS`): they are what workers lease. The statuses of the
parts of a file (interchanges, groups, sets, documents) are verdicts the
runtime records, so any value of their enum may follow any other.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "FILE_FINAL",
    "FILE_TRANSITIONS",
    "AckReceiptOutcome",
    "DedupeKind",
    "DeliveryOutcome",
    "DeliveryStatus",
    "DocumentStatus",
    "EntityKind",
    "EnvelopeStatus",
    "EventAction",
    "ExpectedAck",
    "FileFormat",
    "FileStatus",
    "OutboundStatus",
    "OwedAckStatus",
    "SetStatus",
]


class EntityKind(StrEnum):
    """What an event, a dedupe key or :meth:`Store.set_status` refers to."""

    FILE = "file"
    INTERCHANGE = "interchange"
    GROUP = "group"
    TRANSACTION_SET = "transaction_set"
    DOCUMENT = "document"
    OUTBOUND = "outbound"
    DELIVERY = "delivery"


class FileFormat(StrEnum):
    """How a received file is written."""

    X12 = "x12"
    CSV = "csv"
    XML = "xml"
    UNKNOWN = "unknown"


class FileStatus(StrEnum):
    """Where a received file is in its life (see :data:`FILE_TRANSITIONS`)."""

    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    PARTIAL = "partial"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"
    HELD = "held"


class EnvelopeStatus(StrEnum):
    """An interchange's or functional group's verdict (the 997/999 AK9 and TA1 outcomes)."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    FAILED = "failed"


class SetStatus(StrEnum):
    """A transaction set's verdict: validation (AK5/IK5), then translation."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    REJECTED = "rejected"
    TRANSLATED = "translated"
    FAILED = "failed"
    DUPLICATE = "duplicate"


class DocumentStatus(StrEnum):
    """A canonical document's status; routing and delivery values are for the routing issue."""

    TRANSLATED = "translated"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    HELD = "held"
    ROUTED = "routed"
    DELIVERED = "delivered"
    DEAD_LETTER = "dead_letter"
    UNROUTED = "unrouted"  # no routing rule matched it: an exception for an operator, never dropped


class DeliveryStatus(StrEnum):
    """One document (or outbound interchange) on its way to one destination."""

    PENDING = "pending"  # due at next_attempt_at (a retry after a failed attempt is pending too)
    DELIVERED = "delivered"
    DEAD_LETTER = "dead_letter"  # rejected, or out of attempts: waits for an operator (retry or discard)
    DISCARDED = "discarded"  # an operator gave it up, with a reason


class DeliveryOutcome(StrEnum):
    """What one delivery attempt came to."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"
    ERROR = "error"  # the destination raised (a bug or a broken component): retried, with the trace recorded


class OutboundStatus(StrEnum):
    """Something the gateway sends: written to the outbox, then sent (or not)."""

    CREATED = "created"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNROUTED = "unrouted"  # no outbound routing rule matched it: an exception for an operator, never dropped


class ExpectedAck(StrEnum):
    """The functional acknowledgment we wait for on an outbound interchange (NULL: none expected)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    REJECTED = "rejected"
    OVERDUE = "overdue"


class DedupeKind(StrEnum):
    """Families of duplicate-detection keys, each unique per partner."""

    BYTES = "bytes"
    ISA13 = "isa13"
    GS06 = "gs06"
    ST02 = "st02"
    BUSINESS = "business"


class EventAction(StrEnum):
    """Why an event was appended."""

    CREATE = "create"
    STATUS = "status"
    CLAIM = "claim"
    RECLAIM = "reclaim"
    RELEASE = "release"
    RESET = "reset"
    ATTEMPT = "attempt"
    RETRY = "retry"
    DISCARD = "discard"
    RETRANSMIT = "retransmit"
    REPROCESS = "reprocess"
    REQUEUE = "requeue"


_F = FileStatus

FILE_TRANSITIONS: dict[FileStatus, frozenset[FileStatus]] = {
    # ``processing`` is entered only through Store.claim_files, which takes a lease.
    _F.RECEIVED: frozenset({_F.PROCESSING, _F.DUPLICATE, _F.HELD, _F.QUARANTINED, _F.FAILED}),
    _F.PROCESSING: frozenset({_F.RECEIVED, _F.PROCESSED, _F.PARTIAL, _F.FAILED, _F.QUARANTINED, _F.DUPLICATE, _F.HELD}),
    # An operator releases a held file, or re-queues a failed or quarantined one.
    _F.HELD: frozenset({_F.RECEIVED, _F.FAILED, _F.QUARANTINED}),
    _F.FAILED: frozenset({_F.RECEIVED}),
    _F.QUARANTINED: frozenset({_F.RECEIVED}),
    # Final: reprocessing records a new file row whose parent_id points here.
    _F.PROCESSED: frozenset(),
    _F.PARTIAL: frozenset(),
    _F.DUPLICATE: frozenset(),
}
"""Allowed file status changes: ``FILE_TRANSITIONS[current]`` is the set of next statuses."""

FILE_FINAL: frozenset[FileStatus] = frozenset({_F.PROCESSED, _F.PARTIAL, _F.DUPLICATE})
"""File statuses that are never left; their children are never reset."""


class OwedAckStatus(StrEnum):
    """Where one transaction set we sent stands with the 997/999 we are owed for it (``ack_expectations``)."""

    WAITING = "waiting"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    REJECTED = "rejected"
    OVERDUE = "overdue"


class AckReceiptOutcome(StrEnum):
    """What an inbound 997/999/TA1 came to when matched against what we sent (``ack_receipts``)."""

    MATCHED = "matched"
    PARTLY_MATCHED = "partly_matched"  # some sets it names are ours, others are not (or already answered)
    UNMATCHED = "unmatched"  # names nothing we sent: reported, never dropped
    DUPLICATE = "duplicate"  # everything it answers was answered already


class ExceptionStatus(StrEnum):
    """A reconciliation exception's life: open until a later document or an operator settles it."""

    OPEN = "open"
    RESOLVED = "resolved"  # by a later document (resolved_by document) or an operator (resolved_by operator)
    WAIVED = "waived"  # an operator accepted it as it is, with a reason
