"""deliveries and delivery_attempts (the transactional outbox), documents.route, new statuses and actions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Routing and delivery: each document (and each interchange we send) owed to a destination gets a
``deliveries`` row in the transaction that records it; workers lease due rows, try them and record
each try in ``delivery_attempts``. ``documents.route`` keeps the routing decision (JSON). Status and
action lists grow (``delivery`` entities, ``unrouted`` documents, operator actions), so their CHECK
constraints are rebuilt. Self-contained like 0001: the lists are literals.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ENTITY_KINDS = ("file", "interchange", "group", "transaction_set", "document", "outbound")
ENTITY_KINDS = (*OLD_ENTITY_KINDS, "delivery")
OLD_DOCUMENT_STATUSES = ("translated", "duplicate", "failed", "held", "routed", "delivered", "dead_letter")
DOCUMENT_STATUSES = (*OLD_DOCUMENT_STATUSES, "unrouted")
OLD_EVENT_ACTIONS = ("create", "status", "claim", "reclaim", "release", "reset")
EVENT_ACTIONS = (*OLD_EVENT_ACTIONS, "attempt", "retry", "discard", "retransmit", "reprocess", "requeue")
DELIVERY_STATUSES = ("pending", "delivered", "dead_letter", "discarded")
DELIVERY_OUTCOMES = ("delivered", "retry", "rejected", "error")
_AUTOINCREMENT = {"sqlite_autoincrement": True}
"""SQLite rebuilds a table to change its CHECK constraints: the copy must keep ids from being reused."""


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _listed(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _recheck(table: str, column: str, values: Sequence[str]) -> None:
    name = f"ck_{table}_{column}"
    with op.batch_alter_table(table, recreate="auto", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_constraint(op.f(name), type_="check")
        batch.create_check_constraint(op.f(name), _listed(column, values))


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    _recheck("events", "entity_kind", ENTITY_KINDS)
    _recheck("events", "action", EVENT_ACTIONS)
    _recheck("dedupe_keys", "first_entity_kind", ENTITY_KINDS)
    with op.batch_alter_table("documents", recreate="auto", table_kwargs=_AUTOINCREMENT) as batch:
        batch.add_column(sa.Column("route", sa.Text(), nullable=True))
        batch.drop_constraint(op.f("ck_documents_status"), type_="check")
        batch.create_check_constraint(op.f("ck_documents_status"), _listed("status", DOCUMENT_STATUSES))
    op.create_table(
        "deliveries",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("file_id", _id_type(), nullable=True),
        sa.Column("document_id", _id_type(), nullable=True),
        sa.Column("outbound_id", _id_type(), nullable=True),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("doc_type", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(256), nullable=True),
        sa.Column("idempotency_key", sa.String(36), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        _ts("lease_expires_at", nullable=True),
        _ts("first_attempt_at", nullable=True),
        _ts("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_response", sa.Text(), nullable=True),
        sa.Column("payload_sha256", sa.String(64), nullable=True),
        sa.Column("parent_id", _id_type(), nullable=True),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(_listed("status", DELIVERY_STATUSES), name=op.f("ck_deliveries_status")),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_deliveries_file_id_files")),
        sa.ForeignKeyConstraint(["outbound_id"], ["outbound.id"], name=op.f("fk_deliveries_outbound_id_outbound")),
        sa.ForeignKeyConstraint(["parent_id"], ["deliveries.id"], name=op.f("fk_deliveries_parent_id_deliveries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_deliveries_idempotency_key")),
        sqlite_autoincrement=True,
    )
    for name, columns in {
        "status_next_attempt_at": ["status", "next_attempt_at"],
        "destination_status": ["destination", "status"],
        "document_id": ["document_id"],
        "file_id": ["file_id"],
        "outbound_id": ["outbound_id"],
    }.items():
        op.create_index(op.f(f"ix_deliveries_{name}"), "deliveries", columns)
    op.create_table(
        "delivery_attempts",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", _id_type(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        _ts("started_at"),
        _ts("finished_at"),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.CheckConstraint(_listed("outcome", DELIVERY_OUTCOMES), name=op.f("ck_delivery_attempts_outcome")),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_delivery_attempts_delivery_id_deliveries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_delivery_attempts_delivery_id"), "delivery_attempts", ["delivery_id", "number"])


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
    with op.batch_alter_table("documents", recreate="auto", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_constraint(op.f("ck_documents_status"), type_="check")
        batch.create_check_constraint(op.f("ck_documents_status"), _listed("status", OLD_DOCUMENT_STATUSES))
        batch.drop_column("route")
    _recheck("dedupe_keys", "first_entity_kind", OLD_ENTITY_KINDS)
    _recheck("events", "action", OLD_EVENT_ACTIONS)
    _recheck("events", "entity_kind", OLD_ENTITY_KINDS)
