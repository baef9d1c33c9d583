"""The gateway's state: the SQL ledger (:class:`Store`) and the content-addressed archive (:class:`Archive`).

An I/O edge: the pure core never imports it. The runtime archives a file's
bytes, records the file, leases it, records what it found inside and what
it sent back, and every status change leaves an event. Design notes:
``docs/store.md``.
"""

from gateway.store.archive import Archive
from gateway.store.base import Clock, utc_now
from gateway.store.errors import (
    ArchiveError,
    BlobCorruptError,
    BlobNotFoundError,
    InvalidDigestError,
    LeaseError,
    NotFoundError,
    SchemaError,
    StoreError,
    StoreUnavailableError,
    StoreValueError,
    TransitionError,
)
from gateway.store.keys import CONTROL_NUMBER_MAX
from gateway.store.rows import (
    DedupeRow,
    DocumentRow,
    EventRow,
    FileRow,
    FileTree,
    GroupNode,
    GroupRow,
    InterchangeNode,
    InterchangeRow,
    OutboundRow,
    SetNode,
    SetRow,
)
from gateway.store.statuses import (
    FILE_FINAL,
    FILE_TRANSITIONS,
    DedupeKind,
    DocumentStatus,
    EntityKind,
    EnvelopeStatus,
    EventAction,
    ExpectedAck,
    FileFormat,
    FileStatus,
    OutboundStatus,
    SetStatus,
)
from gateway.store.store import DEFAULT_URL, Store

__all__ = [
    "CONTROL_NUMBER_MAX",
    "DEFAULT_URL",
    "FILE_FINAL",
    "FILE_TRANSITIONS",
    "Archive",
    "ArchiveError",
    "BlobCorruptError",
    "BlobNotFoundError",
    "Clock",
    "DedupeKind",
    "DedupeRow",
    "DocumentRow",
    "DocumentStatus",
    "EntityKind",
    "EnvelopeStatus",
    "EventAction",
    "EventRow",
    "ExpectedAck",
    "FileFormat",
    "FileRow",
    "FileStatus",
    "FileTree",
    "GroupNode",
    "GroupRow",
    "InterchangeNode",
    "InterchangeRow",
    "InvalidDigestError",
    "LeaseError",
    "NotFoundError",
    "OutboundRow",
    "OutboundStatus",
    "SchemaError",
    "SetNode",
    "SetRow",
    "SetStatus",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StoreValueError",
    "TransitionError",
    "utc_now",
]
