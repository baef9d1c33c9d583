"""The ledger's tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Lineage: ``files`` → ``interchanges`` → ``groups`` → ``transaction_sets`` →
``documents`` (CSV and XML documents hang off the file directly). Children
carry ``file_id`` too, so a file's whole tree is read, or reset, with one
indexed query per table. ``parent_id`` on files and documents links a
reprocessed or retransmitted copy to its original. ``events`` is the
append-only log of every status change; ``sequences`` hands out control
numbers; ``dedupe_keys`` remembers what was seen; ``outbound`` is what we
send and the acknowledgment we expect for it; ``deliveries`` is the transactional outbox (each
document or outbound interchange owed to a destination, written with it) and ``delivery_attempts``
what each try came to.

Portable types only: JSON is ``Text``, timestamps are timezone-aware UTC
(:class:`UTCDateTime`), statuses are strings guarded by CHECK constraints
built from the enums. Ids never repeat, even after deletes
(``sqlite_autoincrement``; sequences on PostgreSQL), because events keep
referring to deleted rows. The migrations in ``migrations/versions`` must
produce exactly this; a test compares them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from gateway.store.errors import StoreValueError
from gateway.store.statuses import (
    AckReceiptOutcome,
    DedupeKind,
    DeliveryOutcome,
    DeliveryStatus,
    DocumentStatus,
    EntityKind,
    EnvelopeStatus,
    EventAction,
    ExceptionStatus,
    ExpectedAck,
    FileFormat,
    FileStatus,
    OutboundStatus,
    OwedAckStatus,
    SetStatus,
)

__all__ = [
    "NAMING_CONVENTION",
    "UTCDateTime",
    "ack_expectations",
    "ack_receipts",
    "dedupe_keys",
    "deliveries",
    "delivery_attempts",
    "documents",
    "events",
    "files",
    "groups",
    "interchanges",
    "metadata",
    "outbound",
    "purges",
    "search_keys",
    "sequences",
    "transaction_sets",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so migrations can refer to them on every database."""


