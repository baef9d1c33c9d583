"""The initial ledger: files and their lineage, events, sequences, dedupe keys, outbound.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Self-contained on purpose: status lists are frozen here as literals rather
than imported from the code, so this revision creates the same schema
forever; changing a status list is a new revision. Names are final
(``op.f``): env.py's target metadata has a naming convention that would
otherwise be applied to them a second time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENTITY_KINDS = ("file", "interchange", "group", "transaction_set", "document", "outbound")
FILE_FORMATS = ("x12", "csv", "xml", "unknown")
FILE_STATUSES = ("received", "processing", "processed", "partial", "failed", "quarantined", "duplicate", "held")
ENVELOPE_STATUSES = (
    "received",
    "accepted",
    "accepted_with_errors",
    "partially_accepted",
    "rejected",
    "duplicate",
    "failed",
)
SET_STATUSES = ("received", "accepted", "accepted_with_errors", "rejected", "translated", "failed", "duplicate")
DOCUMENT_STATUSES = ("translated", "duplicate", "failed", "held", "routed", "delivered", "dead_letter")
OUTBOUND_STATUSES = ("created", "sent", "failed", "cancelled")
EXPECTED_ACKS = ("pending", "accepted", "accepted_with_errors", "rejected", "overdue")
DEDUPE_KINDS = ("bytes", "isa13", "gs06", "st02", "business")
EVENT_ACTIONS = ("create", "status", "claim", "reclaim", "release", "reset")


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _pk() -> sa.Column[int]:
    return sa.Column("id", _id_type(), autoincrement=True, nullable=False)


def _ref(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, _id_type(), nullable=nullable)


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _one_of(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def _pk_of(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def _indexes(table: str, **indexes: Sequence[str]) -> None:
    for name, columns in indexes.items():
        op.create_index(op.f(f"ix_{table}_{name}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "files",
        _pk(),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("origin", sa.String(2048), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        _ref("parent_id", nullable=True),
        _ts("received_at"),
        _ts("updated_at"),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        _ts("lease_expires_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _one_of("files", "format", FILE_FORMATS),
        _one_of("files", "status", FILE_STATUSES),
        _fk("files", "parent_id", "files"),
        _pk_of("files"),
        sqlite_autoincrement=True,
    )
    _indexes(
        "files",
        sha256=["sha256"],
        status_received_at=["status", "received_at"],
        partner_id_received_at=["partner_id", "received_at"],
        parent_id=["parent_id"],
        correlation_id=["correlation_id"],
    )

    op.create_table(
        "interchanges",
        _pk(),
        _ref("file_id"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sender_qualifier", sa.String(4), nullable=False),
        sa.Column("sender_id", sa.String(35), nullable=False),
        sa.Column("receiver_qualifier", sa.String(4), nullable=False),
        sa.Column("receiver_id", sa.String(35), nullable=False),
        sa.Column("control_number", sa.String(32), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _one_of("interchanges", "status", ENVELOPE_STATUSES),
        _fk("interchanges", "file_id", "files"),
        _pk_of("interchanges"),
        sqlite_autoincrement=True,
    )
    _indexes(
        "interchanges",
        file_id=["file_id"],
        sender_control=["sender_qualifier", "sender_id", "control_number"],
    )

    op.create_table(
        "groups",
        _pk(),
        _ref("file_id"),
        _ref("interchange_id"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("functional_id", sa.String(8), nullable=False),
        sa.Column("sender_code", sa.String(35), nullable=True),
        sa.Column("receiver_code", sa.String(35), nullable=True),
        sa.Column("control_number", sa.String(32), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _one_of("groups", "status", ENVELOPE_STATUSES),
        _fk("groups", "file_id", "files"),
        _fk("groups", "interchange_id", "interchanges"),
        _pk_of("groups"),
        sqlite_autoincrement=True,
    )
    _indexes("groups", file_id=["file_id"], interchange_id=["interchange_id"])

    op.create_table(
        "transaction_sets",
        _pk(),
        _ref("file_id"),
        _ref("group_id"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.String(8), nullable=False),
        sa.Column("control_number", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("errors", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _one_of("transaction_sets", "status", SET_STATUSES),
        _fk("transaction_sets", "file_id", "files"),
        _fk("transaction_sets", "group_id", "groups"),
        _pk_of("transaction_sets"),
        sqlite_autoincrement=True,
    )
    _indexes("transaction_sets", file_id=["file_id"], group_id=["group_id"])

    op.create_table(
        "documents",
        _pk(),
        _ref("file_id"),
        _ref("transaction_set_id", nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("doc_type", sa.String(64), nullable=False),
        sa.Column("business_key", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        _ref("parent_id", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _one_of("documents", "status", DOCUMENT_STATUSES),
        _fk("documents", "file_id", "files"),
        _fk("documents", "transaction_set_id", "transaction_sets"),
        _fk("documents", "parent_id", "documents"),
        _pk_of("documents"),
        sqlite_autoincrement=True,
    )
    _indexes(
        "documents",
        file_id=["file_id"],
        transaction_set_id=["transaction_set_id"],
        business_key=["partner_id", "doc_type", "business_key"],
        parent_id=["parent_id"],
        correlation_id=["correlation_id"],
    )

    op.create_table(
        "events",
        _pk(),
        sa.Column("entity_kind", sa.String(16), nullable=False),
        _ref("entity_id"),
        _ref("file_id", nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(128), nullable=True),
        _ts("at"),
        _one_of("events", "entity_kind", ENTITY_KINDS),
        _one_of("events", "action", EVENT_ACTIONS),
        _pk_of("events"),
        sqlite_autoincrement=True,
    )
    _indexes("events", entity=["entity_kind", "entity_id", "id"], file_id=["file_id", "id"], at=["at"])

    op.create_table(
        "sequences",
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        _ts("updated_at"),
        _pk_of("sequences", "partner_id", "kind"),
    )

    op.create_table(
        "dedupe_keys",
        _pk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("first_entity_kind", sa.String(16), nullable=False),
        _ref("first_entity_id"),
        _ts("seen_at"),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.UniqueConstraint("kind", "partner_id", "key", name=op.f("uq_dedupe_keys_kind_partner_id_key")),
        _one_of("dedupe_keys", "kind", DEDUPE_KINDS),
        _one_of("dedupe_keys", "first_entity_kind", ENTITY_KINDS),
        _pk_of("dedupe_keys"),
        sqlite_autoincrement=True,
    )
    _indexes("dedupe_keys", first_entity=["first_entity_kind", "first_entity_id"])

    op.create_table(
        "outbound",
        _pk(),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("control_number", sa.String(32), nullable=True),
        sa.Column("group_control_number", sa.String(32), nullable=True),
        _ref("file_id", nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("expected_ack", sa.String(32), nullable=True),
        _ts("ack_due_at", nullable=True),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _one_of("outbound", "status", OUTBOUND_STATUSES),
        _one_of("outbound", "expected_ack", EXPECTED_ACKS),
        _fk("outbound", "file_id", "files"),
        _pk_of("outbound"),
        sqlite_autoincrement=True,
    )
    _indexes(
        "outbound",
        file_id=["file_id"],
        partner_control=["partner_id", "control_number"],
        expected_ack=["expected_ack", "ack_due_at"],
    )


def downgrade() -> None:
    for table in (
        "outbound",
        "dedupe_keys",
        "sequences",
        "events",
        "documents",
        "transaction_sets",
        "groups",
        "interchanges",
        "files",
    ):
        op.drop_table(table)