def _in_utc(value: datetime) -> datetime:
    """``value`` in UTC (as it is when it already is); a naive datetime is refused."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreValueError(f"naive datetime {value.isoformat()}: pass an aware datetime (UTC)")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive datetimes are refused.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones: values are
    converted to UTC and stored naive in SQLAlchemy's fixed-width text
    format, so string comparison orders them correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _in_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], object] | None:
        """On SQLite, one step to the text SQLAlchemy's ``DATETIME`` stores (``YYYY-MM-DD HH:MM:SS.ffffff``),
        by ``isoformat`` instead of :meth:`process_bind_param` then the impl's ``%`` formatting: 1.7 µs a
        value instead of 4.1, and every ledger row binds two to five of them (created, updated, leases)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # A batch binds the same ``now`` object in many rows and columns: the last value's text is kept
        # (compared by identity: the kept reference keeps that object alive, so its id is not reused).
        last: list[tuple[datetime | None, str | None]] = [(None, None)]

        def process(value: datetime | None) -> str | None:
            kept = last[0]  # one read of the pair: another thread may replace it meanwhile
            if value is kept[0]:
                return kept[1]  # None for None too
            if value is None:
                return None
            text = _in_utc(value).isoformat(" ", "microseconds")[:26]
            last[0] = (value, text)
            return text

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit ids; INTEGER on SQLite, where only that spelling is the auto-incrementing rowid."""

PARTNER = 64
DIGEST = 64
UUID = 36
CONTROL = 32
STATUS = 32


def _one_of(column: str, enum: type[StrEnum], name: str | None = None) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=name or column)


def _ts(name: str, nullable: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


def _pk() -> Column[int]:
    return Column("id", ID, primary_key=True, autoincrement=True)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

files = Table(
    "files",
    metadata,
    _pk(),
    Column("sha256", String(DIGEST), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("name", String(1024), nullable=False),
    Column("origin", String(2048), nullable=False),
    Column("partner_id", String(PARTNER)),
    Column("format", String(16), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("reason", Text),
    Column("correlation_id", String(UUID), nullable=False),
    Column("parent_id", ID, ForeignKey("files.id")),
    _ts("received_at"),
    _ts("updated_at"),
    Column("lease_owner", String(128)),
    _ts("lease_expires_at", nullable=True),
    Column("attempts", Integer, nullable=False),
    _ts("results_at", nullable=True),
    Column("results", Text),
    _one_of("format", FileFormat),
    _one_of("status", FileStatus),
    Index("ix_files_sha256", "sha256"),
    Index("ix_files_status_received_at", "status", "received_at"),
    Index("ix_files_partner_id_received_at", "partner_id", "received_at"),
    Index("ix_files_parent_id", "parent_id"),
    Index("ix_files_correlation_id", "correlation_id"),
    # migration 0010 (replacing 0006's received_at): date ranges of `messages list`, today's traffic from the index
    Index("ix_files_traffic", "received_at", "partner_id", "status"),
    sqlite_autoincrement=True,
)

interchanges = Table(
    "interchanges",
    metadata,
    _pk(),
    Column("file_id", ID, ForeignKey("files.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("sender_qualifier", String(4), nullable=False),
    Column("sender_id", String(35), nullable=False),
    Column("receiver_qualifier", String(4), nullable=False),
    Column("receiver_id", String(35), nullable=False),
    Column("control_number", String(CONTROL), nullable=False),
    Column("version", String(16), nullable=False),
    Column("test", Boolean, nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("reason", Text),
    _ts("created_at"),
    _ts("updated_at"),
    _one_of("status", EnvelopeStatus),
    Index("ix_interchanges_file_id", "file_id"),
    Index("ix_interchanges_sender_control", "sender_qualifier", "sender_id", "control_number"),
    Index("ix_interchanges_control_number", "control_number"),  # migration 0006: `gateway find`
    sqlite_autoincrement=True,
)

groups = Table(
    "groups",
    metadata,
    _pk(),
    Column("file_id", ID, ForeignKey("files.id"), nullable=False),
    Column("interchange_id", ID, ForeignKey("interchanges.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("functional_id", String(8), nullable=False),
    Column("sender_code", String(35)),
    Column("receiver_code", String(35)),
    Column("control_number", String(CONTROL), nullable=False),
    Column("version", String(16), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("reason", Text),
    _ts("created_at"),
    _ts("updated_at"),
    _one_of("status", EnvelopeStatus),
    Index("ix_groups_file_id", "file_id"),
    Index("ix_groups_interchange_id", "interchange_id"),
    Index("ix_groups_control_number", "control_number"),  # migration 0006
    sqlite_autoincrement=True,
)

transaction_sets = Table(
    "transaction_sets",
    metadata,
    _pk(),
    Column("file_id", ID, ForeignKey("files.id"), nullable=False),
    Column("group_id", ID, ForeignKey("groups.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("set_id", String(8), nullable=False),
    Column("control_number", String(CONTROL), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("reason", Text),
    Column("errors", Text, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    _one_of("status", SetStatus),
    Index("ix_transaction_sets_file_id", "file_id"),
    Index("ix_transaction_sets_group_id", "group_id"),
    Index("ix_transaction_sets_control_number", "control_number"),  # migration 0006
    sqlite_autoincrement=True,
)

documents = Table(
    "documents",
    metadata,
    _pk(),
    Column("file_id", ID, ForeignKey("files.id"), nullable=False),
    Column("transaction_set_id", ID, ForeignKey("transaction_sets.id")),
    Column("position", Integer, nullable=False),
    Column("partner_id", String(PARTNER)),
    Column("doc_type", String(64), nullable=False),
    Column("business_key", String(256)),
    Column("status", String(STATUS), nullable=False),
    Column("reason", Text),
    Column("canonical", Text, nullable=False),
    Column("correlation_id", String(UUID), nullable=False),
    Column("parent_id", ID, ForeignKey("documents.id")),
    Column("warnings", Text),  # BIZ-* warnings found on it, JSON (migration 0003); NULL: none
    Column("route", Text),  # the routing decision, JSON: rules matched, destinations (migration 0004)
    _ts("created_at"),
    _ts("updated_at"),
    _one_of("status", DocumentStatus),
    Index("ix_documents_file_id", "file_id"),
    Index("ix_documents_transaction_set_id", "transaction_set_id"),
    Index("ix_documents_business_key", "partner_id", "doc_type", "business_key"),
    Index("ix_documents_parent_id", "parent_id"),
    Index("ix_documents_correlation_id", "correlation_id"),
    Index("ix_documents_status", "status", "doc_type", "file_id"),  # migration 0006: filters, counts, metrics
    # migration 0010 (replacing 0006's created_at): the dashboard's traffic by partner and type, from the index
    Index("ix_documents_traffic", "created_at", "partner_id", "doc_type", "status"),
    sqlite_autoincrement=True,
)

events = Table(
    "events",
    metadata,
    _pk(),
    Column("entity_kind", String(16), nullable=False),
    # No foreign keys: events outlive the rows they describe (reset deletes a file's children).
    Column("entity_id", ID, nullable=False),
    Column("file_id", ID),
    Column("action", String(16), nullable=False),
    Column("from_status", String(STATUS)),
    Column("to_status", String(STATUS), nullable=False),
    Column("reason", Text),
    Column("details", Text),
    Column("correlation_id", String(UUID)),
    Column("actor", String(128)),
    _ts("at"),
    _one_of("entity_kind", EntityKind),
    _one_of("action", EventAction),
    Index("ix_events_entity", "entity_kind", "entity_id", "id"),
    Index("ix_events_file_id", "file_id", "id"),
    Index("ix_events_at", "at"),
    sqlite_autoincrement=True,
)

sequences = Table(
    "sequences",
    metadata,
    Column("partner_id", String(PARTNER), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", BigInteger, nullable=False),
    _ts("updated_at"),
    PrimaryKeyConstraint("partner_id", "kind"),
)

dedupe_keys = Table(
    "dedupe_keys",
    metadata,
    _pk(),
    Column("kind", String(16), nullable=False),
    # '' when the key is not partner-scoped: NULLs would not collide in the unique constraint.
    Column("partner_id", String(PARTNER), nullable=False),
    Column("key", String(512), nullable=False),
    Column("first_entity_kind", String(16), nullable=False),
    Column("first_entity_id", ID, nullable=False),
    _ts("seen_at"),
    Column("hits", Integer, nullable=False),
    UniqueConstraint("kind", "partner_id", "key"),
    _one_of("kind", DedupeKind),
    _one_of("first_entity_kind", EntityKind),
    Index("ix_dedupe_keys_first_entity", "first_entity_kind", "first_entity_id"),
    sqlite_autoincrement=True,
)

outbound = Table(
    "outbound",
    metadata,
    _pk(),
    Column("partner_id", String(PARTNER), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sha256", String(DIGEST), nullable=False),
    Column("control_number", String(CONTROL)),
    Column("group_control_number", String(CONTROL)),
    Column("file_id", ID, ForeignKey("files.id")),
    Column("status", String(STATUS), nullable=False),
    Column("reason", Text),
    Column("expected_ack", String(STATUS)),
    _ts("ack_due_at", nullable=True),
    Column("correlation_id", String(UUID), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    Column("route", Text),  # the outbound routing decision, JSON (migration 0013)
    _one_of("status", OutboundStatus),
    _one_of("expected_ack", ExpectedAck),
    Index("ix_outbound_file_id", "file_id"),
    Index("ix_outbound_partner_control", "partner_id", "control_number"),
    Index("ix_outbound_expected_ack", "expected_ack", "ack_due_at"),
    Index("ix_outbound_created_at", "created_at"),  # migration 0006
    Index("ix_outbound_control_number", "control_number"),  # migration 0006: `gateway find`
    Index("ix_outbound_group_control_number", "group_control_number"),  # migration 0006
    Index("ix_outbound_correlation_id", "correlation_id"),  # migration 0006
    Index("ix_outbound_status", "status", "id"),  # migration 0014: the overview's unrouted outbound
    sqlite_autoincrement=True,
)

deliveries = Table(
    "deliveries",
    metadata,
    _pk(),
    # No foreign key to documents: a rerun after a crash replaces a file's documents, and a delivery
    # already attempted is kept (and re-pointed) so its idempotency key is never sent twice.
    Column("file_id", ID, ForeignKey("files.id")),
    Column("document_id", ID),
    Column("outbound_id", ID, ForeignKey("outbound.id")),
    Column("partner_id", String(PARTNER)),
    Column("doc_type", String(64), nullable=False),
    Column("destination", String(128), nullable=False),
    Column("rule", String(256)),
    Column("idempotency_key", String(UUID), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("attempts", Integer, nullable=False),
    _ts("next_attempt_at"),
    Column("lease_owner", String(128)),
    _ts("lease_expires_at", nullable=True),
    _ts("first_attempt_at", nullable=True),
    _ts("delivered_at", nullable=True),
    Column("last_error", Text),
    Column("last_response", Text),
    Column("payload_sha256", String(DIGEST)),  # a dead letter's payload, archived as it was last tried
    Column("parent_id", ID, ForeignKey("deliveries.id")),
    Column("correlation_id", String(UUID), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("idempotency_key"),
    _one_of("status", DeliveryStatus),
    Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_deliveries_destination_status", "destination", "status"),
    Index("ix_deliveries_document_id", "document_id"),
    Index("ix_deliveries_file_id", "file_id"),
    Index("ix_deliveries_outbound_id", "outbound_id"),
    Index("ix_deliveries_parent_id", "parent_id"),  # migration 0007: a chain's latest link, found by anti-join
    Index("ix_deliveries_delivered", "delivered_at", "destination", "status"),  # migration 0010: delivered today
    sqlite_autoincrement=True,
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    _pk(),
    Column("delivery_id", ID, ForeignKey("deliveries.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("worker", String(128)),
    _ts("started_at"),
    _ts("finished_at"),
    Column("outcome", String(STATUS), nullable=False),
    Column("error", Text),
    Column("response", Text),
    _one_of("outcome", DeliveryOutcome),
    Index("ix_delivery_attempts_delivery_id", "delivery_id", "number"),
    sqlite_autoincrement=True,
)

# Acknowledgment tracking (migration 0005): one row per transaction set we sent that is owed a 997/999,
# and one per inbound 997/999/TA1 document matched against them (so a restart never matches one twice).
ack_expectations = Table(
    "ack_expectations",
    metadata,
    _pk(),
    Column("outbound_id", ID, ForeignKey("outbound.id"), nullable=False),
    Column("partner_id", String(PARTNER), nullable=False),
    Column("interchange_control", String(CONTROL), nullable=False),
    Column("functional_id", String(8), nullable=False),
    Column("group_control", String(CONTROL), nullable=False),
    Column("version", String(16), nullable=False),
    Column("set_id", String(8), nullable=False),
    Column("set_control", String(CONTROL), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("group_status", String(STATUS)),
    Column("deadline_seconds", Integer, nullable=False),
    _ts("tracked_from", nullable=True),  # delivered (or recorded, when nothing delivers it): the clock starts
    _ts("due_at", nullable=True),
    _ts("acked_at", nullable=True),
    Column("late", Boolean, nullable=False),
    Column("ack_document_id", ID),
    Column("ta1_code", String(4)),
    Column("errors", Text),  # JSON list of what the partner reported, codes in words
    Column("resent_from", ID),  # the outbound interchange this one resends (its parent)
    Column("resent_as", ID),  # the latest resend of this one
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("outbound_id", "group_control", "set_control"),
    _one_of("status", OwedAckStatus),
    Index("ix_ack_expectations_status_due_at", "status", "due_at"),
    Index("ix_ack_expectations_partner_group", "partner_id", "group_control"),
    Index("ix_ack_expectations_partner_interchange", "partner_id", "interchange_control"),
    sqlite_autoincrement=True,
)

# The inbound 997/999/TA1 documents only (partial): what the tracker looks for each minute.
Index(
    "ix_documents_acknowledgments",
    documents.c.id,
    sqlite_where=documents.c.doc_type == "acknowledgment",
    postgresql_where=documents.c.doc_type == "acknowledgment",
)

ack_receipts = Table(
    "ack_receipts",
    metadata,
    _pk(),
    Column("document_id", ID, nullable=False),
    Column("file_id", ID, ForeignKey("files.id")),
    Column("partner_id", String(PARTNER)),
    Column("kind", String(8), nullable=False),
    Column("control_number", String(CONTROL)),
    Column("outcome", String(STATUS), nullable=False),
    Column("outbound_id", ID),
    Column("summary", Text),
    Column("details", Text),
    _ts("received_at"),
    _ts("created_at"),
    UniqueConstraint("document_id"),
    _one_of("outcome", AckReceiptOutcome),
    Index("ix_ack_receipts_outcome", "outcome"),
    sqlite_autoincrement=True,
)

search_keys = Table(
    "search_keys",
    metadata,
    _pk(),
    # What `gateway find` and `messages list` look documents and outbound interchanges up by (migration 0006):
    # PO, invoice and ASN numbers, lots, serials... (``kind``), upper-cased in ``value``. No foreign keys, as
    # events: a reset deletes a file's documents and their keys with them (see tree.py).
    Column("file_id", ID),
    Column("document_id", ID),
    Column("outbound_id", ID),
    Column("partner_id", String(PARTNER)),
    Column("kind", String(16), nullable=False),
    Column("value", String(256), nullable=False),
    Index("ix_search_keys_value", "value", "kind"),
    Index("ix_search_keys_file_id", "file_id"),
    Index("ix_search_keys_outbound_id", "outbound_id"),
    sqlite_autoincrement=True,
)

# --- reconciliation (migration 0008): the PO chain index, exceptions and their events ---

recon_links = Table(
    "recon_links",
    metadata,
    _pk(),
    Column("partner_id", String(PARTNER), nullable=False),  # '' when no profile matched
    Column("po_number", String(128), nullable=False),
    Column("doc_type", String(32), nullable=False),  # the canonical document_type
    Column("ref", String(48), nullable=False),  # document:<id> or outbound:<id> (our sent 850s)
    Column("number", String(128)),  # invoice number or shipment id: duplicates are found by it
    Column("purpose", String(16)),
    Column("canonical", Text),  # our sent 850s only: documents keep their own
    _ts("received_at"),
    UniqueConstraint("partner_id", "po_number", "ref"),
    Index("ix_recon_links_number", "partner_id", "doc_type", "number"),
    Index("ix_recon_links_ref", "ref"),
    sqlite_autoincrement=True,
)

recon_exceptions = Table(
    "recon_exceptions",
    metadata,
    _pk(),
    Column("partner_id", String(PARTNER), nullable=False),
    Column("po_number", String(128), nullable=False),
    Column("key", String(512), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("status", String(STATUS), nullable=False),
    Column("line", String(64)),
    Column("documents", Text, nullable=False),  # JSON list of refs, the one it is about first
    Column("expected", Text, nullable=False),
    Column("actual", Text, nullable=False),
    Column("amount", String(40)),  # a Decimal as text: exact on every database
    Column("reason", Text, nullable=False),
    Column("resolved_by", String(16)),  # document or operator
    Column("resolution", Text),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("resolved_at", nullable=True),
    UniqueConstraint("partner_id", "po_number", "key"),
    _one_of("status", ExceptionStatus),
    Index("ix_recon_exceptions_status_partner_id", "status", "partner_id"),
    Index("ix_recon_exceptions_status_kind", "status", "kind"),  # migration 0010: the overview's open counts
    Index("ix_recon_exceptions_created_at", "created_at"),
    sqlite_autoincrement=True,
)

recon_events = Table(
    "recon_events",
    metadata,
    _pk(),
    Column("exception_id", ID, ForeignKey("recon_exceptions.id"), nullable=False),
    Column("action", String(16), nullable=False),  # open, update, resolve, waive, reopen
    Column("from_status", String(STATUS)),
    Column("to_status", String(STATUS), nullable=False),
    Column("reason", Text),
    Column("actor", String(128)),
    _ts("at"),
    Index("ix_recon_events_exception_id", "exception_id", "id"),
    sqlite_autoincrement=True,
)

recon_billing = Table(
    "recon_billing",
    metadata,
    _pk(),
    # One row per billed ship-notice line (migration 0011): the unique key makes billing a line once, even
    # when two workers reconcile its chain at the same instant. Absent lot/serial are '' (NULLs would not
    # collide in a unique constraint).
    Column("partner_id", String(PARTNER), nullable=False),
    Column("shipment_id", String(128), nullable=False),
    Column("po_number", String(128), nullable=False),
    Column("position", Integer, nullable=False),  # the line's place in the notice's part for the PO
    Column("item", String(128), nullable=False),
    Column("lot", String(64), nullable=False),
    Column("serial", String(128), nullable=False),
    Column("billing_key", String(256), nullable=False),
    Column("outbound_id", ID),
    _ts("created_at"),
    UniqueConstraint(
        "partner_id", "shipment_id", "po_number", "position", "item", "lot", "serial", name="uq_recon_billing_line"
    ),
    Index("ix_recon_billing_billing_key", "partner_id", "billing_key"),
    sqlite_autoincrement=True,
)

recon_cursors = Table(
    "recon_cursors",
    metadata,
    Column("name", String(32), primary_key=True),  # documents, links: how far the index has read
    Column("value", BigInteger, nullable=False),
    _ts("updated_at"),
)

STATUS_TABLES: dict[EntityKind, Table] = {
    EntityKind.FILE: files,
    EntityKind.INTERCHANGE: interchanges,
    EntityKind.GROUP: groups,
    EntityKind.TRANSACTION_SET: transaction_sets,
    EntityKind.DOCUMENT: documents,
    EntityKind.OUTBOUND: outbound,
    EntityKind.DELIVERY: deliveries,
}
"""The table holding each kind of entity that has a status."""

STATUS_ENUMS: dict[EntityKind, type[StrEnum]] = {
    EntityKind.FILE: FileStatus,
    EntityKind.INTERCHANGE: EnvelopeStatus,
    EntityKind.GROUP: EnvelopeStatus,
    EntityKind.TRANSACTION_SET: SetStatus,
    EntityKind.DOCUMENT: DocumentStatus,
    EntityKind.OUTBOUND: OutboundStatus,
    EntityKind.DELIVERY: DeliveryStatus,
}
"""The statuses each kind of entity may take."""

purges = Table(
    "purges",
    metadata,
    # The audit record of retention (migration 0007): one row per file whose archived bytes and ledger
    # detail ``gateway archive purge`` removed; what it was (hash, size, dates) and how much went.
    _pk(),
    Column("run_id", String(UUID), nullable=False),
    Column("file_id", ID, ForeignKey("files.id"), nullable=False),
    Column("partner_id", String(PARTNER)),
    Column("sha256", String(DIGEST), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("name", String(1024), nullable=False),
    _ts("received_at"),
    Column("blob_removed", Boolean, nullable=False),
    Column("counts", Text, nullable=False),  # JSON: documents, sets, deliveries, attempts, events cleared
    Column("older_than", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    _ts("purged_at"),
    UniqueConstraint("file_id"),
    Index("ix_purges_purged_at", "purged_at"),
    Index("ix_purges_sha256", "sha256"),
    sqlite_autoincrement=True,
)
